"""Shared fixtures: the scripted LLM, API keys, staff users."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fakes.llm_server import ScriptedLLM
from tests.fakes.search_server import ScriptedSearch


@pytest.fixture
def scripted_llm():
    with ScriptedLLM() as llm:
        yield llm


@pytest.fixture
def scripted_search():
    with ScriptedSearch() as search:
        yield search


@pytest.fixture
def chat_key(db):
    from access.services import api_key_create

    return api_key_create(name="chat-test").raw


@pytest.fixture
def admin_key(db):
    from access.services import api_key_create

    return api_key_create(name="admin-test", admin=True).raw


@pytest.fixture
def staff_client(db, client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw-for-tests")
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis for multi-process tests: REDIS_TEST_URL (set by `make test`), else scripts/ensure_redis.sh."""
    url = os.environ.get("REDIS_TEST_URL")
    if not url:
        script = Path(__file__).resolve().parents[1] / "scripts" / "ensure_redis.sh"
        url = subprocess.run([str(script)], check=True, capture_output=True, text=True).stdout.strip()
    return url


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, and at the end: close what worker threads left open, so it can be dropped.

    Services run on worker threads of the running event loop (``runtime.db``); each keeps its own
    connection. Loops that ``async_to_sync`` creates in tests leave their idle threads, and those
    connections, behind; a production server's loop lives as long as the process.
    """
    yield
    with django_db_blocker.unblock():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'")


def pytest_sessionstart(session):
    from tests.e2e.conftest import prune_server_logs

    prune_server_logs()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """Let scheduled tool embeddings (and a tool index rebuild) finish before any fixture tears down.

    A test that commits (``transactional_db``) and saves a tool starts the background
    embedding thread; if the database flush after the test TRUNCATEs while that thread
    writes, the two can deadlock and the flush fails. Runs before fixture finalizers.
    """
    from retrieval import memindex
    from retrieval.services import tool_embeddings_wait

    tool_embeddings_wait(timeout=300)
    memindex.wait(timeout=300)
