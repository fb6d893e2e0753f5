"""Opt-in (``make test-local-llm``): whole sessions on the real local model, one per agent kind.

The smallest model is installed on first use. A toy model's answers are not judged: each
session must end (completed, waiting for the user, or failed cleanly with ``llm_error``) within
its time limit, and every model reply must have been either used (a tool ran) or answered with
feedback and retried. Development machines: ``LOCAL_LLM_THREADS=1 make test-local-llm``.
"""

from __future__ import annotations

import openai
import pytest

from runtime.local_llm import weights
from runtime.local_llm.config import LocalLLMConfig
from sessions_app.models import Session, SessionMessage
from templates_app.services import template_create
from tests.e2e.conftest import ROOT, PlatformServer

pytestmark = pytest.mark.local_llm

SESSION_TIMEOUT_S = 600  # 3 steps x (1 + 2 retries) x 1536 tokens at ~50 tokens/s fits well inside
RETRY_FEEDBACK = "Your last reply could not be used"


@pytest.fixture(scope="session")
def model_installed():
    """Install (first run) and verify the default model before any server needs it."""
    import os

    config = LocalLLMConfig(model=os.environ.get("LOCAL_LLM_MODEL", "smollm2-135m"),
                            directory=ROOT / "var" / "models")
    return weights.gguf_path(config, progress=True)


@pytest.fixture
def local_server(transactional_db, model_installed):
    from runtime.defaults import load_defaults

    load_defaults()
    for kind in ("sgr", "tool_calling", "sgr_tool_calling"):
        template_create(name=f"local_{kind}", content={
            "agent_kind": kind, "tool_policy": {"allowlist": ["generate_plan_tool"]},
            "execution_policy": {"max_iterations": 3, "max_clarifications": 1, "llm_timeout_s": 300},
        })
    server = PlatformServer({"LLM_BACKEND": "local", "LLM_BASE_URL": "", "LLM_MAX_RETRIES": "0",
                             "TAVILY_BASE_URL": ""}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["sgr", "tool_calling", "sgr_tool_calling"])
def test_a_session_of_each_kind_ends_cleanly(local_server, chat_key, kind):
    client = openai.OpenAI(base_url=local_server.base_url + "/v1", api_key=chat_key, max_retries=0,
                           timeout=SESSION_TIMEOUT_S)
    try:
        completion = client.chat.completions.create(
            model=f"local_{kind}", messages=[{"role": "user", "content": "What is the capital of France?"}])
        session_id = completion.model
        assert completion.choices[0].message.content
    except openai.APIStatusError as exc:  # a clean failure: the model misbehaved past its retries
        assert exc.status_code == 502 and exc.body["code"] == "llm_error", exc.body
        session_id = exc.response.headers["x-session-id"]

    session = Session.objects.get(pk=session_id)
    assert session.state in ("completed", "waiting_for_clarification", "failed"), session.state
    if session.state == "failed":  # misbehaving past retries, out of steps, or its own final_answer "failed"
        clean = ("invalid output", "max_iterations", "the agent reported failure")
        assert any(reason in session.error for reason in clean), session.error
    history = [m.message for m in SessionMessage.objects.filter(session_id=session_id).order_by("seq")]
    replies = [i for i, m in enumerate(history) if m["role"] == "assistant"]
    assert replies, "the model was never asked"
    for i in replies:  # every reply was used (its tool ran) or answered with feedback and retried
        following = history[i + 1] if i + 1 < len(history) else None
        assert following is not None, f"reply {i} of {kind} was neither used nor retried"
        assert following["role"] == "tool" or RETRY_FEEDBACK in (following.get("content") or ""), following
