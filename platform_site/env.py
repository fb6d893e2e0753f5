"""The one place where the environment is read (django-environ).

Every setting the platform takes from the environment is declared here with its
default; settings modules import the values, nothing else calls ``os.environ``.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# Database: unset DATABASE_URL means the embedded PostgreSQL in EMBEDDED_PG_DIR.
DATABASE_URL: str = env.str("DATABASE_URL", default="")
EMBEDDED_PG_DIR = Path(env.str("EMBEDDED_PG_DIR", default=str(VAR_DIR / "pgdata")))
EMBEDDED_PG_DBNAME: str = env.str("EMBEDDED_PG_DBNAME", default="platform")
# PostgreSQL synchronous_commit for the platform's connections: "off" by default for the
# embedded server (no fsync wait per commit), the server's own setting with DATABASE_URL.
# Server-side prepared statements for the hot path (platform_site.sql); off for a pooler that
# cannot keep them (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
DB_PREPARED_STATEMENTS: bool = env.bool("DB_PREPARED_STATEMENTS", default=True)
DB_SYNCHRONOUS_COMMIT: str = env.str("DB_SYNCHRONOUS_COMMIT", default="" if DATABASE_URL else "off")

SECRET_KEY: str = env.str("SECRET_KEY", default="")
DEBUG: bool = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
HOST: str = env.str("HOST", default="127.0.0.1")
PORT: int = env.int("PORT", default=8000)
SHUTDOWN_GRACE_S: int = env.int("SHUTDOWN_GRACE_S", default=10)
# Behind a TLS-terminating proxy / load balancer: the origins the admin's forms come from, and
# whether to trust its X-Forwarded-Proto header (only when the proxy always sets it).
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
TRUST_X_FORWARDED_PROTO: bool = env.bool("TRUST_X_FORWARDED_PROTO", default=False)
ASGI_THREADS: int = env.int("ASGI_THREADS", default=0)  # 0: min(32, CPUs + 4)
LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT: str = env.str("LOG_FORMAT", default="json")  # json | plain
METRICS_PUBLIC: bool = env.bool("METRICS_PUBLIC", default=False)  # /metrics without an admin key

# LLM defaults for templates whose llm_config leaves them out.
LLM_BASE_URL: str = env.str("LLM_BASE_URL", default="")
LLM_API_KEY: str = env.str("LLM_API_KEY", default="")
LLM_MODEL: str = env.str("LLM_MODEL", default="gpt-4o-mini")
LLM_TIMEOUT_S: float = env.float("LLM_TIMEOUT_S", default=60.0)
LLM_MAX_RETRIES: int = env.int("LLM_MAX_RETRIES", default=2)
# Which backend serves templates without llm_config.base_url: "auto" (LLM_BASE_URL when set, else
# "local"), "openai" (the OpenAI-compatible endpoint at LLM_BASE_URL) or "local" (an embedded llama.cpp
# server with a small model, see runtime/local_llm/).
LLM_BACKEND: str = env.str("LLM_BACKEND", default="auto")
LOCAL_LLM_MODEL: str = env.str("LOCAL_LLM_MODEL", default="smollm2-135m")  # runtime.local_llm.weights.MODELS
LOCAL_LLM_GGUF: str = env.str("LOCAL_LLM_GGUF", default="")  # a GGUF file to serve instead of LOCAL_LLM_MODEL
LOCAL_LLM_DIR = Path(env.str("LOCAL_LLM_DIR", default=str(VAR_DIR / "models")))  # where models are installed
LOCAL_LLM_THREADS: int = env.int("LOCAL_LLM_THREADS", default=0)  # 0: cores - 1 (at least 1, at most 8)
LOCAL_LLM_CTX: int = env.int("LOCAL_LLM_CTX", default=8192)  # context window in tokens
LOCAL_LLM_MAX_TOKENS: int = env.int("LOCAL_LLM_MAX_TOKENS", default=1536)  # per reply, unless llm_config.max_tokens
LOCAL_LLM_MAX_STRING: int = env.int("LOCAL_LLM_MAX_STRING", default=200)  # maxLength of every string in the schema
LOCAL_LLM_WARMUP: bool = env.bool("LOCAL_LLM_WARMUP", default=True)  # one tiny request at start-up

# Web search: "tavily" (a Tavily-compatible HTTP API), "searxng" (a self-hosted SearXNG) or
# "package.module:factory" (a callable taking the runtime settings; runtime.tools.search_providers).
WEB_SEARCH_PROVIDER: str = env.str("WEB_SEARCH_PROVIDER", default="tavily")
TAVILY_BASE_URL: str = env.str("TAVILY_BASE_URL", default="https://api.tavily.com")
TAVILY_API_KEY: str = env.str("TAVILY_API_KEY", default="")
SEARXNG_BASE_URL: str = env.str("SEARXNG_BASE_URL", default="")

# Tool safety.
TOOL_ENTRYPOINT_ALLOWLIST: list[str] = env.list(
    "TOOL_ENTRYPOINT_ALLOWLIST", default=["runtime.tools.", "platform_tools."]
)
HTTP_TOOL_ALLOW_PRIVATE: bool = env.bool("HTTP_TOOL_ALLOW_PRIVATE", default=False)

# Request limits.
MAX_REQUEST_BYTES: int = env.int("MAX_REQUEST_BYTES", default=1_048_576)

# Cross-process channel layer; unset means in-memory (single process).
REDIS_URL: str = env.str("REDIS_URL", default="")

# Agent instance pool.
POOL_PER_VERSION: int = env.int("POOL_PER_VERSION", default=4)
POOL_GLOBAL: int = env.int("POOL_GLOBAL", default=64)
POOL_ACQUIRE_TIMEOUT_S: float = env.float("POOL_ACQUIRE_TIMEOUT_S", default=10.0)
AGENT_MAX_DELEGATION_DEPTH: int = env.int("AGENT_MAX_DELEGATION_DEPTH", default=3)

# Tool search: the offline embedding model (see retrieval.embedders.EMBEDDERS).
EMBEDDING_MODEL: str = env.str("EMBEDDING_MODEL", default="all-MiniLM-L6-v2-onnx-int8")
# Model tokens of a query the dense side reads, from its start (0 = up to the model's limit).
# Its time grows with them; the keyword side and the per-sentence static vectors read it all.
TOOL_SEARCH_QUERY_TOKENS: int = env.int("TOOL_SEARCH_QUERY_TOKENS", default=32)
# Embed search queries with an int8 copy of the model (retrieval.query_model; documents keep the original).
TOOL_SEARCH_QUERY_INT8: bool = env.bool("TOOL_SEARCH_QUERY_INT8", default=True)
# Where derived model files (that int8 copy) are kept, shared by the processes of a machine.
EMBEDDING_CACHE_DIR = Path(env.str("EMBEDDING_CACHE_DIR", default=str(VAR_DIR / "models")))
# Search a per-process in-memory copy of the index while it is current (SQL otherwise).
TOOL_SEARCH_MEMORY_INDEX: bool = env.bool("TOOL_SEARCH_MEMORY_INDEX", default=True)

# Router (model="router") and the agent directory it searches.
DIRECTORY_EMBEDDING_MODEL: str = env.str("DIRECTORY_EMBEDDING_MODEL", default="multilingual-e5-small-q4")
ROUTER_DEFAULT_TEMPLATE: str = env.str("ROUTER_DEFAULT_TEMPLATE", default="sgr_agent")
ROUTER_MIN_SCORE: float = env.float("ROUTER_MIN_SCORE", default=0.80)
ROUTER_TIE_MARGIN: float = env.float("ROUTER_TIE_MARGIN", default=0.01)
ROUTER_LLM_TIEBREAK: bool = env.bool("ROUTER_LLM_TIEBREAK", default=False)

# Security policies.
TOOL_ENVIRONMENT_ALLOWLIST: list[str] = env.list("TOOL_ENVIRONMENT_ALLOWLIST", default=[])  # names or tag:<tag>
API_KEY_RATE_LIMIT: str = env.str("API_KEY_RATE_LIMIT", default="120/min,burst=30")  # chat requests per key
TOOL_RATE_LIMIT: str = env.str("TOOL_RATE_LIMIT", default="")  # executions per tool, all processes; "" = off
