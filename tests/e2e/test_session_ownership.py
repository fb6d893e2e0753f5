"""Sessions belong to the API key that started them: another chat key is told there is no such
session (404) whether it reads, lists, continues, answers or cancels it, and the session is left
as it was; an admin key sees them all; the owner goes on as before."""

from __future__ import annotations

import httpx
import pytest

from access.services import api_key_create
from sessions_app.models import Session
from tests.e2e.helpers import (
    assert_openai_error,
    auth,
    clarify,
    final,
    sync_client,
    think,
)
from tests.fakes.llm_server import tool_call


@pytest.fixture
def server(platform_server):
    return platform_server()


def _listed(server, key: str) -> set[str]:
    response = httpx.get(f"{server.base_url}/agents", headers=auth(key), timeout=10)
    assert response.status_code == 200, response.text
    return {a["session_id"] for a in response.json()["agents"]}


def test_another_key_cannot_see_or_touch_a_session(server, scripted_llm, chat_key, admin_key):
    other_key = api_key_create(name="another-product").raw
    scripted_llm.enqueue(think(), tool_call("clarification_tool", clarify("Which city?")))
    owner = sync_client(server, chat_key)
    session_id = owner.chat.completions.create(
        model="research_agent", messages=[{"role": "user", "content": "Weather there?"}]).model
    before = Session.objects.get(pk=session_id)
    messages_before = before.messages.count()
    base = server.base_url

    assert_openai_error(httpx.get(f"{base}/agents/{session_id}/state", headers=auth(other_key), timeout=10), 404)
    assert session_id not in _listed(server, other_key)
    continued = httpx.post(f"{base}/v1/chat/completions", headers=auth(other_key), timeout=10, json={
        "model": session_id, "messages": [{"role": "user", "content": "Paris"}]})
    assert_openai_error(continued, 404)
    answered = httpx.post(f"{base}/agents/{session_id}/provide_clarification", headers=auth(other_key), timeout=10,
                          json={"messages": [{"role": "user", "content": "Paris"}], "stream": False})
    assert_openai_error(answered, 404)
    assert_openai_error(httpx.post(f"{base}/agents/{session_id}/cancel", headers=auth(other_key), timeout=10), 404)
    after = Session.objects.get(pk=session_id)
    assert (after.state, after.messages.count()) == ("waiting_for_clarification", messages_before)
    assert len(scripted_llm.requests) == 2  # no run started for the other key

    for key in (chat_key, admin_key):  # the owner and an admin
        state = httpx.get(f"{base}/agents/{session_id}/state", headers=auth(key), timeout=10)
        assert state.status_code == 200 and state.json()["state"] == "waiting_for_clarification"
        assert session_id in _listed(server, key)
    scripted_llm.enqueue(think(), tool_call("final_answer_tool", final("Sunny in Paris.")))
    answer = owner.chat.completions.create(model=session_id, messages=[{"role": "user", "content": "Paris"}])
    assert answer.choices[0].message.content == "Sunny in Paris."
    assert Session.objects.get(pk=session_id).state == "completed"
