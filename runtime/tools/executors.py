"""Executable tools built from catalog specs, by kind.

``python``: a BaseTool subclass imported from an allowlisted entrypoint.
``declared`` (and kinds whose executor is not installed): searchable and
offerable, calling them is a clear tool error.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import jsonschema
from pydantic import ValidationError

from catalog.specs import ToolSpec
from runtime.tools.base import BaseTool, ToolContext, ToolError
from runtime.tools.registry import EntrypointError, load_tool_class


class Executable(Protocol):
    spec: ToolSpec

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> str: ...


class PythonExecutable:
    def __init__(self, spec: ToolSpec, cls: type[BaseTool]) -> None:
        self.spec = spec
        self.cls = cls

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        try:
            tool = self.cls.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(f"invalid arguments for {self.spec.name}: {_pydantic_errors(exc)}") from exc
        return await tool(ctx)


RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


class RateLimitedExecutable:
    """Takes a token from the tool's bucket (shared by all processes) before each call."""

    def __init__(self, inner: Executable, limit) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.limit = limit

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        from access.ratelimit import rate_limit_take
        from runtime.db import db

        wait_s = await db(rate_limit_take)(key=f"tool:{self.spec.name}", limit=self.limit)
        if wait_s is not None:
            raise ToolError(f"tool {self.spec.name} is rate limited; try again in {wait_s:.0f}s or use another tool")
        return await self.inner.run(arguments, ctx)


class DeclaredExecutable:
    def __init__(self, spec: ToolSpec, reason: str) -> None:
        self.spec = spec
        self.reason = reason

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        check_arguments(self.spec, arguments)
        raise ToolError(f"tool {self.spec.name} cannot be executed: {self.reason}")


def check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> None:
    """Validate arguments against the tool's JSON Schema (draft 2020-12)."""
    validator = _validator(spec.name, spec.revision, _freeze(spec.parameters))
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        details = "; ".join(f"{'/'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:5])
        raise ToolError(f"invalid arguments for {spec.name}: {details}")


@functools.lru_cache(maxsize=4096)
def _validator(name: str, revision: int, frozen_schema: str) -> jsonschema.Draft202012Validator:
    import json

    return jsonschema.Draft202012Validator(json.loads(frozen_schema))


def _freeze(schema: dict[str, Any]) -> str:
    import json

    return json.dumps(schema or {"type": "object"}, sort_keys=True)


def _pydantic_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:5])


def build_executable(
    spec: ToolSpec, *, entrypoint_allowlist: list[str] | tuple[str, ...], extra_kinds: dict | None = None
) -> Executable:
    """The executable for a catalog tool. ``extra_kinds`` maps other kinds → factory(spec)."""
    if spec.kind == "python":
        try:
            return PythonExecutable(spec, load_tool_class(spec.entrypoint, entrypoint_allowlist))
        except EntrypointError as exc:
            return DeclaredExecutable(spec, str(exc))
    if extra_kinds and spec.kind in extra_kinds:
        return extra_kinds[spec.kind](spec)
    if spec.kind == "declared":
        return DeclaredExecutable(spec, "it is declared in the catalog without an implementation")
    return DeclaredExecutable(spec, f"no executor for tools of kind {spec.kind!r} is installed")
