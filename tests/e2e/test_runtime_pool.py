"""Persistent runtime: instance reuse and reset, crash recovery, several server processes."""

from __future__ import annotations

import threading
import time

import httpx

from sessions_app.models import AgentInstance, InstanceStatus, Session, SessionState
from tests.e2e.helpers import auth, clarify, final, sync_client, think
from tests.fakes.llm_server import delay, tool_call


def _answer(llm, text: str) -> None:
    llm.enqueue(think(), tool_call("final_answer_tool", final(text)))


def test_ten_sequential_sessions_reuse_one_instance(platform_server, scripted_llm, chat_key, admin_key):
    server = platform_server()
    client = sync_client(server, chat_key)
    instance_ids = set()
    for n in range(10):
        _answer(scripted_llm, f"answer {n}")
        completion = client.chat.completions.create(
            model="research_agent", messages=[{"role": "user", "content": f"question {n}"}]
        )
        assert completion.choices[0].message.content == f"answer {n}"
        session = Session.objects.get(pk=completion.model)
        instance_ids.add(session.instance_id)
        assert session.instance.status == InstanceStatus.IDLE
        assert session.instance.current_session_id is None
    assert len(instance_ids) == 1
    instance = AgentInstance.objects.get(pk=instance_ids.pop())
    assert instance.sessions_served == 10
    assert instance.memory_rss_bytes > 0
    listed = httpx.get(server.base_url + "/admin/instances", headers=auth(admin_key)).json()["instances"]
    assert [i["sessions_served"] for i in listed if i["instance_id"] == str(instance.pk)] == [10]
    # each session started clean: the second request of session n carries only its own question
    last_request = scripted_llm.requests[-1]
    users = [m["content"] for m in last_request["messages"] if m["role"] == "user"]
    assert users == ["question 9"]


def test_kill_9_mid_session_is_recovered_on_restart(platform_server, scripted_llm, chat_key):
    server = platform_server()
    scripted_llm.enqueue(delay(30, think()))
    client = sync_client(server, chat_key)
    errors = []

    def call():
        try:
            client.chat.completions.create(model="research_agent", messages=[{"role": "user", "content": "slow"}])
        except Exception as exc:  # the server dies under it
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 10
    while not scripted_llm.requests and time.monotonic() < deadline:  # the run is waiting on the LLM
        time.sleep(0.05)
    session = Session.objects.get(state=SessionState.RESEARCHING)
    server.kill()
    thread.join(10)
    assert errors
    assert AgentInstance.objects.get(pk=session.instance_id).status == InstanceStatus.BUSY  # left behind

    server.start()  # the restart recovers what the dead process left
    session.refresh_from_db()
    assert session.state == SessionState.FAILED
    assert "stopped unexpectedly" in session.error
    assert AgentInstance.objects.get(pk=session.instance_id).status == InstanceStatus.STOPPED
    scripted_llm.set_responder(None)
    _answer(scripted_llm, "healthy")
    completion = sync_client(server, chat_key).chat.completions.create(
        model="research_agent", messages=[{"role": "user", "content": "again"}]
    )
    assert completion.choices[0].message.content == "healthy"


def test_clarification_started_on_one_process_continued_on_another(platform_server, scripted_llm, chat_key, redis_url):
    first = platform_server(REDIS_URL=redis_url)
    second = platform_server(REDIS_URL=redis_url)
    scripted_llm.enqueue(think(), tool_call("clarification_tool", clarify("Which city?")))
    waiting = sync_client(first, chat_key).chat.completions.create(
        model="research_agent", messages=[{"role": "user", "content": "weather?"}]
    )
    assert waiting.choices[0].message.content == "Which city?"
    session_id = waiting.model
    assert Session.objects.get(pk=session_id).state == SessionState.WAITING_FOR_CLARIFICATION

    _answer(scripted_llm, "Sunny in Paris")
    done = sync_client(second, chat_key).chat.completions.create(
        model=session_id, messages=[{"role": "user", "content": "Paris"}]
    )
    assert done.choices[0].message.content == "Sunny in Paris"
    session = Session.objects.get(pk=session_id)
    assert session.state == SessionState.COMPLETED
    assert session.instance.pid == second.proc.pid


def test_cancel_from_another_process(platform_server, scripted_llm, chat_key, redis_url):
    first = platform_server(REDIS_URL=redis_url)
    second = platform_server(REDIS_URL=redis_url)
    scripted_llm.enqueue(delay(30, think()))
    result: dict = {}

    def stream():
        with httpx.stream(
            "POST", first.base_url + "/v1/chat/completions", headers=auth(chat_key), timeout=30,
            json={"model": "research_agent", "stream": True, "messages": [{"role": "user", "content": "slow"}]},
        ) as response:
            result["lines"] = [line for line in response.iter_lines() if line]

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 10
    while not scripted_llm.requests and time.monotonic() < deadline:  # the run is waiting on the LLM
        time.sleep(0.05)
    session = Session.objects.get(state=SessionState.RESEARCHING)

    response = httpx.post(f"{second.base_url}/agents/{session.pk}/cancel", headers=auth(chat_key), timeout=20)
    assert response.status_code == 200
    assert response.json()["state"] == SessionState.CANCELLED
    thread.join(15)
    assert not thread.is_alive()
    assert any("session_cancelled" in line for line in result["lines"])  # in-band event on the first server
    session.refresh_from_db()
    assert session.state == SessionState.CANCELLED
    assert session.messages.exists()  # history kept
    assert AgentInstance.objects.get(pk=session.instance_id).status == InstanceStatus.IDLE
