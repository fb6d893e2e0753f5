"""Hot-load: tools and template versions changed through the admin API are used by running servers.

No restart, no redeploy: every session start reads the catalog and the template from the database,
so a change made through one server process is seen by the next session in every process.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sessions_app.models import Session, ToolExecution
from tests.e2e.helpers import auth, clarify, final, get_state, offered, sync_client
from tests.fakes.http_endpoint import QuietHandler, serving
from tests.fakes.llm_server import tool_call
from tests.hot_load_tools import EchoTool

ENV = {"HTTP_TOOL_ALLOW_PRIVATE": "true",
       "TOOL_ENTRYPOINT_ALLOWLIST": "runtime.tools.,tests.tools_for_tests,tests.hot_load_tools"}
SKU_PARAMETERS = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
ECHO = {"name": "echo_tool", "description": EchoTool.description, "entrypoint": "tests.hot_load_tools:EchoTool",
        "parameters": EchoTool.parameters_schema(), "tags": ["test"]}


@pytest.fixture
def stock_endpoint():
    """A local JSON endpoint for an http tool, recording the bodies it receives."""
    received: list[dict[str, Any]] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            received.append({"path": self.path, "content_type": self.headers["content-type"], "body": body})
            self.reply(200, json.dumps({"sku": body.get("sku"), "in_stock": 12}).encode())

    with serving(Handler) as server:
        server.url = server.base + "/lookup"  # type: ignore[attr-defined]
        server.received = received  # type: ignore[attr-defined]
        yield server


def admin(server, key: str, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
    """An admin API call that must succeed; returns the JSON body."""
    response = httpx.request(method, server.base_url + path, headers=auth(key), json=body, timeout=15)
    assert response.status_code in (200, 201), (method, path, response.status_code, response.text)
    return response.json()


def ask(server, key: str, model: str, text: str):
    return sync_client(server, key).chat.completions.create(model=model, messages=[{"role": "user", "content": text}])


def schema_of(request: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t["function"] for t in request["tools"] if t["function"]["name"] == name)


def executions(session_id: str) -> list[tuple[str, str]]:
    return list(ToolExecution.objects.filter(session_id=session_id).order_by("id").values_list("tool_name", "status"))


def test_tools_created_through_the_api_are_used_without_a_restart(
    platform_server, scripted_llm, admin_key, chat_key, stock_endpoint
):
    server = platform_server(**ENV)
    pid = server.proc.pid
    admin(server, admin_key, "POST", "/admin/tools", ECHO)
    stock = admin(server, admin_key, "POST", "/admin/tools", {
        "name": "stock_lookup", "description": "Looks up the stock level of an item by SKU.",
        "endpoint": {"url": stock_endpoint.url, "timeout_s": 5}, "parameters": SKU_PARAMETERS,
        "tags": ["inventory"]})
    admin(server, admin_key, "POST", "/admin/templates", {
        "name": "hot_agent", "agent_kind": "tool_calling",
        "tool_policy": {"allowlist": ["stock_lookup", "echo_tool"]}})
    assert stock["kind"] == "http"
    scripted_llm.enqueue(tool_call("stock_lookup", {"sku": "W-1"}), tool_call("echo_tool", {"text": "twelve"}),
                         tool_call("final_answer_tool", final("12 in stock.")))

    completion = ask(server, chat_key, "hot_agent", "How many W-1 do we have?")

    assert completion.choices[0].message.content == "12 in stock."
    # the http tool POSTed the model's arguments as JSON to the endpoint
    assert stock_endpoint.received == [
        {"path": "/lookup", "content_type": "application/json", "body": {"sku": "W-1"}}]
    first, second, third = scripted_llm.requests
    assert {"stock_lookup", "echo_tool", "final_answer_tool"} <= set(offered(first))
    assert schema_of(first, "stock_lookup")["parameters"] == SKU_PARAMETERS
    assert schema_of(first, "echo_tool")["parameters"] == EchoTool.parameters_schema()
    # both results went back to the model, answering their calls
    calls = [m for m in third["messages"] if m["role"] == "assistant"]
    results = [m for m in third["messages"] if m["role"] == "tool"]
    assert [c["tool_calls"][0]["function"]["name"] for c in calls] == ["stock_lookup", "echo_tool"]
    assert [r["tool_call_id"] for r in results] == [c["tool_calls"][0]["id"] for c in calls]
    assert json.loads(results[0]["content"]) == {"sku": "W-1", "in_stock": 12}
    assert results[1]["content"] == "echo #2: twelve"
    assert executions(completion.model) == [("stock_lookup", "ok"), ("echo_tool", "ok"), ("final_answer_tool", "ok")]
    rows = ToolExecution.objects.filter(session_id=completion.model).order_by("id")
    assert [r.arguments for r in rows[:2]] == [{"sku": "W-1"}, {"text": "twelve"}]
    assert rows[0].tool_id == stock["id"]
    assert Session.objects.get(pk=completion.model).state == "completed"

    # deactivate the http tool and edit the python one: the next session sees both changes
    assert admin(server, admin_key, "POST", "/admin/tools/stock_lookup/deactivate")["is_active"] is False
    admin(server, admin_key, "PATCH", "/admin/tools/echo_tool", {"description": "Repeats text back (edited)."})
    scripted_llm.enqueue(tool_call("final_answer_tool", final("Stock lookups are unavailable.")))

    later = ask(server, chat_key, "hot_agent", "How many W-1 now?")

    request = scripted_llm.requests[3]
    assert "stock_lookup" not in offered(request)
    assert schema_of(request, "echo_tool")["description"] == "Repeats text back (edited)."
    assert "stock_lookup" not in request["messages"][0]["content"]  # nor in the prompt's tool list
    assert later.choices[0].message.content == "Stock lookups are unavailable."
    assert len(stock_endpoint.received) == 1
    assert server.proc.pid == pid and server.proc.poll() is None  # one process all along


def test_new_template_version_serves_new_sessions_while_a_waiting_session_keeps_its_version(
    platform_server, scripted_llm, admin_key, chat_key
):
    server = platform_server(**ENV)
    created = admin(server, admin_key, "POST", "/admin/templates", {
        "name": "versioned_agent", "agent_kind": "tool_calling",
        "prompt_pack": {"system_prompt": "V1 prompt: answer about stock. Today is {current_date}."}})
    tid = created["id"]
    scripted_llm.enqueue(tool_call("clarification_tool", clarify("Which warehouse?")))

    waiting = ask(server, chat_key, "versioned_agent", "How many widgets are left?")

    session_id = waiting.model
    assert waiting.choices[0].message.content == "Which warehouse?"
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["version"]) == ("waiting_for_clarification", 1)

    v2 = admin(server, admin_key, "POST", f"/admin/templates/{tid}/versions",
               {"prompt_pack": {"system_prompt": "V2 prompt: answer about stock, briefly."}})
    assert (v2["version"], v2["is_active"], v2["agent_kind"]) == (2, False, "tool_calling")
    assert admin(server, admin_key, "POST", f"/admin/templates/{tid}/activate", {"version": 2})["version"] == 2
    scripted_llm.enqueue(tool_call("final_answer_tool", final("From version two.")))

    fresh = ask(server, chat_key, "versioned_agent", "How many gadgets are left?")

    assert fresh.choices[0].message.content == "From version two."
    assert Session.objects.select_related("template_version").get(pk=fresh.model).template_version.version == 2
    assert get_state(server, chat_key, fresh.model)["version"] == 2
    assert scripted_llm.requests[1]["messages"][0] == {
        "role": "system", "content": "V2 prompt: answer about stock, briefly."}

    # the waiting session continues on the version it started with
    scripted_llm.enqueue(tool_call("final_answer_tool", final("Warehouse A has 12 widgets.")))

    resumed = ask(server, chat_key, session_id, "Warehouse A")

    assert resumed.model == session_id
    assert resumed.choices[0].message.content == "Warehouse A has 12 widgets."
    system = scripted_llm.requests[2]["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("V1 prompt: answer about stock. Today is ")
    session = Session.objects.select_related("template_version").get(pk=session_id)
    assert (session.state, session.template_version.version) == ("completed", 1)
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["version"], state["clarifications_used"]) == ("completed", 1, 1)


def test_a_tool_created_through_one_server_is_used_by_another(platform_server, scripted_llm, admin_key, chat_key):
    server_a = platform_server(**ENV)
    server_b = platform_server(**ENV)
    admin(server_a, admin_key, "POST", "/admin/templates", {
        "name": "relay_agent", "agent_kind": "tool_calling", "tool_policy": {"allowlist": ["echo_tool"]}})
    # B serves a session before the tool exists: its pool, instance and caches are warm
    scripted_llm.enqueue(tool_call("final_answer_tool", final("Nothing to echo.")))
    before = ask(server_b, chat_key, "relay_agent", "Echo hello")
    assert "echo_tool" not in offered(scripted_llm.requests[0])

    created = admin(server_a, admin_key, "POST", "/admin/tools", ECHO)
    assert admin(server_b, admin_key, "GET", "/admin/tools/echo_tool")["id"] == created["id"]
    scripted_llm.enqueue(tool_call("echo_tool", {"text": "hello"}), tool_call("final_answer_tool", final("hello")))

    after = ask(server_b, chat_key, "relay_agent", "Echo hello")

    assert after.choices[0].message.content == "hello"
    assert "echo_tool" in offered(scripted_llm.requests[1])
    assert scripted_llm.requests[2]["messages"][-1] == {
        "role": "tool", "tool_call_id": scripted_llm.requests[2]["messages"][-2]["tool_calls"][0]["id"],
        "content": "echo #1: hello"}
    assert executions(after.model) == [("echo_tool", "ok"), ("final_answer_tool", "ok")]
    first, second = (Session.objects.select_related("instance").get(pk=c.model) for c in (before, after))
    assert first.instance.pid == second.instance.pid == server_b.proc.pid
    assert first.instance_id == second.instance_id  # the same warm instance, no restart
    assert server_a.proc.poll() is None and server_b.proc.poll() is None
