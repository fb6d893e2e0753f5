"""A template's ``llm_config`` reaches the LLM: its model name, its sampling, and the key read from
the environment variable it names (``api_key_env``, never the key itself); a template without one
uses the deployment's ``LLM_MODEL`` and ``LLM_API_KEY``."""

from __future__ import annotations

from sessions_app.models import Session
from templates_app.services import template_create
from tests.e2e.helpers import final, sync_client
from tests.fakes.llm_server import tool_call


def test_llm_config_model_and_key_from_the_named_variable(platform_server, scripted_llm, chat_key):
    template_create(name="house_llm", content={
        "agent_kind": "tool_calling",
        "llm_config": {"model": "house-model-7b", "api_key_env": "HOUSE_LLM_KEY", "temperature": 0.5}})
    server = platform_server(HOUSE_LLM_KEY="hk-house-123", LLM_MODEL="deployment-default")
    client = sync_client(server, chat_key)
    for model in ("house_llm", "tool_calling_agent"):
        scripted_llm.enqueue(tool_call("final_answer_tool", final(f"answer of {model}")))
        completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
        assert completion.choices[0].message.content == f"answer of {model}"
    (own, default), (own_headers, default_headers) = scripted_llm.requests, scripted_llm.headers
    assert (own["model"], own["temperature"], own_headers["authorization"]) == (
        "house-model-7b", 0.5, "Bearer hk-house-123")
    assert (default["model"], default_headers["authorization"]) == ("deployment-default", "Bearer test-llm-key")
    stored = Session.objects.get(template_version__template__name="house_llm")
    assert "hk-house-123" not in str(stored.context) + str(list(stored.messages.values_list("message", flat=True)))
