"""Python tool classes by import string (allowlist checked by ``catalog.entrypoints``)."""

from __future__ import annotations

from catalog.entrypoints import (
    EntrypointError,
    check_entrypoint_allowed,
    load_entrypoint,
)
from runtime.tools.base import BaseTool

__all__ = ["EntrypointError", "check_entrypoint_allowed", "load_tool_class"]


def load_tool_class(entrypoint: str, allowlist: list[str] | tuple[str, ...]) -> type[BaseTool]:
    cls = load_entrypoint(entrypoint, allowlist)
    if not issubclass(cls, BaseTool):
        raise EntrypointError(f"{entrypoint!r} is not a BaseTool subclass")
    return cls
