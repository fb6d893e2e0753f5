"""Import strings of python tools (``package.module:ClassName``), only from allowlisted prefixes."""

from __future__ import annotations

import importlib
import inspect
import re

from pydantic import BaseModel

_ENTRYPOINT = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_]\w*)$")


class EntrypointError(ValueError):
    """The entrypoint is malformed, not allowlisted, not importable or not a tool class."""


def check_entrypoint_allowed(entrypoint: str, allowlist: list[str] | tuple[str, ...]) -> tuple[str, str]:
    """Syntax and allowlist check, without importing anything."""
    match = _ENTRYPOINT.match(entrypoint or "")
    if not match:
        raise EntrypointError(f"entrypoint {entrypoint!r} must look like 'package.module:ClassName'")
    module = match["module"]
    for prefix in allowlist:
        bare = prefix.rstrip(".")
        if bare and (module == bare or module.startswith(bare + ".")):
            return module, match["attr"]
    raise EntrypointError(
        f"module {module!r} is not under an allowed prefix (TOOL_ENTRYPOINT_ALLOWLIST: {list(allowlist)})"
    )


def load_entrypoint(entrypoint: str, allowlist: list[str] | tuple[str, ...]) -> type[BaseModel]:
    """Import the class after the allowlist check; it must be a pydantic model with ``async __call__``."""
    module_name, attr = check_entrypoint_allowed(entrypoint, allowlist)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module raising on import
        raise EntrypointError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise EntrypointError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseModel) and inspect.iscoroutinefunction(cls.__call__)):
        raise EntrypointError(f"{entrypoint!r} is not a tool class (a BaseTool subclass with async __call__)")
    return cls
