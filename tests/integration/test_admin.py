"""The Django admin web UI against the real database, as a superuser."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.urls import reverse

from access.models import ApiKey
from access.services import api_key_create
from catalog.models import Tool
from sessions_app.models import AgentInstance, Artifact, Session, SessionMessage, Source, ToolExecution
from templates_app.models import AgentTemplate, AgentTemplateTool, AgentTemplateVersion
from tests.factories import make_instance, make_message, make_session, make_template, make_tool, make_version

pytestmark = pytest.mark.django_db

PLATFORM_MODELS = {
    ApiKey, Tool, AgentTemplate, AgentTemplateVersion, AgentTemplateTool,
    AgentInstance, Session, SessionMessage, ToolExecution, Source, Artifact,
}
# Written only by the runtime (sessions, history, instances) or tied to an immutable version.
ADD_DISABLED = {AgentInstance, Session, SessionMessage, ToolExecution, Source, Artifact, AgentTemplateTool}
REGISTERED = sorted(admin.site._registry, key=lambda m: m._meta.label)


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def rows(db):
    """One row of every platform model, with JSON and embeddings filled in."""
    tool = make_tool(name="stock_lookup", kind="http", endpoint={"url": "https://inventory.example"},
                     tags=["inventory"], embedding=[0.1] * 384, embedding_model="test-model")
    template = make_template("warehouse_agent", description="Answers stock questions")
    version = template.active_version
    link = AgentTemplateTool.objects.create(version=version, tool=tool, role="required")
    instance = make_instance(version)
    session = make_session(version, instance=instance, state="researching", context={"plan": ["x"]},
                           current_step_reasoning={"next": "search"}, routing={"template": "warehouse_agent"})
    instance.status = "busy"
    instance.current_session = session
    instance.save()
    message = make_message(session, content="How many widgets?")
    execution = ToolExecution.objects.create(session=session, tool=tool, tool_name=tool.name,
                                             arguments={"sku": "W-1"}, result="12", status="ok")
    source = Source.objects.create(session=session, number=1, url="https://example.com", title="Example")
    artifact = Artifact.objects.create(session=session, name="report.md", content="# R", metadata={"n": 1})
    key = api_key_create(name="admin-ui").key
    return {
        Tool: tool, AgentTemplate: template, AgentTemplateVersion: version, AgentTemplateTool: link,
        AgentInstance: instance, Session: session, SessionMessage: message, ToolExecution: execution,
        Source: source, Artifact: artifact, ApiKey: key,
    }


def test_every_platform_model_is_registered():
    assert PLATFORM_MODELS <= set(admin.site._registry)
    assert set(admin.site._registry) - PLATFORM_MODELS <= {User, Group}


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist(staff_client, rows, model):
    response = staff_client.get(url(model, "changelist"))
    assert response.status_code == 200
    if model in rows:
        assert response.context["cl"].result_count == 1


@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_add_page(staff_client, model):
    response = staff_client.get(url(model, "add"))
    assert response.status_code == (403 if model in ADD_DISABLED else 200)


@pytest.mark.parametrize("model", sorted(PLATFORM_MODELS, key=lambda m: m._meta.label), ids=lambda m: m._meta.label)
def test_change_page(staff_client, rows, model):
    response = staff_client.get(url(model, "change", rows[model].pk))
    assert response.status_code == 200


@pytest.mark.parametrize("model", [Session, SessionMessage, ToolExecution, Artifact, AgentInstance])
def test_changelist_search_with_any_text(staff_client, rows, model):
    assert staff_client.get(url(model, "changelist"), {"q": "not-a-uuid"}).status_code == 200
    response = staff_client.get(url(model, "changelist"), {"q": str(rows[Session].pk)})
    assert response.status_code == 200


def test_session_page_shows_history_read_only(staff_client, rows):
    session = rows[Session]
    response = staff_client.get(url(Session, "change", session.pk))
    content = response.content.decode()
    assert "How many widgets?" in content
    assert "W-1" in content and "https://example.com" in content and "report.md" in content
    assert 'name="_save"' not in content  # a view page: nothing to save
    before = Session.objects.values().get(pk=session.pk)
    assert staff_client.post(url(Session, "change", session.pk), {"state": "completed"}).status_code == 403
    assert Session.objects.values().get(pk=session.pk) == before


def test_embedding_is_shown_not_editable(staff_client, rows):
    response = staff_client.get(url(Tool, "change", rows[Tool].pk))
    assert 'name="embedding"' not in response.content.decode()
    assert "yes (test-model)" in response.content.decode()
    response = staff_client.get(url(AgentTemplateVersion, "change", rows[AgentTemplateVersion].pk))
    assert 'name="embedding"' not in response.content.decode()
    assert "no embedding" in response.content.decode()


# --- tools ------------------------------------------------------------------------------------


def tool_form(**overrides) -> dict:
    data = {
        "name": "new_tool",
        "description": "Does a thing",
        "kind": "declared",
        "risk": "low",
        "tags": "a,b",
        "is_active": "on",
        "entrypoint": "",
        "endpoint": "{}",
        "target_template": "",
        "parameters": json.dumps({"type": "object", "properties": {"q": {"type": "string"}}}),
    }
    data.update(overrides)
    return data


def test_add_tool_goes_through_services(staff_client):
    response = staff_client.post(url(Tool, "add"), tool_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    tool = Tool.objects.get(name="new_tool")
    assert tool.revision == 1 and tool.tags == ["a", "b"] and tool.is_active
    assert tool.parameters["properties"] == {"q": {"type": "string"}}


def test_edit_tool_bumps_revision(staff_client, rows):
    tool = rows[Tool]
    form = tool_form(name=tool.name, kind="http", endpoint=json.dumps(tool.endpoint), description="Edited")
    response = staff_client.post(url(Tool, "change", tool.pk), form)
    assert response.status_code == 302
    tool.refresh_from_db()
    assert tool.description == "Edited" and tool.revision == 2
    assert tool.embedding is not None  # untouched by the form


def test_change_form_shows_pretty_json(staff_client, rows):
    content = staff_client.get(url(Tool, "change", rows[Tool].pk)).content.decode()
    assert "{\n  &quot;url&quot;: &quot;https://inventory.example&quot;\n}" in content


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"parameters": "{not json"}, "parameters"),
        ({"parameters": "[1, 2]"}, "parameters"),
        ({"parameters": '{"type": "array"}'}, "parameters"),
        ({"parameters": '{"type": "object", "properties": 5}'}, "parameters"),
        ({"endpoint": "{'url': 1}"}, "endpoint"),
        ({"name": "bad name"}, None),
        ({"kind": "python"}, None),
        ({"kind": "http"}, None),
    ],
)
def test_invalid_tool_form_shows_errors(staff_client, overrides, field):
    response = staff_client.post(url(Tool, "add"), tool_form(**overrides))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors
    if field:
        assert field in form.errors
    assert not Tool.objects.exists()


def test_invalid_json_on_change_keeps_the_tool(staff_client, rows):
    tool = rows[Tool]
    form = tool_form(name=tool.name, kind="http", endpoint='{"url": "https://x"}', parameters="{oops")
    response = staff_client.post(url(Tool, "change", tool.pk), form)
    assert response.status_code == 200
    assert "parameters" in response.context["adminform"].form.errors
    assert "{oops" in response.content.decode()  # the bad input is shown back for fixing
    tool.refresh_from_db()
    assert tool.revision == 1 and tool.endpoint == {"url": "https://inventory.example"}


def test_tool_activate_and_deactivate_actions(staff_client, rows):
    tool, other = rows[Tool], make_tool(name="other_tool")
    selected = [tool.pk, other.pk]
    response = staff_client.post(url(Tool, "changelist"), {"action": "deactivate_tools", "_selected_action": selected})
    assert response.status_code == 302
    assert list(Tool.objects.order_by("name").values_list("is_active", "revision")) == [(False, 2), (False, 2)]
    staff_client.post(url(Tool, "changelist"), {"action": "deactivate_tools", "_selected_action": [tool.pk]})
    assert Tool.objects.get(pk=tool.pk).revision == 2  # already inactive: no new revision
    staff_client.post(url(Tool, "changelist"), {"action": "activate_tools", "_selected_action": [tool.pk]})
    tool.refresh_from_db()
    assert tool.is_active and tool.revision == 3


# --- templates --------------------------------------------------------------------------------


def version_form(template, **overrides) -> dict:
    data = {
        "template": template.pk,
        "agent_kind": "tool_calling",
        "description": "Second",
        "note": "via admin",
        "tags": "",
        "prompt_pack": json.dumps({"system_prompt": "Be brief. Today is {current_date}."}),
        "llm_config": "{}",
        "execution_policy": json.dumps({"max_iterations": 3}),
        "tool_policy": "{}",
        "rules": "[]",
        "examples": "[]",
    }
    data.update(overrides)
    return data


def test_add_version_through_admin(staff_client, rows):
    template = rows[AgentTemplate]
    tool = rows[Tool]
    add_page = staff_client.get(url(AgentTemplateVersion, "add"))
    assert b"tool_links-TOTAL_FORMS" not in add_page.content  # tools are chosen in tool_policy only
    form = version_form(template, tool_policy=json.dumps({"allowlist": [tool.name, "not_in_the_catalog"]}))
    response = staff_client.post(url(AgentTemplateVersion, "add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    version = template.versions.get(version=2)  # the number comes from the service
    assert version.execution_policy["max_iterations"] == 3
    assert "max_searches" in version.execution_policy  # stored with defaults, like the services do
    assert version.agent_kind == "tool_calling"
    assert list(version.tool_links.values_list("tool__name", "role")) == [(tool.name, "allowed")]  # derived
    view = staff_client.get(url(AgentTemplateVersion, "change", version.pk))
    assert view.status_code == 200 and tool.name.encode() in view.content
    assert b'name="tool_links-0-tool"' not in view.content  # shown, not editable
    template.refresh_from_db()
    assert template.active_version.version == 1  # adding does not activate


@pytest.mark.parametrize(
    "overrides",
    [
        {"execution_policy": "{bad json"},
        {"execution_policy": json.dumps({"max_iterations": 0})},
        {"prompt_pack": json.dumps({"system_prompt": "Hi {unknown}"})},
    ],
)
def test_invalid_version_form_shows_errors(staff_client, rows, overrides):
    template = rows[AgentTemplate]
    response = staff_client.post(url(AgentTemplateVersion, "add"), version_form(template, **overrides))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert template.versions.count() == 1


def test_existing_version_is_read_only(staff_client, rows):
    version = rows[AgentTemplateVersion]
    response = staff_client.get(url(AgentTemplateVersion, "change", version.pk))
    assert response.status_code == 200
    assert 'name="prompt_pack"' not in response.content.decode()
    assert "You are a test agent." in response.content.decode()
    response = staff_client.post(url(AgentTemplateVersion, "change", version.pk), version_form(rows[AgentTemplate]))
    assert response.status_code == 403


def test_activate_version_action(staff_client, rows):
    template = rows[AgentTemplate]
    v2 = make_version(template, description="Second")
    response = staff_client.post(
        url(AgentTemplateVersion, "changelist"), {"action": "activate_version", "_selected_action": [v2.pk]}
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.active_version_id == v2.pk


def test_activate_two_versions_of_one_template_is_refused(staff_client, rows):
    template = rows[AgentTemplate]
    v2 = make_version(template)
    response = staff_client.post(
        url(AgentTemplateVersion, "changelist"),
        {"action": "activate_version", "_selected_action": [template.active_version_id, v2.pk]},
        follow=True,
    )
    assert "Select one version per template" in response.content.decode()
    template.refresh_from_db()
    assert template.active_version.version == 1


def test_add_template_through_admin(staff_client):
    form = {"name": "new_agent", "is_active": "on",
            "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"}
    response = staff_client.post(url(AgentTemplate, "add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AgentTemplate.objects.get(name="new_agent").active_version is None


# --- API keys ---------------------------------------------------------------------------------


def test_add_api_key_through_admin_shows_key_once(staff_client):
    response = staff_client.post(url(ApiKey, "add"), {"name": "from-admin", "scopes": "chat,admin"}, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(name="from-admin")
    assert key.is_admin
    shown = [str(m) for m in response.context["messages"] if "shown once" in str(m)]
    assert len(shown) == 1 and key.prefix in shown[0]
