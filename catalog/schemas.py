"""Validation of tool definitions: JSON Schema (draft 2020-12), endpoint config, entrypoint.

One function, ``tool_definition_check``, used by every write path (admin API,
Django admin, ``import_tools``); it raises ``ToolInvalid`` listing every problem.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from catalog.entrypoints import EntrypointError, load_entrypoint
from catalog.errors import ToolInvalid
from catalog.models import TOOL_NAME_PATTERN, RiskLevel, ToolKind
from catalog.netguard import UnsafeURL, check_url

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
EMPTY_OBJECT = {"type": "object", "properties": {}}
# The arguments of an agent tool (agent-as-tool) when its definition gives none.
AGENT_TOOL_PARAMETERS = {
    "type": "object",
    "properties": {
        "task": {"type": "string", "description": "What the other agent should do, self-contained",
                 "maxLength": 8000},
        "context": {"type": "string", "description": "Facts it needs from this conversation", "maxLength": 16000},
    },
    "required": ["task"],
}


class EndpointConfig(BaseModel):
    """``endpoint`` of an http tool. Secrets are named, never stored: ``headers_from_env``
    maps a header to the environment variable that holds its value."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    timeout_s: float = Field(default=10, gt=0, le=300)
    max_response_bytes: int = Field(default=1_048_576, ge=1, le=16_777_216)
    headers_from_env: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers_from_env")
    @classmethod
    def _names_only(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env_name in value.items():
            if not HEADER_NAME.match(header):
                raise ValueError(f"invalid header name {header!r}")
            if not ENV_NAME.match(env_name):
                raise ValueError(f"{header}: give the NAME of an environment variable, not a value")
        return value


def parameters_check(schema: Any) -> dict[str, Any]:
    """A valid draft 2020-12 JSON Schema of an object (empty → an object with no properties)."""
    if schema in (None, {}):
        return dict(EMPTY_OBJECT)
    if not isinstance(schema, dict):
        raise ValueError("parameters must be a JSON Schema object")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(map(str, exc.path)) or "schema"
        raise ValueError(f"invalid JSON Schema at {where}: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError('parameters must describe an object ("type": "object")')
    return schema


def tool_kind_infer(data: dict[str, Any]) -> str:
    """The kind a definition without ``kind`` has: the fields given say it (the SPEC's shortcut)."""
    return (ToolKind.PYTHON if data.get("entrypoint") else
            ToolKind.HTTP if data.get("endpoint") else
            ToolKind.AGENT if data.get("target_template") else ToolKind.DECLARED)


def tool_definition_check(data: dict[str, Any], *, entrypoint_allowlist, allow_private: bool) -> dict[str, Any]:
    """Check and normalise a full tool definition; ``ToolInvalid`` lists every problem."""
    problems: dict[str, str] = {}
    out = dict(data)
    if not re.match(TOOL_NAME_PATTERN, str(data.get("name", ""))):
        problems["name"] = "1-64 letters, digits, '_' or '-'"
    if not str(data.get("description", "")).strip():
        problems["description"] = "a description is required (the LLM and tool search read it)"
    if data.get("kind") == ToolKind.AGENT and data.get("parameters") in (None, {}):
        data = {**data, "parameters": AGENT_TOOL_PARAMETERS}
    try:
        out["parameters"] = parameters_check(data.get("parameters"))
    except ValueError as exc:
        problems["parameters"] = str(exc)
    kind = data.get("kind") or ToolKind.DECLARED
    out["kind"] = kind
    if kind not in ToolKind.values:
        problems["kind"] = f"one of {ToolKind.values}"
    if data.get("risk", RiskLevel.LOW) not in RiskLevel.values:
        problems["risk"] = f"one of {RiskLevel.values}"
    if kind == ToolKind.PYTHON:
        try:
            load_entrypoint(data.get("entrypoint", ""), entrypoint_allowlist)
        except EntrypointError as exc:
            problems["entrypoint"] = str(exc)
    if kind == ToolKind.HTTP:
        try:
            endpoint = EndpointConfig.model_validate(data.get("endpoint") or {})
            check_url(endpoint.url, allow_private=allow_private)
            out["endpoint"] = endpoint.model_dump()
        except ValidationError as exc:
            problems["endpoint"] = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'endpoint'}: {e['msg']}" for e in exc.errors())
        except UnsafeURL as exc:
            problems["endpoint"] = str(exc)
    if kind == ToolKind.AGENT and not str(data.get("target_template", "")).strip():
        problems["target_template"] = "agent tools name the template they delegate to"
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags):
        problems["tags"] = "a list of strings of 1-64 characters"
    if problems:
        summary = "; ".join(f"{field}: {msg}" for field, msg in problems.items())
        raise ToolInvalid(f"Invalid tool: {summary}", fields=problems)
    return out
