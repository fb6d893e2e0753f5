"""A template's own rules in a real session: ``remove_tools`` keeps a tool out of every step (and the
metrics count it by rule), ``require_tool`` forces the action (``tool_choice`` for the
function-calling kinds, the one branch of the structured reply for ``sgr``), ``set_stage`` is saved
with the session and seen by later rules, and ``finish`` ends the run without the LLM."""

from __future__ import annotations

import httpx
import pytest

from sessions_app.models import Session, ToolExecution
from templates_app.services import template_create
from tests.e2e.helpers import (
    PLAN,
    auth,
    final,
    get_state,
    offered,
    sgr_step,
    sync_client,
    think,
)
from tests.fakes.llm_server import structured, tool_call

TOOLS = ["generate_plan_tool", "web_search_tool", "create_report_tool"]

# Step 1 must plan; once a plan is made the stage becomes "planned", and a step that starts in that
# stage after two actions ends the run by rule.
RULES = [
    {"name": "no web search", "then": [{"action": "remove_tools", "tools": ["web_search_tool"]}]},
    {"name": "plan first", "when": {"field": "iteration", "value": 1},
     "then": [{"action": "require_tool", "tool": "generate_plan_tool"}]},
    {"name": "planned", "when": {"field": "tool_calls.generate_plan_tool", "op": ">=", "value": 1},
     "then": [{"action": "set_stage", "stage": "planned"}]},
    {"name": "stop after planning", "when": {"all": [{"field": "stage", "value": "planned"},
                                                     {"field": "iteration", "op": ">=", "value": 3}]},
     "then": [{"action": "finish", "message": "Stopped after planning"}]},
]


@pytest.fixture
def server(platform_server):
    return platform_server()


def _template(name: str, kind: str) -> None:
    template_create(name=name, content={"agent_kind": kind, "rules": RULES,
                                        "tool_policy": {"allowlist": TOOLS, "max_tools_in_prompt": 8}})


def _run(server, key: str, model: str) -> str:
    completion = sync_client(server, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Plan a comparison of A and B"}])
    assert completion.choices[0].message.content == "Stopped after planning"
    return completion.model


def _stopped_after_planning(server, key: str, session_id: str) -> None:
    session = Session.objects.get(pk=session_id)
    assert session.state == "completed" and session.iteration == 3
    assert session.stage == "planned"
    assert list(ToolExecution.objects.filter(session_id=session_id).values_list("tool_name", flat=True)) == [
        "generate_plan_tool", "create_report_tool"]
    assert get_state(server, key, session_id)["execution_result"] == "Stopped after planning"


def test_tool_calling_rules_force_stage_and_finish(server, scripted_llm, chat_key, admin_key):
    _template("ruled_calls", "sgr_tool_calling")
    scripted_llm.enqueue(think(), tool_call("generate_plan_tool", PLAN),
                         think(), tool_call("create_report_tool", {"title": "T", "content": "Body"}))
    session_id = _run(server, chat_key, "ruled_calls")
    assert len(scripted_llm.requests) == 4  # step 3 ended by rule, before any LLM call
    first_action, second_action = scripted_llm.requests[1], scripted_llm.requests[3]
    assert first_action["tool_choice"] == {"type": "function", "function": {"name": "generate_plan_tool"}}
    assert second_action["tool_choice"] == "required"
    assert "web_search_tool" not in offered(first_action) + offered(second_action)
    assert "create_report_tool" in offered(second_action)
    _stopped_after_planning(server, chat_key, session_id)
    metrics = httpx.get(f"{server.base_url}/metrics", headers=auth(admin_key), timeout=10).text
    # three steps prepared (the third ended by rule), each counted with its tools and schema tokens
    assert 'tools_per_prompt_count{template="ruled_calls"} 3.0' in metrics
    assert 'tool_schema_tokens_count{template="ruled_calls"} 3.0' in metrics
    assert 'tools_removed_total{rule="no web search"} 3.0' in metrics


def test_sgr_kind_obeys_require_tool(server, scripted_llm, chat_key):
    _template("ruled_sgr", "sgr")
    scripted_llm.enqueue(structured(sgr_step("generate_plan_tool", PLAN)),
                         structured(sgr_step("create_report_tool", {"title": "T", "content": "Body"})))
    session_id = _run(server, chat_key, "ruled_sgr")
    assert len(scripted_llm.requests) == 2

    def branches(request) -> set[str]:
        schema = request["response_format"]["json_schema"]["schema"]
        return {b["properties"]["tool"]["const"] for b in schema["properties"]["action"]["anyOf"]}

    assert branches(scripted_llm.requests[0]) == {"generate_plan_tool"}
    assert {"final_answer_tool", "create_report_tool", "generate_plan_tool"} <= branches(scripted_llm.requests[1])
    assert "web_search_tool" not in branches(scripted_llm.requests[1])
    _stopped_after_planning(server, chat_key, session_id)


def test_a_required_tool_survives_the_cap(server, scripted_llm, chat_key):
    """``max_tools_in_prompt`` applies after the rules, and keeps the tool a rule requires."""
    template_create(name="tight", content={
        "agent_kind": "tool_calling", "rules": RULES[:2],
        "tool_policy": {"strategy": "static", "allowlist": TOOLS[::-1], "max_tools_in_prompt": 3}})
    scripted_llm.enqueue(tool_call("generate_plan_tool", PLAN), tool_call("final_answer_tool", final("Planned.")))
    completion = sync_client(server, chat_key).chat.completions.create(
        model="tight", messages=[{"role": "user", "content": "Plan a comparison of A and B"}])
    assert completion.choices[0].message.content == "Planned."
    first, second = scripted_llm.requests
    assert offered(first) == ["final_answer_tool", "clarification_tool", "generate_plan_tool"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "generate_plan_tool"}}
    assert offered(second) == ["final_answer_tool", "clarification_tool", "create_report_tool"]  # cut by order again
