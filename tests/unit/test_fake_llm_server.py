"""Self-tests for the scripted fake servers in ``tests/fakes`` (no Django needed)."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import httpx
import openai
import pytest

from tests.fakes.llm_server import (
    ScriptedLLM, content, delay, error, garbage, structured, tool_call, tool_calls,
)
from tests.fakes.search_server import ScriptedSearch, result

MSGS = [{"role": "user", "content": "hello"}]


@pytest.fixture
def llm():
    with ScriptedLLM() as server:
        yield server


def client(llm: ScriptedLLM, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0, **kw)


def test_non_stream_content_and_recording(llm):
    llm.enqueue(content("Hello there"))
    resp = client(llm).chat.completions.create(model="m", messages=MSGS, temperature=0)
    assert resp.choices[0].message.content == "Hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0
    assert llm.requests == [{"model": "m", "messages": MSGS, "temperature": 0}]
    assert llm.headers[0]["authorization"] == "Bearer x"
    assert llm.pending == 0


def test_non_stream_tool_calls_and_structured(llm):
    llm.enqueue(tool_calls([("a", {"x": 1}), ("b", "{broken")]), structured({"ok": True}))
    c = client(llm)
    msg = c.chat.completions.create(model="m", messages=MSGS).choices[0].message
    assert [(t.function.name, t.function.arguments) for t in msg.tool_calls] == [("a", '{"x": 1}'), ("b", "{broken")]
    assert msg.tool_calls[0].id != msg.tool_calls[1].id
    resp = c.chat.completions.create(model="m", messages=MSGS, response_format={
        "type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}})
    assert json.loads(resp.choices[0].message.content) == {"ok": True}


def test_stream_content_reassembled(llm):
    llm.enqueue(content("The quick brown fox jumps"))
    chunks = list(client(llm).chat.completions.create(model="m", messages=MSGS, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) >= 4
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "The quick brown fox jumps"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_tool_call_reassembled_with_usage(llm):
    llm.enqueue(tool_call("search", {"query": "weather in Paris", "n": 3}, call_id="call_1"))
    stream = client(llm).chat.completions.create(
        model="m", messages=MSGS, stream=True, stream_options={"include_usage": True})
    calls: dict[int, dict] = {}
    finish, usage, arg_pieces = None, None, 0
    for chunk in stream:
        if chunk.usage is not None:
            assert chunk.choices == []
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                slot["name"] += (tc.function.name or "") if tc.function else ""
                if tc.function and tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
                    arg_pieces += 1
    assert calls[0]["id"] == "call_1" and calls[0]["name"] == "search"
    assert json.loads(calls[0]["arguments"]) == {"query": "weather in Paris", "n": 3}
    assert arg_pieces >= 2 and finish == "tool_calls"
    assert usage is not None and usage.total_tokens > 0


def test_stream_helper_accumulates(llm):
    llm.enqueue(tool_call("f", {"a": "b"}))
    with client(llm).chat.completions.stream(model="m", messages=MSGS) as s:
        final = s.get_final_completion()
    tc = final.choices[0].message.tool_calls[0]
    assert (tc.function.name, json.loads(tc.function.arguments)) == ("f", {"a": "b"})


def test_error_500(llm):
    llm.enqueue(error(500, "boom"))
    with pytest.raises(openai.InternalServerError) as ei:
        client(llm).chat.completions.create(model="m", messages=MSGS)
    assert ei.value.status_code == 500 and "boom" in str(ei.value)


def test_error_429_streaming(llm):
    llm.enqueue(error(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        client(llm).chat.completions.create(model="m", messages=MSGS, stream=True)


def test_garbage(llm):
    llm.enqueue(garbage("not json at all"), garbage("{nope"))
    c = client(llm)
    with pytest.raises((openai.APIError, ValueError)):
        c.chat.completions.create(model="m", messages=MSGS)
    with pytest.raises((openai.APIError, ValueError)):
        list(c.chat.completions.create(model="m", messages=MSGS, stream=True))


def test_delay_timeout(llm):
    llm.enqueue(delay(5, content("late")), content("on time"))
    c = client(llm, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="m", messages=MSGS)
    assert c.chat.completions.create(model="m", messages=MSGS).choices[0].message.content == "on time"


def test_exhausted_then_responder_concurrent(llm):
    c = client(llm)
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m", messages=MSGS)
    assert llm.errors and "exhausted" in llm.errors[0]
    llm.set_responder(lambda body: content("echo:" + body["messages"][-1]["content"]))
    out: list[str] = []

    def worker(i: int) -> None:
        r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
        out.append(r.choices[0].message.content)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == sorted(f"echo:{i}" for i in range(20))
    assert len(llm.requests) == 21 == len(llm.headers)


def test_models(llm):
    assert [m.id for m in client(llm).models.list()] == ["scripted"]


def test_search_server():
    with ScriptedSearch() as srv:
        url = srv.add_page("doc", "<html><body><h1>Paris</h1><p>Sunny.</p></body></html>")
        srv.enqueue([result("Paris weather", url, "Sunny", raw_content="Sunny all day"),
                     result("Other", "http://x", "y")], answer="It is sunny")
        r = httpx.post(f"{srv.base_url}/search", json={"query": "paris", "max_results": 1,
                                                       "include_raw_content": True},
                       headers={"Authorization": "Bearer tvly-x"})
        data = r.json()
        assert r.status_code == 200 and data["answer"] == "It is sunny"
        assert [x["title"] for x in data["results"]] == ["Paris weather"]
        assert data["results"][0]["raw_content"] == "Sunny all day"
        assert httpx.post(f"{srv.base_url}/search", json={"query": "q"}).json()["results"] == []
        assert srv.requests[0]["query"] == "paris" and srv.headers[0]["authorization"] == "Bearer tvly-x"
        with urllib.request.urlopen(url) as page:
            assert "<h1>Paris</h1>" in page.read().decode() and page.headers.get_content_type() == "text/html"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(srv.page_url("missing"))
        assert srv.page_hits == ["doc", "missing"]
        srv.enqueue([], status=429)
        assert httpx.post(f"{srv.base_url}/search", json={"query": "q"}).status_code == 429
