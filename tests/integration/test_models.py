"""Every model through the ORM on the real database: CRUD, constraints, pgvector search."""

from __future__ import annotations

import random

import pytest
from django.db import IntegrityError, connection, transaction
from pgvector.django import CosineDistance

from access.models import ApiKey
from catalog.models import Tool
from sessions_app.models import (
    AgentInstance,
    Artifact,
    Session,
    SessionMessage,
    Source,
    ToolExecution,
)
from templates_app.models import AgentTemplate, AgentTemplateTool
from tests.factories import make_instance, make_message, make_session, make_template, make_tool, make_version

pytestmark = pytest.mark.django_db

DIM = 384


def random_unit_vector(rng: random.Random) -> list[float]:
    values = [rng.gauss(0, 1) for _ in range(DIM)]
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


# --- create / read / update / delete ----------------------------------------------------------


def test_tool_crud():
    tool = make_tool(name="stock_lookup", kind="http", endpoint={"url": "https://inventory.example/api"},
                     tags=["inventory", "stock"], risk="medium")
    got = Tool.objects.get(name="stock_lookup")
    assert got.endpoint == {"url": "https://inventory.example/api"}
    assert got.tags == ["inventory", "stock"]
    assert got.revision == 1 and got.is_active and got.embedding is None
    assert Tool.objects.filter(tags__contains=["stock"]).get() == tool
    got.description = "Changed"
    got.embedding = [0.5] * DIM
    got.embedding_model = "test-model"
    got.save()
    got.refresh_from_db()
    assert got.description == "Changed"
    assert got.embedding is not None and len(got.embedding) == DIM
    got.delete()
    assert not Tool.objects.filter(name="stock_lookup").exists()


def test_template_version_and_tool_link_crud():
    template = make_template("warehouse_agent", description="Answers stock questions", tags=["inventory"])
    template = AgentTemplate.objects.select_related("active_version").get(name="warehouse_agent")
    assert template.active_version.version == 1
    assert template.active_version.description == "Answers stock questions"
    v2 = make_version(template, description="Second")
    assert v2.version == 2
    template.active_version = v2
    template.save(update_fields=["active_version"])
    assert AgentTemplate.objects.get(pk=template.pk).active_version_id == v2.pk
    template.is_active = False
    template.save(update_fields=["is_active"])
    assert AgentTemplate.objects.filter(is_active=False).count() == 1

    tool = make_tool()
    link = AgentTemplateTool.objects.create(version=v2, tool=tool, role="required")
    assert list(v2.tool_links.values_list("tool__name", flat=True)) == [tool.name]
    link.role = "allowed"
    link.save()
    assert AgentTemplateTool.objects.get(pk=link.pk).role == "allowed"
    link.delete()
    assert not v2.tool_links.exists()
    assert list(template.versions.values_list("version", flat=True)) == [1, 2]


def test_instance_and_session_crud():
    version = make_template().active_version
    instance = make_instance(version)
    session = make_session(version, instance=instance, state="researching")
    instance.status = "busy"
    instance.current_session = session
    instance.save()
    got = AgentInstance.objects.select_related("current_session").get(pk=instance.pk)
    assert got.status == "busy" and got.current_session == session

    session.iteration = 3
    session.context = {"plan": ["a", "b"]}
    session.current_step_reasoning = {"next_step": "search"}
    session.save()
    got = Session.objects.get(pk=session.pk)
    assert got.iteration == 3 and got.context == {"plan": ["a", "b"]}
    assert got.template_version == version and got.instance == instance

    child = make_session(version, parent=session, depth=1)
    assert list(session.children.all()) == [child]

    instance.status = "idle"
    instance.current_session = None
    instance.sessions_served = 1
    instance.save()
    session.delete()
    assert not Session.objects.filter(pk=child.pk).exists()  # children cascade
    assert AgentInstance.objects.get(pk=instance.pk).sessions_served == 1


def test_session_history_crud():
    session = make_session()
    tool = make_tool()
    make_message(session, role="system", content="You are a test agent.")
    make_message(session, role="user", content="Hi")
    assistant = make_message(session, role="assistant", content=None,
                             tool_calls=[{"id": "c1", "type": "function", "function": {"name": tool.name}}])
    execution = ToolExecution.objects.create(session=session, tool=tool, tool_name=tool.name, tool_call_id="c1",
                                             arguments={"q": "x"}, result="42", status="ok", duration_ms=1.5)
    source = Source.objects.create(session=session, number=1, url="https://example.com/a", title="A")
    artifact = Artifact.objects.create(session=session, name="report.md", content="# Report", metadata={"words": 1})

    assert [m.seq for m in session.messages.all()] == [1, 2, 3]
    assert SessionMessage.objects.get(pk=assistant.pk).message["tool_calls"][0]["id"] == "c1"
    assert session.tool_executions.get().arguments == {"q": "x"}
    assert session.sources.get().url == "https://example.com/a"
    assert session.artifacts.get().content_type == "text/markdown"

    execution.status = "error"
    execution.error = "boom"
    execution.save()
    source.title = "B"
    source.save()
    artifact.content = "# Report v2"
    artifact.save()
    assert ToolExecution.objects.get(pk=execution.pk).error == "boom"
    assert Source.objects.get(pk=source.pk).title == "B"
    assert Artifact.objects.get(pk=artifact.pk).content == "# Report v2"

    tool.delete()  # executions keep their record, without the tool
    execution.refresh_from_db()
    assert execution.tool is None and execution.tool_name

    session.delete()
    for model in (SessionMessage, ToolExecution, Source, Artifact):
        assert not model.objects.exists()


def test_api_key_crud():
    key = ApiKey.objects.create(name="k", prefix="ap-abc", key_hash="0" * 64, scopes=["chat"])
    key.scopes = ["chat", "admin"]
    key.save()
    got = ApiKey.objects.get(pk=key.pk)
    assert got.is_admin and not got.is_revoked


# --- constraints ------------------------------------------------------------------------------


def assert_refused(create) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


@pytest.mark.parametrize("name", ["has space", "semi;colon", "", "a/b", "ünïcode"])
def test_invalid_tool_name_is_refused(name):
    assert_refused(lambda: make_tool(name=name))


def test_tool_kind_constraints():
    assert_refused(lambda: make_tool(kind="python"))
    assert_refused(lambda: make_tool(kind="http", endpoint={"timeout_s": 5}))
    assert_refused(lambda: make_tool(kind="agent"))
    assert_refused(lambda: make_tool(kind="shell"))
    assert_refused(lambda: make_tool(risk="extreme"))
    assert_refused(lambda: make_tool(embedding=[0.1] * DIM))  # an embedding needs its model
    make_tool(kind="python", entrypoint="runtime.tools.echo:EchoTool")
    make_tool(kind="agent", target_template="writer_agent")


def test_duplicate_tool_name_is_refused():
    make_tool(name="dup")
    assert_refused(lambda: make_tool(name="dup"))


def test_duplicate_template_version_number_is_refused():
    template = make_template()
    assert_refused(lambda: make_version(template, version=1))
    assert_refused(lambda: make_version(template, version=0))
    assert_refused(lambda: make_version(template, agent_kind="magic"))


def test_invalid_template_name_is_refused():
    assert_refused(lambda: AgentTemplate.objects.create(name="no spaces please"))


def test_invalid_session_state_is_refused():
    version = make_template().active_version
    assert_refused(lambda: make_session(version, state="sleeping"))
    parent = make_session(version)
    assert_refused(lambda: make_session(version, parent=parent, depth=0))
    assert_refused(lambda: make_session(version, depth=1))


def test_busy_instance_without_session_is_refused():
    version = make_template().active_version
    assert_refused(lambda: make_instance(version, status="busy"))
    assert_refused(lambda: make_instance(version, status="exploded"))


def test_duplicate_message_seq_is_refused():
    session = make_session()
    make_message(session, seq=1)
    assert_refused(lambda: make_message(session, seq=1))
    assert_refused(lambda: SessionMessage.objects.create(session=session, seq=2, role="user", message={"content": "x"}))
    assert_refused(lambda: make_message(session, seq=3, role="robot"))


def test_history_constraints():
    session = make_session()
    Source.objects.create(session=session, number=1, url="https://example.com")
    assert_refused(lambda: Source.objects.create(session=session, number=2, url="https://example.com"))
    assert_refused(lambda: Source.objects.create(session=session, number=1, url="https://example.org"))
    assert_refused(lambda: ToolExecution.objects.create(session=session, tool_name="t", status="maybe"))
    assert_refused(lambda: ToolExecution.objects.create(session=session, tool_name="t", status="ok", duration_ms=-1))


def test_tool_link_constraints():
    version = make_template().active_version
    tool = make_tool()
    AgentTemplateTool.objects.create(version=version, tool=tool)
    assert_refused(lambda: AgentTemplateTool.objects.create(version=version, tool=tool))
    assert_refused(lambda: AgentTemplateTool.objects.create(version=version, tool=make_tool(), role="optional"))


def test_api_key_scope_constraint():
    assert_refused(lambda: ApiKey.objects.create(name="k", prefix="p", key_hash="1" * 64, scopes=["root"]))


# --- pgvector ---------------------------------------------------------------------------------


@pytest.fixture
def embedded_tools():
    rng = random.Random(1234)
    tools = [
        Tool(name=f"vec_tool_{i}", description=f"tool {i}", parameters={"type": "object"},
             embedding=random_unit_vector(rng), embedding_model="test-model")
        for i in range(200)
    ]
    Tool.objects.bulk_create(tools)
    make_tool(name="no_embedding_tool")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tools")
    return rng


def test_cosine_distance_orders_nearest_first(embedded_tools):
    rng = embedded_tools
    target = Tool.objects.get(name="vec_tool_37")
    # A query a little off the target's vector: the target is still the nearest row.
    query = [v + rng.gauss(0, 0.01) for v in target.embedding]
    ranked = list(
        Tool.objects.exclude(embedding=None)
        .annotate(distance=CosineDistance("embedding", query))
        .order_by("distance")[:5]
    )
    assert ranked[0].name == "vec_tool_37"
    assert ranked[0].distance < 0.05
    assert [t.distance for t in ranked] == sorted(t.distance for t in ranked)
    assert ranked[1].distance > 0.5  # random 384-d vectors are nearly orthogonal


def test_cosine_query_uses_hnsw_index(embedded_tools):
    query = random_unit_vector(embedded_tools)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = Tool.objects.order_by(CosineDistance("embedding", query))[:10].explain()
        ranked = list(Tool.objects.order_by(CosineDistance("embedding", query)).values_list("name", flat=True)[:10])
    assert "tools_embedding_hnsw" in plan, plan
    assert len(ranked) == 10


# --- catalog services (writes of the Tool model) ----------------------------------------------


def test_tool_create_service():
    from catalog.services import tool_create

    tool = tool_create(name="svc_tool", description="d", parameters={"type": "object"}, tags=["x"])
    assert tool.pk and tool.revision == 1 and tool.endpoint == {} and tool.kind == "declared"
    assert Tool.objects.get(pk=tool.pk).tags == ["x"]


@pytest.mark.parametrize(
    "overrides",
    [{"name": "bad name"}, {"kind": "python"}, {"kind": "http"}, {"risk": "extreme"}],
)
def test_tool_create_service_validates(overrides):
    from catalog.errors import ToolInvalid
    from catalog.services import tool_create

    fields = {"name": "svc_tool", "description": "d", "parameters": {"type": "object"}, **overrides}
    with pytest.raises(ToolInvalid):
        tool_create(**fields)
    assert not Tool.objects.exists()


def test_tool_create_service_refuses_duplicate_name():
    from catalog.errors import ToolExists
    from catalog.services import tool_create

    make_tool(name="taken")
    with pytest.raises(ToolExists):
        tool_create(name="taken", description="d", parameters={"type": "object"})


def test_tool_update_service_bumps_revision_and_saves_only_given_fields():
    from catalog.services import tool_update

    tool = make_tool(description="old", embedding=[0.2] * DIM, embedding_model="m")
    stale = Tool.objects.get(pk=tool.pk)
    tool_update(tool=tool, description="new", kind="python", entrypoint="runtime.tools.system:ReasoningTool")
    assert tool.revision == 2
    # A stale copy still gets the next revision (row lock), and does not undo the other change.
    tool_update(tool=stale, risk="high")
    assert stale.revision == 3
    got = Tool.objects.get(pk=tool.pk)
    assert (got.description, got.kind, got.risk, got.revision) == ("new", "python", "high", 3)
    assert got.embedding is not None


def test_tool_update_service_refuses_bad_data_and_unknown_fields():
    from catalog.errors import ToolInvalid
    from catalog.services import tool_update

    tool = make_tool()
    with pytest.raises(ToolInvalid):
        tool_update(tool=tool, kind="http")  # no endpoint url
    with pytest.raises(TypeError):
        tool_update(tool=tool, revision=99)
    assert Tool.objects.get(pk=tool.pk).revision == 1


def test_tool_set_active_service():
    from catalog.services import tool_set_active

    tool = make_tool()
    tool_set_active(tool=tool, active=False)
    assert (tool.is_active, tool.revision) == (False, 2)
    tool_set_active(tool=tool, active=False)
    assert tool.revision == 2
    tool_set_active(tool=tool, active=True)
    got = Tool.objects.get(pk=tool.pk)
    assert (got.is_active, got.revision) == (True, 3)
