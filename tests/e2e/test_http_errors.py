"""Every error status of the HTTP surface is OpenAI-shaped ``{"error": {"message", "type", "code"}}``;
``/v1/models``, ``/agents`` and ``/agents/{id}/state`` answer with the documented shapes."""

import time
import uuid

import httpx
import openai
import pytest

from access.services import api_key_create, api_key_revoke
from tests.e2e.helpers import (
    assert_openai_error,
    auth,
    final,
    get_state,
    sgr_step,
    sse_events,
    sync_client,
    think,
)
from tests.fakes.llm_server import delay, structured, tool_call

CHAT = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def server(platform_server):
    return platform_server(MAX_REQUEST_BYTES="2000", POOL_PER_VERSION="1", POOL_ACQUIRE_TIMEOUT_S="0.5")


def post(server, path: str, key: str | None, **kwargs) -> httpx.Response:
    headers = {**(auth(key) if key else {}), **kwargs.pop("headers", {})}
    return httpx.post(server.base_url + path, headers=headers, timeout=10, **kwargs)


def test_request_errors(server, scripted_llm, chat_key):
    client = sync_client(server, chat_key)
    completions = "/v1/chat/completions"

    # 400: the body is not JSON, not an object, or not a valid chat completion request
    err = assert_openai_error(post(server, completions, chat_key, content=b'{"model": "research_agent",'), 400,
                              "invalid_json")
    assert err["type"] == "invalid_request_error" and "not valid JSON" in err["message"]
    assert_openai_error(post(server, completions, chat_key, json=["research_agent"]), 400, "invalid_request")
    err = assert_openai_error(post(server, completions, chat_key, json={"model": "research_agent"}), 400)
    assert "messages" in err["message"]
    assert_openai_error(post(server, completions, chat_key, json={"model": "research_agent", "messages": []}), 400)
    assert_openai_error(post(server, completions, chat_key, json={
        "model": "research_agent", "messages": [{"role": "wizard", "content": "Hi"}]}), 400)
    assert_openai_error(post(server, completions, chat_key, json={
        "model": "research_agent", "messages": [{"role": "system", "content": "Only a system prompt"}]}), 400)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="research_agent", messages=CHAT, n=2)
    err = assert_openai_error(caught.value.response, 400, "unsupported_parameter")
    assert err["param"] == "n"
    assert_openai_error(post(server, "/agents/" + str(uuid.uuid4()) + "/provide_clarification", chat_key,
                             json={"messages": "not a list"}), 400)

    # 401: no key, a wrong key, a revoked key — on the consumer routes and the DRF ones
    revoked = api_key_create(name="revoked")
    api_key_revoke(key=revoked.key)
    for key in (None, "ap-not-a-real-key", revoked.raw):
        assert_openai_error(post(server, completions, key, json={"model": "research_agent", "messages": CHAT}), 401,
                            "invalid_api_key")
        response = httpx.get(server.base_url + "/v1/models", headers=auth(key) if key else {}, timeout=10)
        assert_openai_error(response, 401)
        assert_openai_error(post(server, f"/agents/{uuid.uuid4()}/cancel", key), 401)
    with pytest.raises(openai.AuthenticationError) as caught:
        sync_client(server, revoked.raw).chat.completions.create(model="research_agent", messages=CHAT)
    assert_openai_error(caught.value.response, 401, "invalid_api_key")
    assert_openai_error(post(server, completions, None, headers={"Authorization": "Basic dXNlcjpwYXNz"},
                             json={"model": "research_agent", "messages": CHAT}), 401)

    # 404: an unknown template, an unknown session (as the model and on the /agents routes)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no_such_agent", messages=CHAT)
    assert "no_such_agent" in assert_openai_error(caught.value.response, 404, "template_not_found")["message"]
    unknown = str(uuid.uuid4())
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=unknown, messages=CHAT, stream=True)
    assert_openai_error(caught.value.response, 404, "session_not_found")
    assert_openai_error(post(server, f"/agents/{unknown}/provide_clarification", chat_key, json={"messages": CHAT}),
                        404, "session_not_found")
    assert_openai_error(post(server, f"/agents/{unknown}/cancel", chat_key), 404, "session_not_found")
    assert_openai_error(httpx.get(f"{server.base_url}/agents/{unknown}/state", headers=auth(chat_key)), 404,
                        "session_not_found")
    # ... and routes that do not exist under the API prefixes (an OpenAI client parses the body)
    assert_openai_error(post(server, "/v1/embeddings", chat_key, json={"input": "x"}), 404, "not_found")
    assert_openai_error(httpx.get(f"{server.base_url}/agents/not-a-session/state", headers=auth(chat_key)), 404,
                        "not_found")

    # 405: the wrong method
    response = httpx.get(server.base_url + completions, headers=auth(chat_key), timeout=10)
    assert_openai_error(response, 405, "method_not_allowed")
    assert_openai_error(httpx.get(f"{server.base_url}/agents/{unknown}/cancel", headers=auth(chat_key)), 405)
    assert_openai_error(post(server, "/v1/models", chat_key), 405)

    # 413: a body over MAX_REQUEST_BYTES (2000 here), streamed or not
    big = [{"role": "user", "content": "x" * 3000}]
    for stream in (False, True):
        response = post(server, completions, chat_key, json={"model": "research_agent", "messages": big,
                                                              "stream": stream})
        assert "2000 bytes" in assert_openai_error(response, 413, "payload_too_large")["message"]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="research_agent", messages=big)
    assert_openai_error(caught.value.response, 413, "payload_too_large")

    assert scripted_llm.requests == []  # no rejected request reached the model


def test_pool_full_is_503_and_other_versions_still_serve(server, scripted_llm, chat_key):
    scripted_llm.enqueue(delay(3, think()))
    client = sync_client(server, chat_key)

    with httpx.stream("POST", server.base_url + "/v1/chat/completions", headers=auth(chat_key), timeout=30,
                      json={"model": "research_agent", "stream": True, "messages": CHAT}) as busy:
        deadline = time.monotonic() + 10
        while not scripted_llm.requests:  # the only research_agent instance is now busy
            assert time.monotonic() < deadline
            time.sleep(0.05)

        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="research_agent", messages=CHAT)
        waited = time.monotonic() - started
        err = assert_openai_error(caught.value.response, 503, "pool_exhausted")
        assert "research_agent" in err["message"] and "retry later" in err["message"]
        assert 0.5 <= waited < 3  # POOL_ACQUIRE_TIMEOUT_S=0.5, then the answer
        with pytest.raises(openai.InternalServerError):  # streaming requests are refused before the stream
            client.chat.completions.create(model="research_agent", messages=CHAT, stream=True)

        scripted_llm.enqueue(structured(sgr_step("final_answer_tool", final("Other template."))))
        other = client.chat.completions.create(model="sgr_agent", messages=CHAT)  # its own pool slot
        assert other.choices[0].message.content == "Other template."

        scripted_llm.enqueue(tool_call("final_answer_tool", final("Finally.")))
        events = sse_events(busy)
    assert events[-2]["choices"][0]["delta"]["content"] == "Finally."
    first_id = busy.headers["x-session-id"]

    # the instance is back in the pool and serves the next session
    scripted_llm.enqueue(think(), tool_call("final_answer_tool", final("Again.")))
    again = client.chat.completions.create(model="research_agent", messages=CHAT)
    assert again.choices[0].message.content == "Again."
    assert get_state(server, chat_key, again.model)["instance_id"] == get_state(server, chat_key, first_id)["instance_id"]


def test_models_agents_and_state_shapes(platform_server, scripted_llm, chat_key):
    server = platform_server()
    client = sync_client(server, chat_key)

    models = client.models.list().data
    by_id = {m.id: m for m in models}
    assert {"research_agent", "sgr_agent", "tool_calling_agent"} <= set(by_id)
    assert all(m.object == "model" for m in models)
    assert (by_id["sgr_agent"].agent_kind, by_id["tool_calling_agent"].agent_kind) == ("sgr", "tool_calling")

    scripted_llm.enqueue(think(), delay(2, tool_call("final_answer_tool", final("Done."))))
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", headers=auth(chat_key), timeout=30,
                      json={"model": "research_agent", "stream": True, "messages": CHAT}) as running:
        session_id = running.headers["x-session-id"]
        deadline = time.monotonic() + 10
        while len(scripted_llm.requests) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        listed = httpx.get(server.base_url + "/agents", headers=auth(chat_key), timeout=10).json()["agents"]
        assert [(a["session_id"], a["state"]) for a in listed] == [(session_id, "researching")]
        live = get_state(server, chat_key, session_id)
        assert live["current_step_reasoning"]["remaining_steps"] == ["Take the next action"]
        assert live["iteration"] == 1 and live["instance_id"]
        sse_events(running)

    state = get_state(server, chat_key, session_id)
    assert {"session_id", "template", "version", "instance_id", "state", "iteration", "searches_used",
            "clarifications_used", "current_step_reasoning", "execution_result"} <= set(state)
    assert state["session_id"] == session_id
    assert (state["template"], state["version"], state["state"]) == ("research_agent", 1, "completed")
    assert (state["iteration"], state["searches_used"], state["clarifications_used"]) == (1, 0, 0)
    assert state["instance_id"] == live["instance_id"]
    assert state["execution_result"] == "Done."
    assert httpx.get(server.base_url + "/agents", headers=auth(chat_key), timeout=10).json()["agents"] == []
