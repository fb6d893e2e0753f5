"""``manage.py import_tools`` / ``export_tools``: JSON Lines, idempotent by name, bad lines reported."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Tool

pytestmark = pytest.mark.django_db

TOOLS = [
    {"name": "stock_lookup", "description": "Looks up the stock level of an item by SKU.",
     "endpoint": {"url": "https://inventory.example/api/lookup", "timeout_s": 5},
     "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
     "risk": "low", "tags": ["inventory"]},
    {"name": "order_refund", "description": "Refunds an order (declared: no implementation yet).",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}, "risk": "high"},
    {"name": "think_aloud", "description": "Reasons about the next step.",
     "kind": "python", "entrypoint": "runtime.tools.system:ReasoningTool"},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def import_tools(path: Path) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_tools", str(path), "--no-progress", stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def snapshot() -> dict[str, tuple]:
    return {t.name: (t.revision, t.updated_at) for t in Tool.objects.all()}


def test_import_creates_then_is_idempotent(tmp_path):
    path = write_jsonl(tmp_path / "tools.jsonl", TOOLS)

    first, _ = import_tools(path)
    created = snapshot()
    second, _ = import_tools(path)

    assert first == "created 3, updated 0, unchanged 0, errors 0"
    assert second == "created 0, updated 0, unchanged 3, errors 0"
    assert snapshot() == created  # nothing was rewritten
    http, declared, python = (Tool.objects.get(name=t["name"]) for t in TOOLS)
    assert http.kind == "http"  # the kind follows from the fields given, as in the admin API
    assert http.endpoint["url"] == "https://inventory.example/api/lookup" and http.endpoint["timeout_s"] == 5
    assert (http.tags, http.parameters) == (["inventory"], TOOLS[0]["parameters"])
    assert (declared.kind, declared.risk) == ("declared", "high")
    assert (python.kind, python.parameters) == ("python", {"type": "object", "properties": {}})
    assert all(t.revision == 1 and t.is_active for t in (http, declared, python))


def test_changed_description_updates_one_tool(tmp_path):
    import_tools(write_jsonl(tmp_path / "tools.jsonl", TOOLS))
    changed = [dict(TOOLS[0]), *TOOLS[1:]]
    changed[0]["description"] = "Looks up stock levels and the restock date."

    summary, _ = import_tools(write_jsonl(tmp_path / "changed.jsonl", changed))

    assert summary == "created 0, updated 1, unchanged 2, errors 0"
    tool = Tool.objects.get(name="stock_lookup")
    assert (tool.description, tool.revision) == ("Looks up stock levels and the restock date.", 2)
    assert tool.endpoint["url"] == "https://inventory.example/api/lookup"  # the rest is kept
    assert Tool.objects.get(name="order_refund").revision == 1


def test_bad_lines_fail_the_command_but_good_lines_are_imported(tmp_path):
    rows = [
        TOOLS[0],
        '{"name": "broken", "description": ',  # not JSON
        {"name": "bad_schema", "description": "x", "parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}},
        {"name": "private_hook", "description": "x", "kind": "http", "endpoint": {"url": "http://127.0.0.1:9/"}},
        {"name": "os_call", "description": "x", "kind": "python", "entrypoint": "os:system"},
        ["not", "an", "object"],
        TOOLS[1],
    ]
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="5 line"):
        call_command("import_tools", str(write_jsonl(tmp_path / "mixed.jsonl", rows)), "--no-progress",
                     stdout=out, stderr=err)

    assert out.getvalue().strip() == "created 2, updated 0, unchanged 0, errors 5"
    assert set(Tool.objects.values_list("name", flat=True)) == {"stock_lookup", "order_refund"}
    report = err.getvalue()
    assert "line 2: invalid JSON" in report
    for name, field in (("bad_schema", "parameters"), ("private_hook", "endpoint"), ("os_call", "entrypoint")):
        assert f"{name}: " in report and field in report.split(f"{name}: ", 1)[1].splitlines()[0]


def test_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        import_tools(tmp_path / "nope.jsonl")


def test_export_then_reimport_changes_nothing(tmp_path):
    import_tools(write_jsonl(tmp_path / "tools.jsonl", TOOLS))
    Tool.objects.filter(name="order_refund").update(is_active=False)
    exported = tmp_path / "export.jsonl"

    call_command("export_tools", "-o", str(exported), stderr=StringIO())
    before = snapshot()
    summary, _ = import_tools(exported)

    rows = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert [r["name"] for r in rows] == sorted(Tool.objects.values_list("name", flat=True))
    by_name = {r["name"]: r for r in rows}
    assert by_name["stock_lookup"]["kind"] == "http" and by_name["stock_lookup"]["endpoint"]["timeout_s"] == 5
    assert by_name["order_refund"]["is_active"] is False
    assert "embedding" not in by_name["think_aloud"] and "revision" not in by_name["think_aloud"]
    assert summary == f"created 0, updated 0, unchanged {len(rows)}, errors 0"
    assert snapshot() == before


def test_export_into_an_empty_catalog_recreates_the_tools(tmp_path):
    import_tools(write_jsonl(tmp_path / "tools.jsonl", TOOLS))
    exported = tmp_path / "export.jsonl"
    call_command("export_tools", "-o", str(exported), "--active-only", stderr=StringIO())
    original = {t.name: (t.kind, t.endpoint, t.parameters, t.tags, t.risk) for t in Tool.objects.all()}
    Tool.objects.all().delete()

    summary, _ = import_tools(exported)

    assert summary == "created 3, updated 0, unchanged 0, errors 0"
    assert {t.name: (t.kind, t.endpoint, t.parameters, t.tags, t.risk) for t in Tool.objects.all()} == original
