"""The LLM client on its aiohttp transport, against the scripted LLM over real HTTP: replies,
retries, timeouts, unreachable endpoints and bodies that are not JSON, or not a completion, each
end as documented."""

from __future__ import annotations

import json

import openai
import pytest

from runtime.llm import LLMClient, LLMProtocolError, LLMSettings, LLMUnavailable
from tests.e2e.conftest import _free_port
from tests.fakes.llm_server import delay, error, garbage, tool_call

MESSAGES = [{"role": "user", "content": "Hi"}]


def _client(base_url: str, **settings) -> LLMClient:
    return LLMClient(LLMSettings(base_url=base_url, api_key="test-llm-key", model="scripted", **settings))


async def test_replies_come_back_typed_over_the_aiohttp_transport(scripted_llm):
    client = _client(scripted_llm.base_url, max_retries=0)
    assert isinstance(client._client._client, openai.DefaultAioHttpClient)
    scripted_llm.enqueue(tool_call("reasoning_tool", {"step": 1}), tool_call("final_answer_tool", {"answer": "ok"}))
    try:
        first = await client.complete(MESSAGES, tools=[{"type": "function", "function": {"name": "reasoning_tool"}}])
        second = await client.complete(MESSAGES, sampling={"temperature": 0.5, "max_tokens": 7})
    finally:
        await client.aclose()
    assert [c.name for c in first.tool_calls] == ["reasoning_tool"]
    assert first.tool_calls[0].arguments == '{"step": 1}'
    assert second.tool_calls[0].name == "final_answer_tool"
    assert scripted_llm.requests[1]["temperature"] == 0.5 and scripted_llm.requests[1]["max_tokens"] == 7
    assert scripted_llm.headers[0].get("authorization") == "Bearer test-llm-key"


async def _refused(client: LLMClient, error_class: type[Exception], pattern: str) -> None:
    try:
        with pytest.raises(error_class, match=pattern):
            await client.complete(MESSAGES)
    finally:
        await client.aclose()


async def test_server_errors_are_retried_then_reported(scripted_llm):
    scripted_llm.enqueue(error(503, "busy"), error(503, "still busy"))
    await _refused(_client(scripted_llm.base_url, max_retries=1), LLMUnavailable,
                   "^LLM returned HTTP 503: .*still busy")
    assert len(scripted_llm.requests) == 2  # the first try and one retry


async def test_a_slow_llm_times_out(scripted_llm):
    scripted_llm.enqueue(delay(3, tool_call("reasoning_tool", {})))
    await _refused(_client(scripted_llm.base_url, max_retries=0, timeout_s=0.5), LLMUnavailable,
                   r"^LLM timed out after 0.5s \(0 retries\)")


async def test_an_unreachable_llm(scripted_llm):
    await _refused(_client(f"http://127.0.0.1:{_free_port()}/v1", max_retries=0), LLMUnavailable,
                   "^Cannot reach the LLM at http://127.0.0.1:")


async def test_a_body_that_is_not_json(scripted_llm):
    scripted_llm.enqueue(garbage())
    await _refused(_client(scripted_llm.base_url, max_retries=0), LLMProtocolError, "not valid JSON")


async def test_bodies_that_are_json_but_no_completion(scripted_llm):
    scripted_llm.enqueue(garbage('{"choices": []}'), garbage('["a list"]'), garbage('{"choices": [{"index": 0}]}'),
                         garbage('{"error": {"message": "quota exceeded", "type": "insufficient_quota"}}'))
    await _refused(_client(scripted_llm.base_url, max_retries=0), LLMProtocolError, "^LLM response has no choices$")
    await _refused(_client(scripted_llm.base_url, max_retries=0), LLMProtocolError, "^LLM response has no choices$")
    await _refused(_client(scripted_llm.base_url, max_retries=0), LLMProtocolError, "no message in its first choice")
    await _refused(_client(scripted_llm.base_url, max_retries=0), LLMProtocolError,
                   "^LLM response has no choices but an error: quota exceeded$")


async def test_lenient_reading_of_what_compatible_servers_send(scripted_llm):
    """Arguments as a JSON object rather than a string, content as a list of text parts, a tool
    call without id or name (dropped), no usage: read, not refused."""
    body = {"choices": [{"index": 0, "message": {
        "role": "assistant", "content": [{"type": "text", "text": "two "}, {"type": "image"}, {"type": "text", "text": "parts"}],
        "tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": {"q": "ü"}}},
                       {"id": "c2", "type": "function", "function": {"arguments": "{}"}}]}}]}
    scripted_llm.enqueue(garbage(json.dumps(body)))
    client = _client(scripted_llm.base_url, max_retries=0)
    try:
        reply = await client.complete(MESSAGES)
    finally:
        await client.aclose()
    assert reply.content == "two parts"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [("call_0", "lookup", {"q": "ü"})]
    assert (reply.prompt_tokens, reply.completion_tokens) == (0, 0)
