"""Bulk import and export of tools (JSON Lines, one tool per line), idempotent by name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from catalog.errors import ToolExists, ToolInvalid
from catalog.models import Tool, ToolKind
from catalog.schemas import EndpointConfig, parameters_check, tool_kind_infer
from catalog.services import DEFINITION_FIELDS, tool_create, tool_update

EXPORT_FIELDS = (*DEFINITION_FIELDS, "is_active")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def tool_import_one(row: dict[str, Any], report: ImportReport) -> None:
    """Create the tool, or update it when its definition differs; errors are collected."""
    if not isinstance(row, dict) or "name" not in row:
        report.errors.append(f"not a tool object: {str(row)[:80]}")
        return
    fields = {k: row[k] for k in EXPORT_FIELDS if k in row}
    fields.setdefault("kind", tool_kind_infer(fields))  # as in the admin API: the fields say the kind
    try:  # compare in normalised form, so re-importing the same file changes nothing
        fields["parameters"] = parameters_check(fields.get("parameters"))
    except ValueError as exc:
        report.errors.append(f"{row['name']}: parameters: {exc}")
        return
    if fields["kind"] == ToolKind.HTTP and isinstance(fields.get("endpoint"), dict):
        try:  # defaults filled in, as stored
            fields["endpoint"] = EndpointConfig.model_validate(fields["endpoint"]).model_dump()
        except ValidationError:
            pass  # tool_create / tool_update report it with the other problems
    existing = Tool.objects.filter(name=row["name"]).first()
    try:
        if existing is None:
            tool_create(**fields)
            report.created += 1
            return
        changed = {k: v for k, v in fields.items() if getattr(existing, k) != v}
        if changed:
            tool_update(tool=existing, **changed)
            report.updated += 1
        else:
            report.unchanged += 1
    except (ToolInvalid, ToolExists) as exc:
        report.errors.append(f"{row['name']}: {exc.message}")


def tools_export(*, active_only: bool = False) -> Iterator[dict[str, Any]]:
    qs = Tool.objects.order_by("name")
    if active_only:
        qs = qs.filter(is_active=True)
    for row in qs.values(*EXPORT_FIELDS).iterator(chunk_size=500):
        yield {k: v for k, v in row.items() if v not in ("", {}, [], None) or k in ("name", "description")}


def tools_import(rows: Iterable[dict[str, Any]]) -> ImportReport:
    report = ImportReport()
    for row in rows:
        tool_import_one(row, report)
    return report
