"""OpenAI ``chat.completion.chunk`` / ``chat.completion`` shapes and SSE framing.

Chunk ids are phase ids: ``0-start``, ``{n}-reasoning``, ``{n}-action``,
``{n}-final``; the ``model`` field is the session id. Progress chunks carry the
agent's own calls as ``tool_calls`` deltas and their results as ``tool_results``
(``[{"index", "tool_call_id", "name", "content"}]``), never as ``content``, so a
client that accumulates the deltas gets exactly the final answer, which the last
chunk carries (with ``finish_reason``).
"""

from __future__ import annotations

import json
import time
from typing import Any

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def chunk(session_id: str, phase_id: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": phase_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": session_id,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def usage_chunk(session_id: str, phase_id: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": phase_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": session_id,
        "choices": [],
        "usage": usage,
    }


def completion(session_id: str, content: str, finish_reason: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{session_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": session_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def usage_of(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
