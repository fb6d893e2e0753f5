"""``catalog.selectors.tool_specs_by_name``: what every session start reads. A row read again gives
the spec built before; any change to the row, through the services or not, gives a new one."""

from __future__ import annotations

import pytest

from catalog.models import Tool
from catalog.selectors import tool_specs_by_name
from catalog.services import tool_set_active, tool_update
from tests.factories import make_tool

pytestmark = pytest.mark.django_db


def test_the_same_row_gives_the_same_spec_and_a_changed_row_a_new_one():
    tool = make_tool(tags=["a", "b"], endpoint={"url": "https://example.com"})
    first = tool_specs_by_name(names=[tool.name])[tool.name]
    assert (first.id, first.tags, first.endpoint) == (tool.pk, ("a", "b"), {"url": "https://example.com"})
    assert tool_specs_by_name(names=[tool.name])[tool.name] is first

    tool_update(tool=tool, description="Changed through the service.")
    updated = tool_specs_by_name(names=[tool.name])[tool.name]
    assert (updated.description, updated.revision) == ("Changed through the service.", first.revision + 1)

    # an edit that bypasses the services (no new revision) is still seen: the whole row is the key
    Tool.objects.filter(pk=tool.pk).update(parameters={"type": "object", "properties": {"n": {"type": "integer"}}})
    bypassed = tool_specs_by_name(names=[tool.name])[tool.name]
    assert bypassed.revision == updated.revision and bypassed.parameters["properties"] == {"n": {"type": "integer"}}


def test_inactive_tools_are_left_out_unless_asked_for():
    tool = make_tool()
    tool_set_active(tool=tool, active=False)
    assert tool_specs_by_name(names=[tool.name]) == {}
    assert tool_specs_by_name(names=[tool.name], active_only=False)[tool.name].id == tool.pk
