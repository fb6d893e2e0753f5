"""Scenario E: an agent calls another agent as a tool; delegation depth and cycles are bounded."""

from __future__ import annotations

from catalog.services import tool_create
from sessions_app.models import Session, SessionState, ToolExecution
from templates_app.services import template_create
from tests.e2e.helpers import clarify, final, get_state, sync_client, think
from tests.fakes.llm_server import tool_call


def _ask(llm, *moves) -> None:
    for name, arguments in moves:
        llm.enqueue(think(), tool_call(name, arguments))


def test_orchestrator_uses_writer_as_a_tool(platform_server, scripted_llm, chat_key):
    server = platform_server()
    _ask(scripted_llm,
         ("ask_writer_agent", {"task": "Write a two-line essay about tea"}),       # orchestrator
         ("final_answer_tool", final("Tea warms.\nTea calms.")),                     # writer (child)
         ("final_answer_tool", final("Here is the essay:\nTea warms.\nTea calms.")))  # orchestrator

    completion = sync_client(server, chat_key).chat.completions.create(
        model="orchestrator_agent", messages=[{"role": "user", "content": "Get me an essay about tea"}]
    )

    assert "Tea warms.\nTea calms." in completion.choices[0].message.content
    parent = Session.objects.get(pk=completion.model)
    child = Session.objects.get(parent=parent)
    assert parent.state == child.state == SessionState.COMPLETED
    assert child.template_version.template.name == "writer_agent"
    assert child.depth == 1 and child.task.startswith("Write a two-line essay about tea")
    assert child.api_key_id == parent.api_key_id is not None  # the child is the same key's to see
    assert get_state(server, chat_key, str(child.pk))["parent_id"] == str(parent.pk)
    assert child.execution_result == "Tea warms.\nTea calms."
    execution = ToolExecution.objects.get(session=parent, tool_name="ask_writer_agent")
    assert execution.status == "ok" and execution.result == "Tea warms.\nTea calms."
    # the child's answer went back to the orchestrator's model as the tool result
    assert {"role": "tool", "tool_call_id": execution.tool_call_id, "content": "Tea warms.\nTea calms."} in \
        scripted_llm.requests[-2]["messages"]
    cost = parent.context["delegations"][0]
    assert cost["session_id"] == str(child.pk) and cost["iterations"] == 1 and cost["tool_calls"] == 1
    assert cost["prompt_tokens"] > 0


def test_child_clarification_is_returned_to_the_parent(platform_server, scripted_llm, chat_key):
    server = platform_server()
    _ask(scripted_llm,
         ("ask_writer_agent", {"task": "Write something"}),
         ("clarification_tool", clarify("About what topic?")),
         ("final_answer_tool", final("I need a topic.")))
    completion = sync_client(server, chat_key).chat.completions.create(
        model="orchestrator_agent", messages=[{"role": "user", "content": "write"}]
    )
    assert completion.choices[0].message.content == "I need a topic."
    child = Session.objects.get(parent_id=completion.model)
    assert child.state == SessionState.CANCELLED and "clarification" in child.error
    execution = ToolExecution.objects.get(session_id=completion.model, tool_name="ask_writer_agent")
    assert "About what topic?" in execution.result


def _chain_templates(*names: str, cycle: bool = False) -> None:
    """Templates names[0] → names[1] → ... each with an agent tool to the next (and back, for a cycle)."""
    links = list(zip(names, names[1:])) + ([(names[-1], names[0])] if cycle else [])
    for source, target in links:
        tool_create(name=f"to_{target}", description=f"Delegate to {target}", kind="agent", target_template=target)
    for name in names:
        allow = [f"to_{t}" for s, t in links if s == name]
        template_create(name=name, content={"agent_kind": "sgr_tool_calling", "tool_policy": {"allowlist": allow}})


def test_cycle_is_refused(platform_server, scripted_llm, chat_key):
    _chain_templates("agent_a", "agent_b", cycle=True)
    server = platform_server()
    _ask(scripted_llm,
         ("to_agent_b", {"task": "go"}),             # a → b
         ("to_agent_a", {"task": "back"}),           # b → a: refused
         ("final_answer_tool", final("b done")),     # b
         ("final_answer_tool", final("a done")))     # a
    completion = sync_client(server, chat_key).chat.completions.create(
        model="agent_a", messages=[{"role": "user", "content": "start"}]
    )
    assert completion.choices[0].message.content == "a done"
    child = Session.objects.get(parent_id=completion.model)
    refused = ToolExecution.objects.get(session=child, tool_name="to_agent_a")
    assert refused.status == "error"
    assert "agent_a → agent_b → agent_a would be a cycle" in refused.error
    assert not Session.objects.filter(parent=child).exists()


def test_depth_limit(platform_server, scripted_llm, chat_key):
    _chain_templates("level_0", "level_1", "level_2")
    server = platform_server(AGENT_MAX_DELEGATION_DEPTH="1")
    _ask(scripted_llm,
         ("to_level_1", {"task": "go"}),
         ("to_level_2", {"task": "deeper"}),         # depth 2 > 1: refused
         ("final_answer_tool", final("level 1 done")),
         ("final_answer_tool", final("level 0 done")))
    completion = sync_client(server, chat_key).chat.completions.create(
        model="level_0", messages=[{"role": "user", "content": "start"}]
    )
    assert completion.choices[0].message.content == "level 0 done"
    child = Session.objects.get(parent_id=completion.model)
    refused = ToolExecution.objects.get(session=child, tool_name="to_level_2")
    assert refused.status == "error" and "depth 2 is over the limit of 1" in refused.error
