"""agent_template_tools: derived from each version's tool_policy when it is written (and rebuilt
so by migration templates_app 0004), never edited by hand."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from templates_app.models import AgentTemplateTool
from templates_app.services import template_create, template_version_create
from tests.factories import make_tool

pytestmark = pytest.mark.django_db


def _links(version) -> list[tuple[str, str]]:
    return list(version.tool_links.order_by("tool__name").values_list("tool__name", "role"))


def test_links_follow_each_versions_tool_policy():
    for name in ("alpha_tool", "beta_tool", "gamma_tool"):
        make_tool(name=name)
    v1 = template_create(name="linked_agent", content={"tool_policy": {
        "required_tools": ["alpha_tool"], "allowlist": ["beta_tool", "not_in_the_catalog"]}})
    assert _links(v1) == [("alpha_tool", "required"), ("beta_tool", "allowed")]
    v2 = template_version_create(template=v1.template, changes={"tool_policy": {"allowlist": ["gamma_tool"]}},
                                 activate=True)
    assert _links(v2) == [("alpha_tool", "required"), ("gamma_tool", "allowed")]  # the policy is merged
    v3 = template_version_create(template=v1.template, changes={"tool_policy": {"required_tools": []}})
    assert _links(v3) == [("gamma_tool", "allowed")]
    assert _links(v1) == [("alpha_tool", "required"), ("beta_tool", "allowed")]  # an older version keeps its own


def test_migration_rebuilds_the_links_from_the_policies():
    make_tool(name="alpha_tool")
    stray = make_tool(name="stray_tool")
    version = template_create(name="migrated_agent", content={"tool_policy": {"required_tools": ["alpha_tool"]}})
    version.tool_links.all().delete()  # as links edited by hand before: one missing, one the policy never named
    AgentTemplateTool.objects.create(version=version, tool=stray, role="allowed")
    migration = importlib.import_module("templates_app.migrations.0004_tool_links_from_policy")
    migration.rebuild(apps, None)
    assert _links(version) == [("alpha_tool", "required")]
