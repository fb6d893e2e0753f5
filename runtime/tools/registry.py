"""Python tool classes by import string, only from allowlisted module prefixes."""

from __future__ import annotations

import importlib
import re

from runtime.tools.base import BaseTool

_ENTRYPOINT = re.compile(r"^(?P<module>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*):(?P<attr>[A-Za-z_]\w*)$")


class EntrypointError(ValueError):
    """The entrypoint is malformed, not allowlisted, not importable or not a BaseTool."""


def check_entrypoint_allowed(entrypoint: str, allowlist: list[str] | tuple[str, ...]) -> tuple[str, str]:
    match = _ENTRYPOINT.match(entrypoint or "")
    if not match:
        raise EntrypointError(
            f"entrypoint {entrypoint!r} must look like 'package.module:ClassName'"
        )
    module = match["module"]
    if not any(module == p.rstrip(".") or module.startswith(p if p.endswith(".") else p + ".") for p in allowlist):
        raise EntrypointError(
            f"module {module!r} is not under an allowed prefix (TOOL_ENTRYPOINT_ALLOWLIST: {list(allowlist)})"
        )
    return module, match["attr"]


def load_tool_class(entrypoint: str, allowlist: list[str] | tuple[str, ...]) -> type[BaseTool]:
    """Import ``package.module:ClassName`` after the allowlist check; clear errors otherwise."""
    module_name, attr = check_entrypoint_allowed(entrypoint, allowlist)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module raising on import
        raise EntrypointError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise EntrypointError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseTool)):
        raise EntrypointError(f"{entrypoint!r} is not a BaseTool subclass")
    return cls
