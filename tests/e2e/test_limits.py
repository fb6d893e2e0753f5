"""``max_iterations`` is a hard cap: the last step offers only ``final_answer_tool`` and the run ends."""

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
    sse_events,
    sync_client,
    think,
)
from tests.fakes.llm_server import tool_call


@pytest.fixture
def server(platform_server):
    for kind in ("tool_calling", "sgr_tool_calling"):
        template_create(name=f"short_{kind}", content={
            "agent_kind": kind, "execution_policy": {"max_iterations": 2},
            "tool_policy": {"allowlist": ["generate_plan_tool", "web_search_tool"]},
        })
    return platform_server()


def test_last_step_offers_only_the_final_answer(server, scripted_llm, chat_key):
    scripted_llm.enqueue(
        think(), tool_call("generate_plan_tool", PLAN),
        think(), tool_call("final_answer_tool", final("Answered at the limit.")),
    )

    chunks = list(sync_client(server, chat_key).chat.completions.create(
        model="short_sgr_tool_calling", stream=True, messages=[{"role": "user", "content": "Go"}]
    ))

    _, action_1, reasoning_2, action_2 = scripted_llm.requests
    assert {"generate_plan_tool", "web_search_tool", "clarification_tool", "final_answer_tool"} <= set(offered(action_1))
    assert offered(action_2) == ["final_answer_tool"]
    assert offered(reasoning_2) == ["reasoning_tool"]
    assert chunks[-1].choices[0].delta.content == "Answered at the limit."
    state = get_state(server, chat_key, chunks[0].model)
    assert (state["state"], state["iteration"]) == ("completed", 2)
    assert state["context"]["last_offered"]["removed"]["generate_plan_tool"] == "max_iterations=2: last step must answer"


def test_a_model_that_never_answers_is_stopped_at_the_limit(server, scripted_llm, chat_key):
    scripted_llm.set_responder(lambda body: tool_call("generate_plan_tool", PLAN))
    client = sync_client(server, chat_key)

    completion = client.chat.completions.create(
        model="short_tool_calling", messages=[{"role": "user", "content": "Go"}]
    )

    # step 1 plans; step 2 offers only the final answer, the model insists on planning, is told
    # so each time, and after the allowed retries the run ends at the limit: failed, with the reason
    reason = ("max_iterations=2 reached without a final answer (the model produced invalid output 3 times "
              "in a row; last error: unknown or not offered tool 'generate_plan_tool')")
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == f"Stopped: {reason}."
    requests = scripted_llm.requests
    assert len(requests) == 4
    assert "generate_plan_tool" in offered(requests[0])
    for request in requests[1:]:
        assert offered(request) == ["final_answer_tool"]
        assert request["tool_choice"] == "required"
    assert requests[2]["messages"][-1]["content"] == (
        "Error: Tool 'generate_plan_tool' is not available now. "
        "Respond by calling exactly one of the tools: final_answer_tool.")
    session = Session.objects.get(pk=completion.model)
    assert (session.state, session.iteration, session.error) == ("failed", 2, reason)
    assert list(ToolExecution.objects.filter(session=session).values_list("tool_name", flat=True)) == [
        "generate_plan_tool"]

    # the same through a stream: the step-1 chunks, a final chunk that says why, then [DONE]
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", headers=auth(chat_key), timeout=30,
                      json={"model": "short_tool_calling", "stream": True,
                            "messages": [{"role": "user", "content": "Go"}]}) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    assert [e.get("id") for e in events[:-1]] == ["0-start", "1-action", "1-action", "2-final"]
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-2]["choices"][0]["delta"]["content"] == f"Stopped: {reason}."
    assert len(scripted_llm.requests) == 8
