"""Each agent kind completes a session; a research flow stores sources and a report; a tool that
raises is recorded and fed back to the model."""

import asyncio
import json

import pytest

from catalog.services import tool_create
from sessions_app.models import Artifact, Session, Source, ToolExecution
from templates_app.services import template_create
from tests.e2e.helpers import (
    REASONING,
    async_client,
    final,
    get_state,
    offered,
    sgr_step,
    sync_client,
    think,
)
from tests.fakes.llm_server import structured, tool_call
from tests.fakes.search_server import result
from tests.tools_for_tests import ExplodingTool

PLAN = {"reasoning": "Several steps", "research_goal": "Compare two things",
        "planned_steps": ["Find A", "Find B", "Compare"], "search_strategies": ["official sites", "reviews"]}


@pytest.fixture
def server(platform_server):
    return platform_server()


def test_sgr_kind_uses_one_structured_output_call_per_step(server, scripted_llm, chat_key):
    scripted_llm.enqueue(structured(sgr_step("generate_plan_tool", PLAN)),
                         structured(sgr_step("final_answer_tool", final("A is better."))))

    completion = sync_client(server, chat_key).chat.completions.create(
        model="sgr_agent", messages=[{"role": "user", "content": "Compare A and B"}]
    )

    assert completion.choices[0].message.content == "A is better."
    assert completion.choices[0].finish_reason == "stop"
    first, second = scripted_llm.requests
    for request in (first, second):
        assert "tools" not in request and "tool_choice" not in request
        assert request["response_format"]["type"] == "json_schema"
    schema = first["response_format"]["json_schema"]["schema"]
    assert {"reasoning_steps", "remaining_steps", "task_completed", "action"} <= set(schema["properties"])
    assert "action" in schema["required"]
    branches = {b["properties"]["tool"]["const"] for b in schema["properties"]["action"]["anyOf"]}
    assert {"final_answer_tool", "clarification_tool", "web_search_tool", "generate_plan_tool"} <= branches
    assert "reasoning_tool" not in branches
    # the action of step 1 and its result are in the context of step 2
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "generate_plan_tool"
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(tool["content"])["research_goal"] == "Compare two things"
    state = get_state(server, chat_key, completion.model)
    assert (state["state"], state["iteration"]) == ("completed", 2)
    assert state["current_step_reasoning"] == REASONING
    assert state["context"]["plan"]["planned_steps"] == PLAN["planned_steps"]
    assert list(ToolExecution.objects.filter(session_id=completion.model).values_list("tool_name", "status")) == [
        ("generate_plan_tool", "ok"), ("final_answer_tool", "ok")]


def test_tool_calling_kind_requires_a_tool_call(server, scripted_llm, chat_key):
    scripted_llm.enqueue(tool_call("generate_plan_tool", PLAN), tool_call("final_answer_tool", final("Done.")))

    async def run() -> list:
        stream = await async_client(server, chat_key).chat.completions.create(
            model="tool_calling_agent", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Plan it"}],
        )
        return [c async for c in stream]

    chunks = asyncio.run(run())

    assert [c.id for c in chunks] == ["0-start", "1-action", "1-action", "2-action", "2-action", "2-final", "usage"]
    assert chunks[1].choices[0].delta.tool_calls[0].function.name == "generate_plan_tool"
    assert chunks[-2].choices[0].delta.content == "Done."
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert len(scripted_llm.requests) == 2  # no separate reasoning call
    for request in scripted_llm.requests:
        assert request["tool_choice"] == "required"
        assert "reasoning_tool" not in offered(request)
        assert {"final_answer_tool", "clarification_tool", "generate_plan_tool"} <= set(offered(request))
    assert Session.objects.get(pk=chunks[0].model).state == "completed"


def test_research_flow_stores_sources_and_report(server, scripted_llm, scripted_search, chat_key):
    scripted_search.enqueue([
        result("Battery news", "https://news.example/ssb", "Solid-state batteries reach 500 Wh/kg."),
        result("Lab report", "https://lab.example/report", "Dendrites remain a problem."),
    ])
    report = {"reasoning": "Enough data", "title": "Solid-state batteries",
              "user_request_language_reference": "Research solid-state batteries",
              "content": "Energy density reached 500 Wh/kg [1], but dendrites remain [2].", "confidence": "medium"}
    scripted_llm.enqueue(
        think(), tool_call("web_search_tool", {"reasoning": "Need facts", "query": "solid-state batteries 2024",
                                               "max_results": 3}),
        think(), tool_call("create_report_tool", report),
        think(), tool_call("final_answer_tool", final("See the report: 500 Wh/kg [1].")),
    )

    async def run():
        return await async_client(server, chat_key).chat.completions.create(
            model="research_agent", messages=[{"role": "user", "content": "Research solid-state batteries"}]
        )

    completion = asyncio.run(run())

    session_id = completion.model
    assert completion.choices[0].message.content == "See the report: 500 Wh/kg [1]."
    assert scripted_search.requests[0]["query"] == "solid-state batteries 2024"
    assert scripted_search.requests[0]["max_results"] == 3
    assert list(Source.objects.filter(session_id=session_id).values_list("number", "url", "title")) == [
        (1, "https://news.example/ssb", "Battery news"), (2, "https://lab.example/report", "Lab report")]
    search_result = scripted_llm.requests[2]["messages"][-1]
    assert search_result["role"] == "tool" and "[1] Battery news — https://news.example/ssb" in search_result["content"]
    artifact = Artifact.objects.get(session_id=session_id)
    assert (artifact.kind, artifact.name) == ("report", "Solid-state batteries")
    assert artifact.content.startswith(report["content"])
    assert "## Sources" in artifact.content and "[2] Lab report — https://lab.example/report" in artifact.content
    assert [s["number"] for s in artifact.metadata["sources"]] == [1, 2]
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["searches_used"], state["iteration"]) == ("completed", 1, 3)
    assert state["tool_calls"] == 3
    assert list(ToolExecution.objects.filter(session_id=session_id).values_list("tool_name", flat=True)) == [
        "web_search_tool", "create_report_tool", "final_answer_tool"]


def test_a_tool_that_raises_is_recorded_and_fed_back(platform_server, scripted_llm, chat_key, settings):
    settings.TOOL_ENTRYPOINT_ALLOWLIST = ["runtime.tools.", "tests.tools_for_tests"]
    tool_create(name="exploding_tool", description=ExplodingTool.description, kind="python",
                entrypoint="tests.tools_for_tests:ExplodingTool", parameters=ExplodingTool.parameters_schema())
    template_create(name="explosive_agent", content={
        "agent_kind": "tool_calling", "tool_policy": {"allowlist": ["exploding_tool"]}})
    server = platform_server(TOOL_ENTRYPOINT_ALLOWLIST="runtime.tools.,tests.tools_for_tests")
    scripted_llm.enqueue(tool_call("exploding_tool", {"target": "the reactor"}),
                         tool_call("final_answer_tool", final("The inspection tool is broken.")))

    chunks = list(sync_client(server, chat_key).chat.completions.create(
        model="explosive_agent", stream=True, messages=[{"role": "user", "content": "Inspect the reactor"}]
    ))

    expected = "Error: tool exploding_tool failed: RuntimeError: boom while inspecting the reactor"
    session_id = chunks[0].model
    assert "exploding_tool" in offered(scripted_llm.requests[0])
    fed_back = scripted_llm.requests[1]["messages"][-1]
    assert fed_back["role"] == "tool" and fed_back["content"] == expected
    tool_result = [c for c in chunks if c.id == "1-action" and c.choices[0].delta.model_extra.get("tool_results")]
    assert tool_result[0].choices[0].delta.model_extra["tool_results"][0]["content"] == expected
    execution = ToolExecution.objects.get(session_id=session_id, tool_name="exploding_tool")
    assert execution.status == "error"
    assert execution.error == "tool exploding_tool failed: RuntimeError: boom while inspecting the reactor"
    assert execution.arguments == {"target": "the reactor"}
    assert execution.tool.name == "exploding_tool"
    assert chunks[-1].choices[0].delta.content == "The inspection tool is broken."
    assert Session.objects.get(pk=session_id).state == "completed"
