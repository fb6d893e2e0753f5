"""Writes for the tool catalog.

Every write checks the whole definition (``catalog.schemas.tool_definition_check``)
and bumps ``revision``; runtimes load tools from the database at each session
start, so a change is used by the next session in every server process.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from catalog.errors import ToolExists
from catalog.models import RiskLevel, Tool, ToolKind
from catalog.schemas import tool_definition_check

# Fields a caller may change through ``tool_update`` (content and flags; never
# ``revision``, timestamps or the embedding, which retrieval maintains).
TOOL_UPDATABLE_FIELDS = frozenset(
    {"name", "description", "parameters", "kind", "entrypoint", "endpoint", "target_template",
     "risk", "tags", "is_system", "is_active"}
)
DEFINITION_FIELDS = ("name", "description", "parameters", "kind", "entrypoint", "endpoint", "target_template", "risk", "tags")


def _check(data: dict[str, Any]) -> dict[str, Any]:
    return tool_definition_check(
        data,
        entrypoint_allowlist=settings.TOOL_ENTRYPOINT_ALLOWLIST,
        allow_private=settings.HTTP_TOOL_ALLOW_PRIVATE,
    )


@transaction.atomic
def tool_create(
    *,
    name: str,
    description: str,
    parameters: dict[str, Any] | None = None,
    kind: str = ToolKind.DECLARED,
    entrypoint: str = "",
    endpoint: dict[str, Any] | None = None,
    target_template: str = "",
    risk: str = RiskLevel.LOW,
    tags: list[str] | None = None,
    is_system: bool = False,
    is_active: bool = True,
) -> Tool:
    """Create a tool at revision 1. Raises ``ToolInvalid`` (400) or ``ToolExists`` (409)."""
    data = _check({
        "name": name, "description": description, "parameters": parameters, "kind": kind,
        "entrypoint": entrypoint, "endpoint": endpoint or {}, "target_template": target_template,
        "risk": risk, "tags": list(tags or []),
    })
    if Tool.objects.filter(name=name).exists():
        raise ToolExists(f"A tool named {name!r} exists; PATCH it instead")
    tool = Tool(**data, is_system=is_system, is_active=is_active, revision=1)
    tool.full_clean()
    try:
        with transaction.atomic():
            tool.save()
    except IntegrityError as exc:  # a concurrent create with the same name won
        raise ToolExists(f"A tool named {name!r} exists") from exc
    _index(tool.pk)
    return tool


def _lock(tool: Tool) -> Tool:
    """The tool's row, locked with SELECT ... FOR UPDATE until the transaction ends."""
    return Tool.objects.select_for_update().only("id", "revision", "is_active").get(pk=tool.pk)


@transaction.atomic
def tool_update(*, tool: Tool, **fields: Any) -> Tool:
    """Change the given fields of ``tool`` and bump its revision by one.

    Lock: takes a row lock (SELECT ... FOR UPDATE) on the tool, so concurrent
    updates serialise and each gets its own revision. ``tool`` is updated in
    place and returned. Unknown field names are a programming error (TypeError).
    """
    unknown = set(fields) - TOOL_UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"tool_update() got fields it may not change: {', '.join(sorted(unknown))}")
    locked = _lock(tool)
    merged = {f: getattr(tool, f) for f in DEFINITION_FIELDS}
    merged.update({k: v for k, v in fields.items() if k in DEFINITION_FIELDS})
    merged["endpoint"] = merged.get("endpoint") or {}
    merged["tags"] = list(merged.get("tags") or [])
    checked = _check(merged)
    if "name" in fields and fields["name"] != tool.name and Tool.objects.filter(name=fields["name"]).exists():
        raise ToolExists(f"A tool named {fields['name']!r} exists")
    for field in fields:
        setattr(tool, field, checked[field] if field in checked else fields[field])
    tool.revision = locked.revision + 1
    tool.full_clean()
    tool.save(update_fields=[*fields, "revision", "updated_at"])
    if set(fields) & {"name", "description", "parameters"}:
        _index(tool.pk)
    return tool


@transaction.atomic
def tool_set_active(*, tool: Tool, active: bool) -> Tool:
    """Activate or deactivate a tool; bumps the revision when the flag changes.

    Lock: takes a row lock (SELECT ... FOR UPDATE) on the tool. Setting the flag
    it already has is a no-op (no new revision); ``tool`` is refreshed either way.
    """
    locked = _lock(tool)
    if locked.is_active == active:
        tool.is_active = locked.is_active
        tool.revision = locked.revision
        return tool
    tool.is_active = active
    tool.revision = locked.revision + 1
    tool.full_clean()
    tool.save(update_fields=["is_active", "revision", "updated_at"])
    return tool


def _index(tool_id: int) -> None:
    """Tool search: the keyword index now (this transaction), the embedding after commit (background)."""
    from retrieval.services import tool_embedding_schedule

    tool_embedding_schedule(tool_id=tool_id)
