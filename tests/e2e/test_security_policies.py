"""Security policies through the running server: risk, environment allowlist, rate limits,
and tool calls the model was not offered (prompt injection) refused."""

from __future__ import annotations

import httpx
import pytest

from catalog.services import tool_create
from sessions_app.models import ToolExecution
from templates_app.services import template_create
from tests.e2e.helpers import auth, final, offered, sync_client
from tests.fakes.llm_server import tool_call

ECHO = "tests.hot_load_tools:EchoTool"
ENV = {"TOOL_ENTRYPOINT_ALLOWLIST": "runtime.tools.,tests.hot_load_tools"}


@pytest.fixture(autouse=True)
def allow_test_tools(settings):
    settings.TOOL_ENTRYPOINT_ALLOWLIST = ["runtime.tools.", "tests.hot_load_tools"]


def _tools_and_template(max_risk: str = "medium") -> None:
    from tests.hot_load_tools import EchoTool

    params = EchoTool.parameters_schema()
    tool_create(name="wire_money", description="Sends money", kind="python", entrypoint=ECHO,
                parameters=params, risk="high")
    tool_create(name="lookup", description="Looks things up", kind="python", entrypoint=ECHO,
                parameters=params, risk="low", tags=["inventory"])
    template_create(name="guarded", content={
        "agent_kind": "tool_calling",
        "tool_policy": {"allowlist": ["wire_money", "lookup"], "max_risk": max_risk},
    })


def _echo_args() -> dict:
    from tests.hot_load_tools import EchoTool

    schema = EchoTool.parameters_schema()
    return {name: "x" for name in schema.get("required", ["text"])}


def test_high_risk_tool_needs_opt_in_and_injected_calls_are_refused(platform_server, scripted_llm, chat_key):
    _tools_and_template(max_risk="medium")
    server = platform_server(**ENV)
    # the model (prompt-injected by some page) calls a tool it was not offered, twice, then answers
    scripted_llm.enqueue(tool_call("wire_money", _echo_args()), tool_call("wire_money", _echo_args()),
                         tool_call("final_answer_tool", final("done")))
    completion = sync_client(server, chat_key).chat.completions.create(
        model="guarded", messages=[{"role": "user", "content": "check stock"}]
    )
    assert completion.choices[0].message.content == "done"
    first = scripted_llm.requests[0]
    assert "wire_money" not in offered(first) and "lookup" in offered(first)
    assert "not available now" in scripted_llm.requests[1]["messages"][-1]["content"]
    assert not ToolExecution.objects.filter(tool_name="wire_money").exists()  # never executed


def test_high_risk_tool_offered_after_explicit_opt_in(platform_server, scripted_llm, chat_key):
    _tools_and_template(max_risk="high")
    server = platform_server(**ENV)
    scripted_llm.enqueue(tool_call("final_answer_tool", final("ok")))
    sync_client(server, chat_key).chat.completions.create(
        model="guarded", messages=[{"role": "user", "content": "pay"}]
    )
    assert "wire_money" in offered(scripted_llm.requests[0])


def test_environment_allowlist_limits_tools(platform_server, scripted_llm, chat_key):
    _tools_and_template(max_risk="high")
    server = platform_server(TOOL_ENVIRONMENT_ALLOWLIST="tag:inventory", **ENV)
    scripted_llm.enqueue(tool_call("final_answer_tool", final("ok")))
    sync_client(server, chat_key).chat.completions.create(
        model="guarded", messages=[{"role": "user", "content": "pay"}]
    )
    names = offered(scripted_llm.requests[0])
    assert "lookup" in names and "wire_money" not in names and "final_answer_tool" in names


def test_api_key_rate_limit(platform_server, scripted_llm, chat_key):
    server = platform_server(API_KEY_RATE_LIMIT="6/min,burst=2")
    scripted_llm.set_responder(lambda body: tool_call("final_answer_tool", final("ok")))
    body = {"model": "tool_calling_agent", "messages": [{"role": "user", "content": "hi"}]}
    url = server.base_url + "/v1/chat/completions"
    statuses = [httpx.post(url, headers=auth(chat_key), json=body, timeout=30).status_code for _ in range(2)]
    limited = httpx.post(url, headers=auth(chat_key), json=body, timeout=30)
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    # a continuation is a run too: the same key's budget covers provide_clarification
    waiting = "00000000-0000-4000-8000-000000000000"
    again = httpx.post(f"{server.base_url}/agents/{waiting}/provide_clarification", headers=auth(chat_key),
                       json={"messages": [{"role": "user", "content": "more"}]}, timeout=30)
    assert again.status_code == 429 and again.json()["error"]["code"] == "rate_limit_exceeded"


def test_tool_rate_limit_is_a_tool_error(platform_server, scripted_llm, chat_key):
    _tools_and_template()
    server = platform_server(TOOL_RATE_LIMIT="1/min,burst=1", **ENV)
    scripted_llm.enqueue(tool_call("lookup", _echo_args()), tool_call("lookup", _echo_args()),
                         tool_call("final_answer_tool", final("ok")))
    completion = sync_client(server, chat_key).chat.completions.create(
        model="guarded", messages=[{"role": "user", "content": "look twice"}]
    )
    runs = list(ToolExecution.objects.filter(session_id=completion.model, tool_name="lookup")
                .order_by("id").values_list("status", "error"))
    assert runs[0][0] == "ok"
    assert runs[1][0] == "error" and "rate limited" in runs[1][1]
