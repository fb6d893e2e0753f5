"""Reads for the tool catalog; other apps get ``ToolSpec`` objects, never rows."""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db.models import Max

from catalog.models import Tool
from catalog.specs import ToolSpec
from platform_site.sql import fetch

_FIELDS = ["id", "name", "description", "kind", "parameters", "entrypoint", "endpoint",
           "target_template", "risk", "tags", "is_system", "revision"]


def _spec(row: dict) -> ToolSpec:
    row = dict(row)
    row["tags"] = tuple(row["tags"] or ())
    return ToolSpec(**row)


_SPECS_BY_NAME_SQL = (f"SELECT {', '.join(_FIELDS)} FROM tools "
                      "WHERE name = ANY(%(names)s) AND (is_active OR NOT %(active_only)s)")


# Specs already built, by their whole row: a row read again (every session start reads the same
# few) gives the same spec without decoding and validating it again; any change is a new row.
_built: dict[tuple, ToolSpec] = {}
_BUILT_MAX = 2048


def _spec_of_row(row: tuple) -> ToolSpec:
    key = tuple(tuple(v) if isinstance(v, list) else v for v in row)  # tags: a list, unhashable
    spec = _built.get(key)
    if spec is None:
        fields = dict(zip(_FIELDS, row, strict=True))
        for name in ("parameters", "endpoint"):  # Django's connection loads jsonb as text; its ORM decodes
            fields[name] = json.loads(fields[name]) if fields[name] is not None else {}
        spec = _spec(fields)
        if len(_built) >= _BUILT_MAX:
            _built.clear()
        _built[key] = spec
    return spec


def tool_specs_by_name(*, names: Iterable[str], active_only: bool = True) -> dict[str, ToolSpec]:
    """The named tools' specs (read at every session start: a prepared statement, no ORM)."""
    specs = {}
    for row in fetch(_SPECS_BY_NAME_SQL, {"names": list(names), "active_only": active_only}):
        spec = _spec_of_row(row)
        specs[spec.name] = spec
    return specs


def tool_specs_active(*, system: bool | None = None) -> list[ToolSpec]:
    qs = Tool.objects.filter(is_active=True)
    if system is not None:
        qs = qs.filter(is_system=system)
    return [_spec(row) for row in qs.order_by("name").values(*_FIELDS)]


def catalog_stamp() -> tuple[int, str]:
    """(row count, newest update time): changes whenever any tool is created or changed.

    Runtime caches key on this, so a change made by any process is seen by all.
    """
    agg = Tool.objects.aggregate(last=Max("updated_at"))
    return Tool.objects.count(), agg["last"].isoformat() if agg["last"] else ""


def tool_get(*, ref: str | int) -> Tool:
    """A tool by id or by name; ``ToolNotFound`` (404) otherwise."""
    from catalog.errors import ToolNotFound

    ref = str(ref)
    tool = Tool.objects.filter(pk=int(ref)).first() if ref.isdigit() else Tool.objects.filter(name=ref).first()
    if tool is None:
        raise ToolNotFound(f"No tool {ref!r}")
    return tool


def tools_filter(*, tag: str | None = None, kind: str | None = None, active: bool | None = None,
                 system: bool | None = None, q: str | None = None):
    from django.db.models import Q

    qs = Tool.objects.order_by("name")
    if tag:
        qs = qs.filter(tags__contains=[tag])
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(is_active=active)
    if system is not None:
        qs = qs.filter(is_system=system)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return qs
