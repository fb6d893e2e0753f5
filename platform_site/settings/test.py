"""Test settings: the same database mechanism, its own test database."""

from .base import *  # noqa: F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# Several test runs on one embedded server (developers side by side) need their own database.
import os  # noqa: E402

if os.environ.get("TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DB_NAME"]}  # noqa: F405

# The test suite never starts a local model by itself: "auto" means the scripted endpoint tests set.
# The opt-in local_llm tests (make test-local-llm) set LLM_BACKEND=local explicitly.
if LLM_BACKEND == "auto":  # noqa: F405
    LLM_BACKEND = "openai"
