"""drf-spectacular post-processing: the OpenAI-compatible and session routes in the schema.

``/v1/chat/completions``, ``/agents/{id}/provide_clarification`` and ``/agents/{id}/cancel`` are
Channels consumers (streaming), and ``/v1/models`` answers in OpenAI's own list shape, so no DRF
view describes them; this hook writes their operations (tag ``chat``) so ``/api/docs/`` shows the
whole HTTP surface. The shapes follow what ``runtime.chat`` parses and ``runtime.streaming`` sends.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from platform_site.openapi import DESCRIPTIONS, ERROR_REF

TAG = "chat"
MESSAGE = {"type": "object", "properties": {
    "role": {"type": "string", "enum": ["system", "user", "assistant", "tool", "developer"]},
    "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}], "nullable": True}},
    "required": ["role"]}
STREAM_OPTIONS = {"type": "object", "nullable": True, "properties": {"include_usage": {"type": "boolean"}}}
CHAT_REQUEST = {"type": "object", "required": ["model", "messages"], "properties": {
    "model": {"type": "string", "description": "A template name, `router`, or the id of a session waiting for "
                                               "clarification (its continuation)"},
    "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
    "stream": {"type": "boolean", "default": False},
    "stream_options": STREAM_OPTIONS,
    "temperature": {"type": "number", "minimum": 0, "maximum": 2, "nullable": True},
    "max_tokens": {"type": "integer", "minimum": 1, "nullable": True},
    "n": {"type": "integer", "enum": [1]},
}}
CLARIFICATION_REQUEST = {"type": "object", "required": ["messages"], "properties": {
    "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
    "stream": {"type": "boolean", "default": True},
    "stream_options": STREAM_OPTIONS,
}}
USAGE = {"type": "object", "properties": {k: {"type": "integer"} for k in
                                          ("prompt_tokens", "completion_tokens", "total_tokens")}}
COMPLETION = {"type": "object", "required": ["id", "object", "model", "choices"], "properties": {
    "id": {"type": "string"},
    "object": {"type": "string", "enum": ["chat.completion"]},
    "created": {"type": "integer"},
    "model": {"type": "string", "description": "The session id: `model` of a continuation"},
    "choices": {"type": "array", "items": {"type": "object", "properties": {
        "index": {"type": "integer"},
        "message": {"type": "object", "properties": {"role": {"type": "string"}, "content": {"type": "string"}}},
        "finish_reason": {"type": "string", "enum": ["stop", "length"]}}}},
    "usage": USAGE,
}}
SESSION_HEADER = {"X-Session-ID": {"description": "The session this run belongs to", "schema": {"type": "string"}}}
RUN_RESPONSES = {
    "200": {"description": "The run's answer: one chat.completion, or with `stream: true` server-sent events "
                           "(`chat.completion.chunk` objects, then `data: [DONE]`)",
            "headers": SESSION_HEADER,
            "content": {"application/json": {"schema": COMPLETION},
                        "text/event-stream": {"schema": {"type": "string"}}}},
}
SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
SECURITY = [{"ApiKey": []}]


def _errors(*codes: int) -> dict[str, Any]:
    extra = {"413": "Body larger than the limit", "429": "Rate limit of the API key exceeded",
             "502": "The LLM failed (a streaming run reports it in-band instead)", "405": "Use POST"}
    return {str(code): {"description": DESCRIPTIONS.get(str(code)) or extra[str(code)],
                        "content": {"application/json": {"schema": ERROR_REF}}} for code in codes}


def _operation(summary: str, operation_id: str, **fields: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "tags": [TAG], "security": SECURITY, **fields}


def chat_paths() -> dict[str, Any]:
    return {
        "/v1/chat/completions": {"post": _operation(
            "Run an agent (OpenAI chat completions)", "chat_completions_create",
            requestBody={"required": True, "content": {"application/json": {"schema": CHAT_REQUEST}}},
            responses={**deepcopy(RUN_RESPONSES), **_errors(400, 401, 404, 409, 413, 429, 502)})},
        "/agents/{session_id}/provide_clarification": {"post": _operation(
            "Answer a session waiting for clarification; streams the continuation",
            "agents_provide_clarification", parameters=[SESSION_ID],
            requestBody={"required": True, "content": {"application/json": {"schema": CLARIFICATION_REQUEST}}},
            responses={**deepcopy(RUN_RESPONSES), **_errors(400, 401, 404, 409, 413, 429, 502)})},
        "/agents/{session_id}/cancel": {"post": _operation(
            "Cancel a session, whichever server process runs it", "agents_cancel", parameters=[SESSION_ID],
            responses={"200": {"description": "The session's state after the cancel", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "session_id": {"type": "string"}, "state": {"type": "string"}}}}}},
                **_errors(401, 404, 429)})},
        "/v1/models": {"get": _operation(
            "Served templates as OpenAI models", "models_list",
            responses={"200": {"description": "OpenAI's model list", "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "object": {"type": "string", "enum": ["list"]},
                    "data": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "string"}, "object": {"type": "string"}, "owned_by": {"type": "string"},
                        "version": {"type": "integer"}, "agent_kind": {"type": "string"},
                        "description": {"type": "string"}}}}}}}}},
                **_errors(401)})},
    }


def document_chat_routes(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """``POSTPROCESSING_HOOKS`` entry: add the operations of the routes no DRF view describes."""
    paths = result.setdefault("paths", {})
    for path, operations in chat_paths().items():
        paths.setdefault(path, {}).update(operations)
    tags = result.setdefault("tags", [])
    if not any(t.get("name") == TAG for t in tags):
        tags.append({"name": TAG, "description": "OpenAI-compatible chat and the session routes (any API key)"})
    return result
