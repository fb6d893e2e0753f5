"""Client compatibility: real OpenAI clients against a running server.

openai-python (sync and async, stream and not, multi-turn histories, usage chunks, the SDK's own
stream accumulator), the official ``openai`` npm package on Node.js (``tests/clients/node``), and
LangChain's ``ChatOpenAI`` (invoke and stream, without the internet). Each request is one
``research_agent`` run (``sgr_tool_calling``: a forced reasoning call, then the final answer).

The stream carries the agent's progress as ``tool_calls`` deltas and ``tool_results`` (not
``content``), so a client that accumulates the deltas, as every SDK does, gets exactly the answer,
which the last chunk carries with ``finish_reason: "stop"``.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from sessions_app.models import Session
from tests.e2e.helpers import (
    assert_openai_error,
    async_client,
    auth,
    final,
    get_state,
    sync_client,
    think,
)
from tests.fakes.llm_server import tool_call

NODE_CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node"
MODEL = "research_agent"
HISTORY = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]


@pytest.fixture
def server(platform_server):
    return platform_server()


def script_answer(llm, answer: str) -> None:
    """One research_agent run: the forced reasoning call, then the final answer."""
    llm.enqueue(think(), tool_call("final_answer_tool", final(answer)))


def assert_history_reached_the_llm(request: dict) -> None:
    """The client's conversation, in order, after the template's own system prompt."""
    messages = request["messages"]
    assert messages[0]["role"] == "system"  # the template's
    assert [(m["role"], m["content"]) for m in messages[1:4]] == [(m["role"], m["content"]) for m in HISTORY[:3]]
    assert messages[4]["role"] == "user" and "And of Italy?" in messages[4]["content"]


def usage_chunks(chunks) -> list:
    return [c for c in chunks if not c.choices]


# --- openai-python ---------------------------------------------------------------------------


def test_sync_non_stream_multi_turn_with_sampling_parameters(server, scripted_llm, chat_key):
    script_answer(scripted_llm, "Rome.")

    raw = sync_client(server, chat_key).chat.completions.with_raw_response.create(
        model=MODEL, messages=HISTORY, temperature=0.3, max_tokens=200, top_p=0.9, user="tester")
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Rome."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == raw.headers["x-session-id"]
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    assert Session.objects.get(pk=completion.model).state == "completed"
    assert_history_reached_the_llm(scripted_llm.requests[0])
    for request in scripted_llm.requests:  # the client's sampling reaches every LLM call of the run
        assert (request["temperature"], request["max_tokens"]) == (0.3, 200)


def test_sync_stream_multi_turn_with_usage_chunk(server, scripted_llm, chat_key):
    script_answer(scripted_llm, "Rome.")
    script_answer(scripted_llm, "Paris.")
    client = sync_client(server, chat_key)

    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HISTORY, stream=True, stream_options={"include_usage": True},
        temperature=0.3, max_tokens=200))
    plain = list(client.chat.completions.create(  # no include_usage: no usage chunk
        model=MODEL, stream=True, messages=[{"role": "user", "content": "Capital of France?"}]))

    session_id = chunks[0].model
    assert {c.model for c in chunks} == {session_id}
    assert [c.id for c in chunks] == ["0-start", "1-reasoning", "1-action", "1-action", "1-final", "usage"]
    content_chunks = [c for c in chunks if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == "Rome."  # accumulated
    last = content_chunks[-1].choices[0]
    assert (last.delta.content, last.finish_reason) == ("Rome.", "stop")
    assert [c.choices[0].finish_reason for c in content_chunks[:-1]] == [None] * (len(content_chunks) - 1)
    (usage,) = usage_chunks(chunks)
    assert usage is chunks[-1]
    state = get_state(server, chat_key, session_id)
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (
        state["usage"]["prompt_tokens"], state["usage"]["completion_tokens"])
    assert usage.usage.total_tokens > 0
    assert state["state"] == "completed"
    assert_history_reached_the_llm(scripted_llm.requests[0])
    assert usage_chunks(plain) == [] and all(c.usage is None for c in plain)
    assert (plain[-1].choices[0].delta.content, plain[-1].choices[0].finish_reason) == ("Paris.", "stop")


def test_sdk_stream_accumulator_gets_the_answer(server, scripted_llm, chat_key):
    """``chat.completions.stream()`` merges every delta into one message: it must be the answer."""
    script_answer(scripted_llm, "Paris.")

    with sync_client(server, chat_key).chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "Capital of France?"}]) as stream:
        events = [event.type for event in stream]
        completion = stream.get_final_completion()

    message = completion.choices[0].message
    assert (message.role, message.content, completion.choices[0].finish_reason) == ("assistant", "Paris.", "stop")
    assert "content.done" in events
    # the agent's own calls and their results come along, marked as progress
    assert [t.function.name for t in message.tool_calls] == ["reasoning_tool", "final_answer_tool"]
    assert [r["name"] for r in message.model_extra["tool_results"]] == ["final_answer_tool"]


async def test_async_non_stream_and_stream_multi_turn(server, scripted_llm, chat_key):
    script_answer(scripted_llm, "Rome.")
    script_answer(scripted_llm, "Rome.")
    client = async_client(server, chat_key)

    completion = await client.chat.completions.create(model=MODEL, messages=HISTORY, temperature=0, max_tokens=64)
    stream = await client.chat.completions.create(
        model=MODEL, messages=HISTORY, stream=True, stream_options={"include_usage": True}, max_tokens=64)
    chunks = [chunk async for chunk in stream]

    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == ("Rome.", "stop")
    assert completion.usage.total_tokens > 0
    content_chunks = [c for c in chunks if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == "Rome."
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert usage_chunks(chunks) == [chunks[-1]] and chunks[-1].usage.total_tokens > 0
    assert completion.model != chunks[0].model  # two sessions
    for session_id in (completion.model, chunks[0].model):
        assert get_state(server, chat_key, session_id)["state"] == "completed"
    for request in (scripted_llm.requests[0], scripted_llm.requests[2]):
        assert_history_reached_the_llm(request)


def test_n_above_one_is_refused_before_any_run(server, scripted_llm, chat_key):
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            sync_client(server, chat_key).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Two answers please"}], n=2, stream=stream)

        assert caught.value.status_code == 400
        assert caught.value.code == "unsupported_parameter"
        assert caught.value.type == "invalid_request_error"
        assert caught.value.param == "n"
        raw = httpx.post(f"{server.base_url}/v1/chat/completions", headers=auth(chat_key), timeout=10, json={
            "model": MODEL, "n": 2, "stream": stream, "messages": [{"role": "user", "content": "Two answers please"}]})
        assert assert_openai_error(raw, 400, "unsupported_parameter")["param"] == "n"
    assert scripted_llm.requests == [] and not Session.objects.exists()


# --- the openai npm package (Node.js) ----------------------------------------------------------


@pytest.fixture(scope="session")
def node_client(tmp_path_factory) -> Path:
    """tests/clients/node installed with ``npm ci`` (once per session, in a private copy)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("Node.js 20+ and npm are needed for the npm `openai` client test: "
                    f"node={node!r}, npm={npm!r} on PATH (apt-get install nodejs npm)", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"Node.js 20+ is needed for the npm `openai` client test, found {version}", pytrace=False)
    # A private copy: several test runs may share the work tree, and `npm ci` deletes node_modules first.
    work = tmp_path_factory.mktemp("node-client")
    for name in ("package.json", "package-lock.json", "chat.mjs"):
        shutil.copy2(NODE_CLIENT / name, work / name)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"`npm ci` in a copy of {NODE_CLIENT} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}",
                    pytrace=False)
    return work


def run_node(node_client: Path, server, key: str, mode: str) -> tuple[int, dict]:
    done = subprocess.run(
        ["node", "chat.mjs", server.base_url, key, MODEL, mode, "Capital of France?"],
        cwd=node_client, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.stdout.strip(), f"node printed nothing (exit {done.returncode}):\n{done.stderr}"
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_node_openai_client(node_client, server, scripted_llm, chat_key):
    results = {}
    for mode in ("nostream", "stream", "helper"):
        script_answer(scripted_llm, "Paris.")
        results[mode] = run_node(node_client, server, chat_key, mode)
    bad_key = run_node(node_client, server, "ap-not-a-key", "stream")

    for mode, (code, out) in results.items():
        assert code == 0 and out["ok"], out
        assert out["content"] == "Paris.", out  # for "stream": every delta's content, concatenated
        assert out["finish_reason"] == "stop", out
        assert Session.objects.get(pk=out["model"]).state == "completed"
    for request in scripted_llm.requests[::2]:  # each run's first call: the client's system message kept
        assert request["messages"][1] == {"role": "system", "content": "You are a helpful assistant."}
    plain, streamed, helper = (out for _, out in results.values())
    assert plain["session_header"] == plain["model"]
    assert (plain["object"], plain["role"]) == ("chat.completion", "assistant")
    assert plain["usage"]["total_tokens"] > 0
    assert streamed["session_header"] == streamed["model"]
    assert streamed["chunk_ids"] == ["0-start", "1-reasoning", "1-action", "1-action", "1-final", "usage"]
    assert streamed["final_chunk_content"] == "Paris."
    assert streamed["tool_calls"] == ["reasoning_tool", "final_answer_tool"]
    assert streamed["usage"]["total_tokens"] > 0
    assert helper["role"] == "assistant"  # the SDK's ChatCompletionStream throws without one
    code, out = bad_key
    assert code == 2 and not out["ok"] and out["status"] == 401, out
    assert (out["error"]["type"], out["error"]["code"]) == ("authentication_error", "invalid_api_key")
    assert len(scripted_llm.requests) == 6  # the refused request never reached the LLM


# --- LangChain ---------------------------------------------------------------------------------


@pytest.fixture
def no_internet(monkeypatch, tmp_path):
    """Only loopback connections from this process; no tiktoken encodings to load or download."""
    import tiktoken
    import tiktoken.load

    def loopback(host) -> bool:
        if host in (None, "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if not loopback(host.decode() if isinstance(host, bytes) else host):
            raise AssertionError(f"LangChain tried to resolve {host!r}: no internet in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address[0]):
            raise AssertionError(f"LangChain tried to connect to {address!r}: no internet in this test")
        return real_connect(sock, address)

    def no_tiktoken(*args, **kwargs):
        raise AssertionError("LangChain asked tiktoken for an encoding (a download on a fresh machine)")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(tiktoken, "get_encoding", no_tiktoken)
    monkeypatch.setattr(tiktoken, "encoding_for_model", no_tiktoken)
    monkeypatch.setattr(tiktoken.load, "read_file", no_tiktoken)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))  # empty: nothing cached
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def chat_openai(server, key: str, **kwargs):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=server.base_url + "/v1", api_key=key, model=MODEL, max_retries=0, timeout=30,
                      **kwargs)


def lc_history():
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    return [SystemMessage(HISTORY[0]["content"]), HumanMessage(HISTORY[1]["content"]),
            AIMessage(HISTORY[2]["content"]), HumanMessage(HISTORY[3]["content"])]


def test_langchain_invoke(no_internet, server, scripted_llm, chat_key):
    script_answer(scripted_llm, "Rome.")
    script_answer(scripted_llm, "Paris.")

    message = chat_openai(server, chat_key, temperature=0.2, max_tokens=200).invoke(lc_history())
    streamed = chat_openai(server, chat_key, streaming=True).invoke("Capital of France?")  # built from chunks

    assert message.content == "Rome."
    assert message.tool_calls == []
    assert message.response_metadata["finish_reason"] == "stop"
    session_id = message.response_metadata["model_name"]
    assert Session.objects.get(pk=session_id).state == "completed"
    assert message.usage_metadata["total_tokens"] > 0
    assert_history_reached_the_llm(scripted_llm.requests[0])
    assert (streamed.content, streamed.response_metadata["finish_reason"]) == ("Paris.", "stop")


def test_langchain_stream(no_internet, server, scripted_llm, chat_key):
    script_answer(scripted_llm, "Rome.")

    chunks = list(chat_openai(server, chat_key, stream_usage=True).stream(lc_history()))
    message = chunks[0]
    for chunk in chunks[1:]:
        message = message + chunk

    assert message.content == "Rome."  # every chunk's content, merged: the answer, once
    assert message.response_metadata["finish_reason"] == "stop"
    session_id = message.response_metadata["model_name"]
    assert Session.objects.get(pk=session_id).state == "completed"
    assert message.usage_metadata["total_tokens"] > 0
    # The agent's own calls are streamed as tool_calls deltas (progress; finish_reason "stop" says
    # none is meant for the client), so the merged message lists them: an agent framework that
    # executes tool_calls should use invoke(), whose message has none.
    assert [call["name"] for call in message.tool_calls] == ["reasoning_tool", "final_answer_tool"]
    assert_history_reached_the_llm(scripted_llm.requests[0])


async def test_langchain_async_invoke_and_stream(no_internet, server, scripted_llm, chat_key):
    script_answer(scripted_llm, "Rome.")
    script_answer(scripted_llm, "Rome.")
    llm = chat_openai(server, chat_key)

    message = await llm.ainvoke(lc_history())
    chunks = [chunk async for chunk in llm.astream(lc_history())]

    assert message.content == "Rome."
    assert "".join(chunk.content for chunk in chunks) == "Rome."
    assert len({message.response_metadata["model_name"], *(c.response_metadata.get("model_name") for c in chunks
                                                            if c.response_metadata.get("model_name"))}) == 2
