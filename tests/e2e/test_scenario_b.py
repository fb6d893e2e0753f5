"""Scenario B: clarification → waiting_for_clarification → the client continues → completed.

Continuation by ``model=<session_id>`` and by ``POST /agents/{id}/provide_clarification``, also
across a server restart; a waiting session holds no instance; ``max_clarifications`` is a hard cap.
"""

import asyncio

import httpx
import openai
import pytest

from sessions_app.models import InstanceStatus, Session
from templates_app.services import template_create
from tests.e2e.helpers import (
    assert_openai_error,
    async_client,
    auth,
    clarify,
    final,
    get_state,
    offered,
    sse_events,
    sync_client,
    think,
)
from tests.fakes.llm_server import tool_call

QUESTIONS = ("Which city do you mean?", "For which year?")


def ask_first(scripted_llm) -> None:
    scripted_llm.enqueue(think(), tool_call("clarification_tool", clarify(*QUESTIONS)))


def answer_next(scripted_llm, answer: str) -> None:
    scripted_llm.enqueue(think(), tool_call("final_answer_tool", final(answer)))


def provide_clarification(server, key: str, session_id: str, text: str) -> list:
    with httpx.stream(
        "POST", f"{server.base_url}/agents/{session_id}/provide_clarification", headers=auth(key),
        json={"messages": [{"role": "user", "content": text}]}, timeout=30,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-session-id"] == session_id
        return sse_events(response)


def assert_waiting(server, key: str, session_id: str) -> None:
    state = get_state(server, key, session_id)
    assert state["state"] == "waiting_for_clarification"
    assert state["clarifications_used"] == 1
    assert state["execution_result"] == "\n".join(QUESTIONS)
    session = Session.objects.select_related("instance").get(pk=session_id)
    # the run ended: its instance went back to the pool, serving nobody
    assert session.instance.status == InstanceStatus.IDLE
    assert session.instance.current_session_id is None


@pytest.fixture
def server(platform_server):
    return platform_server()


def test_clarify_then_continue_with_session_id_as_model(server, scripted_llm, chat_key):
    ask_first(scripted_llm)
    client = sync_client(server, chat_key)

    chunks = list(client.chat.completions.create(
        model="research_agent", stream=True, messages=[{"role": "user", "content": "Weather there?"}]
    ))

    session_id = chunks[0].model
    last = chunks[-1]
    assert last.choices[0].delta.content == "\n".join(QUESTIONS)
    assert last.choices[0].finish_reason == "stop"
    assert_waiting(server, chat_key, session_id)
    listed = httpx.get(server.base_url + "/agents", headers=auth(chat_key), timeout=10).json()["agents"]
    assert [a["session_id"] for a in listed] == [session_id]
    assert listed[0]["state"] == "waiting_for_clarification"

    answer_next(scripted_llm, "Sunny in Paris.")
    completion = client.chat.completions.create(model=session_id, messages=[  # the whole chat, as UIs resend it
        {"role": "user", "content": "Weather there?"},
        {"role": "assistant", "content": "\n".join(QUESTIONS)},
        {"role": "user", "content": "Paris, 2024"},
    ])

    assert completion.model == session_id
    assert completion.choices[0].message.content == "Sunny in Paris."
    state = get_state(server, chat_key, session_id)
    assert state["state"] == "completed"
    assert state["clarifications_used"] == 1
    assert state["iteration"] == 2
    # the answer reached the model, after its own question and the tool result
    resumed = scripted_llm.requests[2]["messages"]
    assert resumed[-1] == {"role": "user", "content": "Clarifications from the user:\nParis, 2024"}
    assert resumed[-2]["role"] == "tool" and resumed[-2]["content"] == "\n".join(QUESTIONS)
    assert [m["content"] for m in resumed if m["role"] == "user"] == [  # the resent chat is not duplicated
        "Weather there?", "Clarifications from the user:\nParis, 2024"]
    assert Session.objects.get(pk=session_id).instance.status == InstanceStatus.IDLE
    assert httpx.get(server.base_url + "/agents", headers=auth(chat_key), timeout=10).json()["agents"] == []

    # a completed session cannot be continued: 409, OpenAI-shaped, by both routes
    with pytest.raises(openai.ConflictError) as caught:
        client.chat.completions.create(model=session_id, messages=[{"role": "user", "content": "more"}])
    assert_openai_error(caught.value.response, 409, "session_not_waiting")
    response = httpx.post(f"{server.base_url}/agents/{session_id}/provide_clarification", headers=auth(chat_key),
                          json={"messages": [{"role": "user", "content": "more"}]}, timeout=10)
    err = assert_openai_error(response, 409, "session_not_waiting")
    assert "completed" in err["message"]
    assert len(scripted_llm.requests) == 4  # the rejected continuations never reached the model


def test_clarify_then_provide_clarification_streams_the_continuation(server, scripted_llm, chat_key):
    ask_first(scripted_llm)

    async def start() -> str:
        client = async_client(server, chat_key)
        stream = await client.chat.completions.create(
            model="research_agent", stream=True, messages=[{"role": "user", "content": "Weather there?"}]
        )
        chunks = [c async for c in stream]
        assert chunks[-1].choices[0].delta.content == "\n".join(QUESTIONS)
        assert chunks[-1].choices[0].finish_reason == "stop"
        return chunks[0].model

    session_id = asyncio.run(start())
    assert_waiting(server, chat_key, session_id)

    answer_next(scripted_llm, "Sunny in Paris.")
    events = provide_clarification(server, chat_key, session_id, "Paris, 2024")

    assert events[-1] == "[DONE]"
    assert all(e["model"] == session_id and e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert [e["id"] for e in events[:-1]] == ["0-start", "2-reasoning", "2-action", "2-action", "2-final"]
    assert events[-2]["choices"][0]["delta"]["content"] == "Sunny in Paris."
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["execution_result"]) == ("completed", "Sunny in Paris.")
    assert scripted_llm.requests[2]["messages"][-1]["content"] == "Clarifications from the user:\nParis, 2024"


@pytest.mark.parametrize("route", ["provide_clarification", "model"])
def test_waiting_session_survives_a_restart(server, scripted_llm, chat_key, route):
    ask_first(scripted_llm)
    client = sync_client(server, chat_key)
    first = client.chat.completions.create(
        model="research_agent", messages=[{"role": "user", "content": "Weather there?"}]
    )
    session_id = first.model
    assert first.choices[0].message.content == "\n".join(QUESTIONS)
    assert_waiting(server, chat_key, session_id)

    server.restart()

    assert get_state(server, chat_key, session_id)["state"] == "waiting_for_clarification"
    answer_next(scripted_llm, "Sunny in Paris.")
    if route == "provide_clarification":
        events = provide_clarification(server, chat_key, session_id, "Paris, 2024")
        assert events[-1] == "[DONE]"
        text = events[-2]["choices"][0]["delta"]["content"]
    else:
        async def resume() -> str:
            stream = await async_client(server, chat_key).chat.completions.create(
                model=session_id, stream=True, messages=[{"role": "user", "content": "Paris, 2024"}]
            )
            return [c async for c in stream][-1].choices[0].delta.content

        text = asyncio.run(resume())

    assert text == "Sunny in Paris."
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["iteration"], state["clarifications_used"]) == ("completed", 2, 1)
    # the whole history was reloaded from the database by the new process
    resumed = scripted_llm.requests[2]["messages"]
    assert [m["role"] for m in resumed[1:]] == ["user", "assistant", "tool", "assistant", "tool", "user"]
    assert resumed[1]["content"] == "Weather there?"
    session = Session.objects.select_related("instance").get(pk=session_id)
    assert session.instance.status == InstanceStatus.IDLE
    assert session.instance.pid == server.proc.pid  # served by the new process


def test_max_clarifications_removes_the_clarification_tool(platform_server, scripted_llm, chat_key):
    template_create(name="one_question_agent", content={
        "agent_kind": "sgr_tool_calling",
        "execution_policy": {"max_clarifications": 1},
        "tool_policy": {"allowlist": ["web_search_tool"]},
    })
    server = platform_server()
    ask_first(scripted_llm)
    client = sync_client(server, chat_key)
    session_id = client.chat.completions.create(
        model="one_question_agent", messages=[{"role": "user", "content": "Weather there?"}]
    ).model
    answer_next(scripted_llm, "Sunny.")

    client.chat.completions.create(model=session_id, messages=[{"role": "user", "content": "Paris"}])

    _, action_1, reasoning_2, action_2 = scripted_llm.requests
    assert "clarification_tool" in offered(action_1)
    assert "clarification_tool" not in offered(action_2)
    assert set(offered(action_2)) == {"final_answer_tool", "web_search_tool"}
    assert offered(reasoning_2) == ["reasoning_tool"]
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["clarifications_used"]) == ("completed", 1)
    assert state["context"]["last_offered"]["removed"] == {"clarification_tool": "max_clarifications=1"}
