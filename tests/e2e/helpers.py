"""Shared pieces of the end-to-end tests: scripted model moves, SSE parsing, OpenAI error checks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai

from tests.fakes.llm_server import tool_call

REASONING = {
    "reasoning_steps": ["Read the request", "Decide the next action"],
    "current_situation": "Request understood",
    "plan_status": "On track",
    "enough_data": True,
    "remaining_steps": ["Take the next action"],
    "task_completed": False,
}


PLAN = {"reasoning": "Plan first", "research_goal": "Answer", "planned_steps": ["a", "b", "c"],
        "search_strategies": ["x", "y"]}


def final(answer: str, status: str = "completed") -> dict[str, Any]:
    return {"reasoning": "Done", "completed_steps": ["answered"], "answer": answer, "status": status}


def clarify(*questions: str) -> dict[str, Any]:
    return {"reasoning": "The request is ambiguous", "unclear_terms": ["it"], "assumptions": [],
            "questions": list(questions)}


def think():
    """The forced reasoning call of an ``sgr_tool_calling`` step."""
    return tool_call("reasoning_tool", REASONING)


def sgr_step(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One structured-output reply of the ``sgr`` kind: the reasoning fields plus the action."""
    return {**REASONING, "action": {"tool": tool, "arguments": arguments}}


def offered(request: dict[str, Any]) -> list[str]:
    """Names of the tools an LLM request offered."""
    return [t["function"]["name"] for t in request.get("tools") or []]


def sync_client(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=30)


def async_client(server, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=30)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def get_state(server, key: str, session_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/agents/{session_id}/state", headers=auth(key), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def sse_events(response: httpx.Response) -> list[Any]:
    """Parse an SSE body: each ``data:`` payload as JSON, ``[DONE]`` as the string itself."""
    events: list[Any] = []
    for line in response.iter_lines():
        if not line.startswith("data: "):
            assert not line.strip(), f"unexpected SSE line {line!r}"
            continue
        data = line[len("data: "):]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``{"error": {"message", "type", "code"}}`` with ``status``; returns the error."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    err = response.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    assert isinstance(err["code"], str) and err["code"]
    if code is not None:
        assert err["code"] == code, err
    return err
