"""Writes for the tool catalog.

Every change of a tool bumps its ``revision`` (the runtime hot-loads tools by
revision). Services are atomic, validate the row with ``full_clean()`` and save
only the fields they changed.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from catalog.models import RiskLevel, Tool, ToolKind

# Fields a caller may change through ``tool_update`` (content and flags; never
# ``revision``, timestamps or the embedding, which retrieval maintains).
TOOL_UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "parameters",
        "kind",
        "entrypoint",
        "endpoint",
        "target_template",
        "risk",
        "tags",
        "is_system",
        "is_active",
    }
)


@transaction.atomic
def tool_create(
    *,
    name: str,
    description: str,
    parameters: dict[str, Any],
    kind: str = ToolKind.DECLARED,
    entrypoint: str = "",
    endpoint: dict[str, Any] | None = None,
    target_template: str = "",
    risk: str = RiskLevel.LOW,
    tags: list[str] | None = None,
    is_system: bool = False,
    is_active: bool = True,
) -> Tool:
    """Create a tool at revision 1. Raises ``ValidationError`` on invalid data."""
    tool = Tool(
        name=name,
        description=description,
        parameters=parameters,
        kind=kind,
        entrypoint=entrypoint,
        endpoint=endpoint if endpoint is not None else {},
        target_template=target_template,
        risk=risk,
        tags=list(tags) if tags is not None else [],
        is_system=is_system,
        is_active=is_active,
        revision=1,
    )
    tool.full_clean()
    tool.save()
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
    for field, value in fields.items():
        if field == "endpoint" and value is None:
            value = {}
        if field == "tags" and value is None:
            value = []
        setattr(tool, field, value)
    tool.revision = locked.revision + 1
    tool.full_clean()
    tool.save(update_fields=[*fields, "revision", "updated_at"])
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
