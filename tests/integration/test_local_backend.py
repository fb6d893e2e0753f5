"""The local backend's wiring, with the scripted LLM standing in for the embedded llama.cpp server:
a function-calling template runs as ``sgr`` with a bounded schema; a model that cannot start
fails the session with the reason. No model is loaded."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from pathlib import Path

import pytest

from runtime.chat import ChatRequest, Runtime
from runtime.config import RuntimeSettings
from runtime.local_llm import server
from runtime.local_llm.config import LocalLLMConfig, LocalLLMError
from sessions_app.models import Session
from tests.e2e.helpers import final, sgr_step
from tests.fakes.llm_server import structured
from tests.json_nodes import walk


@pytest.fixture
def defaults(transactional_db):
    from runtime.defaults import load_defaults

    load_defaults()


@pytest.fixture
def local_server(monkeypatch, scripted_llm):
    """``ensure_started`` answers with the scripted LLM's address; records the configs it got."""
    starts: list[LocalLLMConfig] = []
    endpoint = server.LocalEndpoint(base_url=scripted_llm.base_url, model="smollm2-135m", gguf=Path("m.gguf"),
                                    threads=1, ctx=2048, start_s=0.0, warmup_s=0.0)

    def ensure_started(config, *, progress=False):
        starts.append(config)
        return endpoint

    monkeypatch.setattr(server, "ensure_started", ensure_started)
    return starts


async def run_chat(runtime: Runtime, model: str, text: str):
    try:
        chat_run = await runtime.open(ChatRequest(model=model, messages=[{"role": "user", "content": text}]),
                                      api_key_id=None)
        return await chat_run.task
    finally:
        for task in runtime._background:
            task.cancel()
        await runtime.pool.close()
        await asyncio.get_running_loop().shutdown_default_executor()  # the db() worker threads
        gc.collect()  # ... and their connections, so the test database can be dropped


def local_settings(**local) -> RuntimeSettings:
    return dataclasses.replace(RuntimeSettings.from_django(), llm_backend="local", local_llm=LocalLLMConfig(**local))


async def test_function_calling_template_runs_as_sgr_with_capped_strings(defaults, local_server, scripted_llm):
    scripted_llm.enqueue(structured(sgr_step("final_answer_tool", final("Paris."))))

    result = await run_chat(Runtime(local_settings(max_string=120, max_tokens=600)),
                            "tool_calling_agent", "What is the capital of France?")

    assert (result.state, result.text) == ("completed", "Paris.")
    assert len(local_server) == 1
    (request,) = scripted_llm.requests
    assert "tools" not in request and "tool_choice" not in request  # no native function calling
    assert request["model"] == "smollm2-135m" and request["max_tokens"] == 600
    assert request["frequency_penalty"] == 0.5
    schema = request["response_format"]["json_schema"]["schema"]
    tools = {b["properties"]["tool"]["const"] for b in schema["properties"]["action"]["anyOf"]}
    assert {"final_answer_tool", "clarification_tool", "web_search_tool"} <= tools
    strings = [n for n in walk(schema) if n.get("type") == "string" and "const" not in n and "enum" not in n]
    assert strings and all(n["maxLength"] <= 120 for n in strings)
    assert all(n["maxItems"] <= 3 for n in walk(schema) if n.get("type") == "array")


async def test_a_local_model_that_cannot_start_fails_the_session_with_the_reason(defaults, monkeypatch,
                                                                                  scripted_llm):
    def broken(config, *, progress=False):
        raise LocalLLMError("the local LLM backend needs the `local-llm` extra (xllamacpp)")

    monkeypatch.setattr(server, "ensure_started", broken)

    result = await run_chat(Runtime(local_settings()), "sgr_agent", "hello")

    assert (result.state, result.error_code) == ("failed", "llm_error")
    assert result.text == "Local LLM unavailable: the local LLM backend needs the `local-llm` extra (xllamacpp)"
    assert scripted_llm.requests == []
    session = await Session.objects.aget(pk=result.session_id)
    assert "needs the `local-llm` extra" in session.error
