"""Cancellation: a client that disconnects mid-stream, and ``POST /agents/{id}/cancel``."""

import json
import time

import httpx
import pytest

from sessions_app.models import InstanceStatus, Session, SessionMessage
from tests.e2e.helpers import (
    PLAN,
    assert_openai_error,
    auth,
    clarify,
    final,
    get_state,
    sync_client,
    think,
)
from tests.fakes.llm_server import delay, tool_call


@pytest.fixture
def server(platform_server):
    return platform_server()


def open_stream(server, key: str, model: str = "research_agent"):
    return httpx.stream("POST", server.base_url + "/v1/chat/completions", headers=auth(key), timeout=30,
                        json={"model": model, "stream": True, "messages": [{"role": "user", "content": "Go"}]})


def events_of(response):
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[len("data: "):])


def wait_for_state(server, key: str, session_id: str, state: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        current = get_state(server, key, session_id)
        if current["state"] == state or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_disconnect_mid_stream_cancels_the_session(server, scripted_llm, chat_key):
    # run 1: the client leaves while the very first LLM call is pending
    # run 2: the client leaves after one full step, while the next LLM call is pending
    scripted_llm.enqueue(delay(10, think()),
                         think(), tool_call("generate_plan_tool", PLAN), delay(10, think()))

    with open_stream(server, chat_key) as response:
        first_id = response.headers["x-session-id"]
        events = events_of(response)  # keep a reference: a collected generator closes the response
        assert next(events)["id"] == "0-start"
        wait_for(lambda: len(scripted_llm.requests) == 1)  # leave while the LLM is thinking
    with open_stream(server, chat_key) as response:
        second_id = response.headers["x-session-id"]
        for event in events_of(response):
            if event["choices"][0]["delta"].get("tool_results"):  # the plan's result
                break
        wait_for(lambda: len(scripted_llm.requests) == 4)

    for session_id, kept in ((first_id, ["user"]), (second_id, ["user", "assistant", "tool", "assistant", "tool"])):
        state = wait_for_state(server, chat_key, session_id, "cancelled")
        assert state["state"] == "cancelled"
        assert "cancelled" in state["error"]
        roles = list(SessionMessage.objects.filter(session_id=session_id).order_by("seq").values_list("role", flat=True))
        assert roles == kept
        session = Session.objects.select_related("instance").get(pk=session_id)
        assert session.finished_at is not None
        assert session.instance.status == InstanceStatus.IDLE
    assert len(scripted_llm.requests) == 4
    assert get_state(server, chat_key, second_id)["context"]["plan"]["research_goal"] == "Answer"


def test_cancel_endpoint(server, scripted_llm, chat_key):
    scripted_llm.enqueue(think(), tool_call("clarification_tool", clarify("Which one?")))
    client = sync_client(server, chat_key)
    session_id = client.chat.completions.create(
        model="research_agent", messages=[{"role": "user", "content": "Tell me about it"}]).model
    assert get_state(server, chat_key, session_id)["state"] == "waiting_for_clarification"

    response = httpx.post(f"{server.base_url}/agents/{session_id}/cancel", headers=auth(chat_key), timeout=10)

    assert response.status_code == 200
    assert response.json() == {"session_id": session_id, "state": "cancelled"}
    assert get_state(server, chat_key, session_id)["state"] == "cancelled"
    assert httpx.get(server.base_url + "/agents", headers=auth(chat_key), timeout=10).json()["agents"] == []
    # a cancelled session cannot be continued, nor cancelled again into another state
    again = httpx.post(f"{server.base_url}/agents/{session_id}/provide_clarification", headers=auth(chat_key),
                       json={"messages": [{"role": "user", "content": "This one"}]}, timeout=10)
    assert_openai_error(again, 409, "session_not_waiting")
    response = httpx.post(f"{server.base_url}/agents/{session_id}/cancel", headers=auth(chat_key), timeout=10)
    assert response.json()["state"] == "cancelled"


def test_cancel_endpoint_stops_a_running_stream(server, scripted_llm, chat_key):
    scripted_llm.enqueue(delay(10, think()))

    with open_stream(server, chat_key) as response:
        session_id = response.headers["x-session-id"]
        events = events_of(response)
        assert next(events)["id"] == "0-start"
        wait_for(lambda: len(scripted_llm.requests) == 1)
        cancelled = httpx.post(f"{server.base_url}/agents/{session_id}/cancel", headers=auth(chat_key), timeout=10)
        assert cancelled.status_code == 200
        assert cancelled.json()["state"] == "cancelled"
        started = time.monotonic()
        rest = list(events)  # the stream must end now, not hang until the client gives up

    assert time.monotonic() - started < 5
    assert rest and rest[-1]["error"]["code"] == "session_cancelled"
    assert get_state(server, chat_key, session_id)["state"] == "cancelled"


def _ended_elsewhere_while_thinking(scripted_llm, session_id: str, to: str, error: str) -> None:
    """What a cancel that never reached the running process, or another process's reaper, does:
    the session's row moves while its run waits for the LLM."""
    from sessions_app.services import session_transition

    wait_for(lambda: len(scripted_llm.requests) == 1)
    wait_for(lambda: Session.objects.filter(pk=session_id).exists())  # its opening write overlaps that call
    session_transition(session_id=session_id, to=to, error=error)


def test_a_run_whose_session_was_cancelled_elsewhere_tells_its_client_so(server, scripted_llm, chat_key):
    scripted_llm.enqueue(delay(1.5, think()), tool_call("final_answer_tool", final("4")))
    with open_stream(server, chat_key) as response:
        session_id = response.headers["x-session-id"]
        _ended_elsewhere_while_thinking(scripted_llm, session_id, "cancelled", "cancelled elsewhere")
        events = list(events_of(response))
    assert events[-1]["error"]["code"] == "session_cancelled"  # in-band, not the answer "4"
    state = get_state(server, chat_key, session_id)
    assert (state["state"], state["error"]) == ("cancelled", "cancelled elsewhere")


def test_a_run_whose_session_was_failed_elsewhere_answers_409_with_the_reason(server, scripted_llm, chat_key):
    import threading

    scripted_llm.enqueue(delay(1.5, think()), tool_call("final_answer_tool", final("4")))
    started = {}

    def reap() -> None:
        wait_for(lambda: Session.objects.exists())
        started["id"] = str(Session.objects.get().pk)
        _ended_elsewhere_while_thinking(scripted_llm, started["id"], "failed", "stopped sending heartbeats")

    reaper = threading.Thread(target=reap)
    reaper.start()
    response = httpx.post(server.base_url + "/v1/chat/completions", headers=auth(chat_key), timeout=30,
                          json={"model": "research_agent", "messages": [{"role": "user", "content": "Go"}]})
    reaper.join()
    err = assert_openai_error(response, 409, "invalid_transition")
    assert err["message"] == "The session was ended elsewhere while it ran (failed: stopped sending heartbeats)"
    assert response.json()["session_id"] == started["id"]
    roles = list(SessionMessage.objects.filter(session_id=started["id"]).order_by("seq").values_list("role", flat=True))
    assert roles[-2:] == ["assistant", "tool"]  # the final step is recorded all the same
