"""The LLM fails (HTTP 500, timeout, a body that is not JSON) or misbehaves (unusable output).

Transport failures end the session ``failed``: a non-streaming client gets a 502 OpenAI-shaped
error with the reason, a streaming client an in-band error event, then the stream closes.
Unusable output is retried with feedback to the model, a bounded number of times.
"""

import asyncio

import httpx
import openai
import pytest

from sessions_app.models import Session, SessionMessage
from templates_app.services import template_create
from tests.e2e.helpers import (
    assert_openai_error,
    async_client,
    auth,
    final,
    sgr_step,
    sse_events,
    sync_client,
    think,
)
from tests.fakes.llm_server import content, delay, error, garbage, structured, tool_call

FAILURES = {
    "http_500": (error(500, "upstream exploded"), "LLM returned HTTP 500"),
    "timeout": (delay(3, tool_call("reasoning_tool", {})), "LLM timed out after 1s"),
    "not_json": (garbage(), "LLM sent a response that is not valid JSON"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_llm_failure_fails_the_session_cleanly(platform_server, scripted_llm, chat_key, failure):
    template_create(name="impatient_agent", content={"llm_config": {"timeout_s": 1}})
    server = platform_server()
    reply, reason = FAILURES[failure]
    scripted_llm.enqueue(reply, reply, reply)
    client = sync_client(server, chat_key)

    # non-streaming: 502 with the reason and the session id
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="impatient_agent", messages=[{"role": "user", "content": "Hi"}])
    err = assert_openai_error(caught.value.response, 502, "llm_error")
    assert err["type"] == "upstream_error"
    assert err["message"].startswith(reason)
    if failure == "http_500":
        assert "upstream exploded" in err["message"]  # the LLM's own words reach the client
    session_id = caught.value.response.json()["session_id"]
    assert caught.value.response.headers["x-session-id"] == session_id

    # streaming, raw SSE: the start chunk, an in-band error event, then the stream closes (no [DONE])
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", headers=auth(chat_key), timeout=30,
                      json={"model": "impatient_agent", "stream": True,
                            "messages": [{"role": "user", "content": "Hi"}]}) as response:
        assert response.status_code == 200
        events = sse_events(response)
    assert [e.get("id") for e in events] == ["0-start", None]
    assert events[-1]["error"]["code"] == "llm_error"
    assert events[-1]["error"]["message"].startswith(reason)
    streamed_id = response.headers["x-session-id"]

    # streaming, official async client: the in-band error surfaces as an APIError
    async def stream_with_client():
        stream = await async_client(server, chat_key).chat.completions.create(
            model="impatient_agent", stream=True, messages=[{"role": "user", "content": "Hi"}]
        )
        seen = []
        with pytest.raises(openai.APIError) as raised:
            async for chunk in stream:
                seen.append(chunk.id)
        return seen, raised.value

    seen, exc = asyncio.run(stream_with_client())
    assert seen == ["0-start"]
    assert exc.message.startswith(reason) and exc.body["code"] == "llm_error"

    for sid in (session_id, streamed_id):
        session = Session.objects.get(pk=sid)
        assert session.state == "failed"
        assert session.error.startswith(reason)
        assert session.finished_at is not None
        assert SessionMessage.objects.filter(session=session, role="user").count() == 1
    assert len(scripted_llm.requests) == 3  # LLM_MAX_RETRIES=0: one call per run
    assert scripted_llm.errors == []


@pytest.fixture
def server(platform_server):
    return platform_server()


def test_unusable_output_is_retried_with_feedback_then_fails(server, scripted_llm, chat_key):
    scripted_llm.enqueue(
        tool_call("final_answer_tool", '{"answer": "4", '),  # arguments are not JSON
        content("The answer is 4."),  # no tool call
        tool_call("launch_rockets", {"count": 3}),  # a tool that does not exist
    )
    client = sync_client(server, chat_key)

    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="tool_calling_agent", messages=[{"role": "user", "content": "2+2?"}])

    err = assert_openai_error(caught.value.response, 502, "llm_error")
    assert err["message"] == ("the model produced invalid output 3 times in a row; "
                              "last error: unknown or not offered tool 'launch_rockets'")
    _, second, third = scripted_llm.requests
    bad_call, feedback = second["messages"][-2:]
    assert bad_call["role"] == "assistant" and bad_call["tool_calls"][0]["function"]["name"] == "final_answer_tool"
    assert feedback["role"] == "tool" and feedback["tool_call_id"] == bad_call["tool_calls"][0]["id"]
    assert feedback["content"].startswith("Error: The arguments of final_answer_tool are not valid JSON")
    assert "Respond by calling exactly one of the tools: final_answer_tool, clarification_tool" in feedback["content"]
    text_reply, feedback = third["messages"][-2:]
    assert text_reply == {"role": "assistant", "content": "The answer is 4."}
    assert feedback["role"] == "user"
    assert feedback["content"].startswith("Your last reply could not be used: You did not call a tool.")
    session = Session.objects.get(pk=caught.value.response.json()["session_id"])
    assert session.state == "failed"
    assert session.error == err["message"]
    # the unusable replies and their feedback are part of the persisted history
    roles = list(SessionMessage.objects.filter(session=session).order_by("seq").values_list("role", flat=True))
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool"]


def test_unusable_output_then_a_good_reply_completes(server, scripted_llm, chat_key):
    # sgr kind: a reply that is not JSON, then an action with a tool that is not offered, then a good one
    scripted_llm.enqueue(
        content("Sure! Here is my plan: ..."),
        structured(sgr_step("launch_rockets", {})),
        structured(sgr_step("final_answer_tool", final("Four."))),
        # sgr_tool_calling kind: reasoning with missing fields, then a good reasoning and the action
        tool_call("reasoning_tool", {"reasoning_steps": ["hm"]}),
        think(), tool_call("final_answer_tool", final("Five.")),
    )
    client = sync_client(server, chat_key)

    sgr = client.chat.completions.create(model="sgr_agent", messages=[{"role": "user", "content": "2+2?"}])
    research = client.chat.completions.create(model="research_agent", messages=[{"role": "user", "content": "2+3?"}])

    assert sgr.choices[0].message.content == "Four."
    assert research.choices[0].message.content == "Five."
    requests = scripted_llm.requests
    assert requests[1]["messages"][-1]["content"].startswith("Your last reply could not be used: not valid JSON")
    assert requests[2]["messages"][-1]["content"].startswith(
        "Your last reply could not be used: tool 'launch_rockets' is not available now")
    feedback = requests[4]["messages"][-1]
    assert feedback["role"] == "tool" and feedback["content"].startswith("Error: Invalid reasoning_tool arguments")
    assert "current_situation" in feedback["content"]
    assert requests[4]["tool_choice"] == {"type": "function", "function": {"name": "reasoning_tool"}}
    for completion in (sgr, research):
        session = Session.objects.get(pk=completion.model)
        assert (session.state, session.iteration, session.error) == ("completed", 1, "")


def test_an_empty_final_answer_is_not_an_answer(server, scripted_llm, chat_key):
    scripted_llm.enqueue(tool_call("final_answer_tool", final("")), tool_call("final_answer_tool", final("Four.")))

    completion = sync_client(server, chat_key).chat.completions.create(
        model="tool_calling_agent", messages=[{"role": "user", "content": "2+2?"}])

    assert completion.choices[0].message.content == "Four."
    feedback = scripted_llm.requests[1]["messages"][-1]
    assert feedback["role"] == "tool" and "answer" in feedback["content"] and "at least 1" in feedback["content"]
