"""The admin API (/admin/tools, /admin/templates) through DRF's test client against the real database."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, InternalError, transaction
from rest_framework.test import APIClient

from catalog.models import Tool
from catalog.services import tool_create
from templates_app.models import AgentTemplate, AgentTemplateVersion
from templates_app.selectors import template_spec_get
from templates_app.services import template_create

pytestmark = pytest.mark.django_db

STOCK = {  # the SPEC shape; inventory.example does not resolve, which is accepted
    "name": "stock_lookup", "description": "Looks up the stock level of an item by SKU.",
    "kind": "http", "endpoint": {"url": "https://inventory.example/api/lookup", "timeout_s": 10},
    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
    "risk": "low", "tags": ["inventory"],
}
WAREHOUSE = {
    "name": "warehouse_agent", "description": "Answers stock questions", "agent_kind": "sgr_tool_calling",
    "prompt_pack": {"system_prompt": "You answer stock questions. Today is {current_date}."},
    "llm_config": {"model": "gpt-4o-mini", "base_url": "https://llm.example/v1", "api_key_env": "OPENAI_API_KEY"},
    "execution_policy": {"max_iterations": 7, "max_searches": 4, "max_clarifications": 3},
    "tool_policy": {"required_tools": [], "allowlist": ["stock_lookup"], "denylist": [],
                    "max_tools_in_prompt": 10, "max_risk": "medium"},
    "rules": [], "tags": ["inventory"],
}


def _client(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def api(admin_key) -> APIClient:
    return _client(admin_key)


def error_of(response, status: int, *, code: str | None = None, names: str | None = None) -> dict:
    """An OpenAI-shaped error with ``status``; ``names`` must appear in the message."""
    assert response.status_code == status, (response.status_code, response.content)
    err = response.json()["error"]
    assert all(isinstance(err[key], str) and err[key] for key in ("message", "type", "code")), err
    if code:
        assert err["code"] == code, err
    if names:
        assert names in err["message"], err
    return err


def stock(**changes) -> dict:
    return {**STOCK, **changes}


# -- tools: create ------------------------------------------------------------------------------
CREATED = {
    "python": ({"name": "think_again", "description": "Reasons about the next step.",
                "entrypoint": "runtime.tools.system:ReasoningTool"}, "python"),
    "http in the SPEC shape": (STOCK, "http"),
    "http with a secret named by env var": (stock(endpoint={
        "url": "https://inventory.example/v2", "headers_from_env": {"Authorization": "INV_TOKEN"}}), "http"),
    "declared": ({"name": "order_refund", "description": "Refunds an order.",
                  "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}, "declared"),
}


@pytest.mark.parametrize("body,kind", CREATED.values(), ids=CREATED.keys())
def test_create_tool(api, body, kind):
    response = api.post("/admin/tools", body, format="json")

    assert response.status_code == 201, response.content
    out = response.json()
    assert (out["kind"], out["revision"], out["is_active"]) == (kind, 1, True)
    row = Tool.objects.values().get(pk=out["id"])
    for field, value in body.items():
        if field == "endpoint":  # normalised: defaults filled in
            assert value.items() <= row[field].items() and out[field] == row[field]
            assert {"timeout_s", "max_response_bytes", "headers_from_env"} <= set(row[field])
        else:
            assert row[field] == out[field] == value, field
    assert out["parameters"] == body.get("parameters", {"type": "object", "properties": {}})


INVALID_TOOLS = {
    "invalid JSON schema": ({"parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}, "parameters"),
    "not an object schema": ({"parameters": {"type": "string"}}, "parameters"),
    "parameters a list": ({"parameters": [1, 2]}, "parameters"),
    "entrypoint outside the allowlist": ({"kind": "python", "endpoint": {}, "entrypoint": "os:system"}, "entrypoint"),
    "unknown module under the allowlist": (
        {"kind": "python", "endpoint": {}, "entrypoint": "runtime.tools.nope:X"}, "entrypoint"),
    "python without entrypoint": ({"kind": "python", "endpoint": {}}, "entrypoint"),
    "loopback": ({"endpoint": {"url": "http://127.0.0.1:8080/hook"}}, "endpoint"),
    "private": ({"endpoint": {"url": "http://10.0.0.5/api"}}, "endpoint"),
    "metadata service": ({"endpoint": {"url": "http://169.254.169.254/latest/meta-data"}}, "endpoint"),
    "localhost": ({"endpoint": {"url": "http://localhost:9000/x"}}, "endpoint"),
    "ipv6 loopback": ({"endpoint": {"url": "http://[::1]:8000/x"}}, "endpoint"),
    "not http": ({"endpoint": {"url": "file:///etc/passwd"}}, "endpoint"),
    "literal secret header": (
        {"endpoint": {"url": "https://inventory.example/api", "headers": {"Authorization": "Bearer sk-live-123"}}},
        "endpoint"),
    "secret instead of env name": (
        {"endpoint": {"url": "https://inventory.example/api",
                      "headers_from_env": {"Authorization": "Bearer sk-live-123"}}}, "endpoint"),
    "http without endpoint": ({"endpoint": {}}, "endpoint"),
    "bad name": ({"name": "stock lookup!"}, "name"),
    "unknown risk": ({"risk": "extreme"}, "risk"),
}


@pytest.mark.parametrize("changes,field", INVALID_TOOLS.values(), ids=INVALID_TOOLS.keys())
def test_invalid_tool_is_400_naming_the_field_and_nothing_is_saved(api, changes, field):
    before = Tool.objects.count()

    response = api.post("/admin/tools", stock(**changes), format="json")

    err = error_of(response, 400, names=field)
    assert err["type"] == "invalid_request_error" and field in err["fields"]
    assert "sk-live-123" not in response.content.decode()  # a pasted secret is never echoed
    assert Tool.objects.count() == before


def test_duplicate_name_is_409_on_create_and_on_rename(api):
    assert api.post("/admin/tools", STOCK, format="json").status_code == 201
    other = tool_create(name="other_tool", description="Other")

    created = api.post("/admin/tools", stock(description="Another one"), format="json")
    renamed = api.patch(f"/admin/tools/{other.pk}", {"name": "stock_lookup"}, format="json")

    error_of(created, 409, code="tool_exists", names="stock_lookup")
    error_of(renamed, 409, code="tool_exists", names="stock_lookup")
    assert Tool.objects.get(name="stock_lookup").description == STOCK["description"]
    assert Tool.objects.get(pk=other.pk).name == "other_tool"


# -- tools: read ---------------------------------------------------------------------------------
@pytest.fixture
def catalog(db):
    tool_create(name="zz_stock_lookup", description="Stock level by SKU", kind="http",
                endpoint={"url": "https://inventory.example/api"}, tags=["inventory"])
    tool_create(name="zz_order_status", description="Order status", tags=["orders"])
    tool_create(name="zz_price_check", description="Price of an item in STOCK", tags=["inventory", "pricing"])
    tool_create(name="zz_legacy", description="Old stock tool", tags=["inventory"], is_active=False)


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [t["name"] for t in response.json()["results"]]


def test_list_is_paginated(api, catalog):
    total = Tool.objects.count()

    first = api.get("/admin/tools", {"limit": 2, "offset": 0})
    rest = api.get("/admin/tools", {"limit": 100, "offset": 2})

    assert first.json()["count"] == total and rest.json()["count"] == total
    assert len(names(first)) == 2 and first.json()["next"] is not None
    assert names(first) + names(rest) == sorted(Tool.objects.values_list("name", flat=True))
    assert rest.json()["next"] is None


@pytest.mark.parametrize("query,expected", [
    ({"tag": "inventory"}, ["zz_legacy", "zz_price_check", "zz_stock_lookup"]),
    ({"tag": "pricing"}, ["zz_price_check"]),
    ({"kind": "http", "q": "zz_"}, ["zz_stock_lookup"]),
    ({"active": "false", "q": "zz_"}, ["zz_legacy"]),
    ({"active": "true", "tag": "inventory"}, ["zz_price_check", "zz_stock_lookup"]),
    ({"q": "stock"}, ["zz_legacy", "zz_price_check", "zz_stock_lookup"]),
    ({"q": "order_st"}, ["zz_order_status"]),
])
def test_list_filters(api, catalog, query, expected):
    response = api.get("/admin/tools", query)

    assert names(response) == expected
    assert response.json()["count"] == len(expected)


def test_get_by_id_and_by_name(api, catalog):
    tool = Tool.objects.get(name="zz_order_status")

    by_id, by_name = api.get(f"/admin/tools/{tool.pk}"), api.get("/admin/tools/zz_order_status")

    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json() and by_id.json()["id"] == tool.pk


@pytest.mark.parametrize("method,suffix", [("get", ""), ("patch", ""), ("post", "/activate"), ("post", "/deactivate")])
@pytest.mark.parametrize("ref", ["999999", "no_such_tool"])
def test_unknown_tool_is_404(api, method, suffix, ref):
    response = getattr(api, method)(f"/admin/tools/{ref}{suffix}", {"description": "x"}, format="json")

    error_of(response, 404, code="tool_not_found", names=ref)


# -- tools: change -------------------------------------------------------------------------------
@pytest.fixture
def stock_tool(api) -> dict:
    response = api.post("/admin/tools", STOCK, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_patch_bumps_revision_and_keeps_other_fields(api, stock_tool):
    response = api.patch(f"/admin/tools/{stock_tool['id']}", {"description": "Stock level, now with ETA."},
                         format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["description"], body["revision"]) == ("Stock level, now with ETA.", 2)
    assert body["endpoint"] == stock_tool["endpoint"] and body["parameters"] == stock_tool["parameters"]
    again = api.patch("/admin/tools/stock_lookup", {"tags": ["inventory", "eta"]}, format="json")
    assert again.json()["revision"] == 3
    assert Tool.objects.get(pk=stock_tool["id"]).tags == ["inventory", "eta"]


@pytest.mark.parametrize("changes,field", [
    ({"endpoint": {"url": "http://127.0.0.1:9000/steal"}}, "endpoint"),
    ({"endpoint": {"url": "http://169.254.169.254/latest"}}, "endpoint"),
    ({"parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}, "parameters"),
    ({"kind": "python"}, "entrypoint"),  # re-validated as a whole: a python tool needs an entrypoint
    ({"description": "   "}, "description"),
])
def test_patch_is_revalidated_and_a_rejected_patch_changes_nothing(api, stock_tool, changes, field):
    before = Tool.objects.values().get(pk=stock_tool["id"])

    response = api.patch(f"/admin/tools/{stock_tool['id']}", changes, format="json")

    error_of(response, 400, names=field)
    assert Tool.objects.values().get(pk=stock_tool["id"]) == before


def test_deactivate_and_activate(api, stock_tool):
    off = api.post(f"/admin/tools/{stock_tool['id']}/deactivate")
    off_again = api.post("/admin/tools/stock_lookup/deactivate")
    on = api.post(f"/admin/tools/{stock_tool['id']}/activate")

    assert (off.status_code, off.json()["is_active"], off.json()["revision"]) == (200, False, 2)
    assert (off_again.json()["is_active"], off_again.json()["revision"]) == (False, 2)  # no-op
    assert (on.json()["is_active"], on.json()["revision"]) == (True, 3)
    assert Tool.objects.get(pk=stock_tool["id"]).is_active is True
    assert names(api.get("/admin/tools", {"active": "true", "q": "stock_lookup"})) == ["stock_lookup"]


# -- auth ----------------------------------------------------------------------------------------
ADMIN_ROUTES = [
    ("get", "/admin/tools"), ("post", "/admin/tools"), ("get", "/admin/tools/{tool}"),
    ("patch", "/admin/tools/{tool}"), ("post", "/admin/tools/{tool}/activate"),
    ("post", "/admin/tools/{tool}/deactivate"), ("get", "/admin/templates"), ("post", "/admin/templates"),
    ("get", "/admin/templates/{template}"), ("post", "/admin/templates/{template}/versions"),
    ("post", "/admin/templates/{template}/activate"),
]


@pytest.mark.parametrize("method,route", ADMIN_ROUTES)
def test_admin_routes_need_an_admin_key(method, route, chat_key):
    tool = tool_create(name="guarded_tool", description="Guarded")
    template = template_create(name="guarded_agent").template
    path = route.format(tool=tool.pk, template=template.pk)
    body = {"name": "sneaky", "description": "x", "version": 1}

    for key, status, kind in ((None, 401, "authentication_error"), ("sk-not-a-key", 401, "authentication_error"),
                              (chat_key, 403, "permission_error")):
        response = getattr(_client(key), method)(path, body, format="json")
        assert error_of(response, status)["type"] == kind, key
    tool.refresh_from_db()
    assert (tool.revision, tool.is_active, Tool.objects.filter(name="sneaky").exists()) == (1, True, False)
    assert AgentTemplateVersion.objects.filter(template=template).count() == 1


# -- templates -----------------------------------------------------------------------------------
def test_create_template_with_name_only_gets_defaults_and_a_duplicate_is_409(api):
    response = api.post("/admin/templates", {"name": "plain_agent"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "plain_agent" and body["version"] == 1 and isinstance(body["id"], int)
    active = body["active"]
    assert active["agent_kind"] == "sgr_tool_calling"
    assert active["execution_policy"]["max_iterations"] == 10
    assert active["tool_policy"]["max_risk"] == "medium"
    assert "{current_date}" in active["prompt_pack"]["system_prompt"]
    assert [v["version"] for v in body["versions"]] == [1]
    assert template_spec_get(name="plain_agent").version == 1
    again = api.post("/admin/templates", {"name": "plain_agent", "description": "again"}, format="json")
    error_of(again, 409, code="template_exists", names="plain_agent")
    assert AgentTemplateVersion.objects.filter(template__name="plain_agent").count() == 1


INVALID_TEMPLATES = {
    "unknown placeholder": ({"prompt_pack": {"system_prompt": "Hello {user_name}"}}, "user_name"),
    "zero iterations": ({"execution_policy": {"max_iterations": 0}}, "max_iterations"),
    "denied and allowed": ({"tool_policy": {"allowlist": ["web_search_tool"], "denylist": ["web_search_tool"]}},
                           "web_search_tool"),
    "unknown nested field": ({"execution_policy": {"max_iteration": 3}}, "max_iteration"),
    "unknown field": ({"toolpolicy": {"allowlist": ["x"]}}, "toolpolicy"),
    "unknown agent kind": ({"agent_kind": "magic"}, "agent_kind"),
    "key instead of env name": ({"llm_config": {"api_key_env": "sk-live-123"}}, "api_key_env"),
}


@pytest.mark.parametrize("content,reason", INVALID_TEMPLATES.values(), ids=INVALID_TEMPLATES.keys())
def test_invalid_template_is_400_with_the_reason(api, content, reason):
    response = api.post("/admin/templates", {"name": "broken_agent", **content}, format="json")

    error_of(response, 400, names=reason)
    assert not AgentTemplate.objects.filter(name="broken_agent").exists()


def test_list_and_detail(api):
    template_create(name="zz_alpha")
    template_create(name="zz_beta")
    total = AgentTemplate.objects.count()

    listing = api.get("/admin/templates", {"limit": 1, "offset": 0})
    detail = api.get("/admin/templates/zz_beta")

    assert listing.status_code == 200 and listing.json()["count"] == total
    assert len(listing.json()["results"]) == 1
    assert detail.status_code == 200
    assert detail.json()["name"] == "zz_beta" and [v["version"] for v in detail.json()["versions"]] == [1]
    assert api.get(f"/admin/templates/{detail.json()['id']}").json() == detail.json()
    error_of(api.get("/admin/templates/no_such_agent"), 404, code="template_not_found")


@pytest.fixture
def warehouse(api) -> dict:
    response = api.post("/admin/templates", WAREHOUSE, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_template_in_the_spec_shape(warehouse):
    active = warehouse["active"]
    for field in ("agent_kind", "rules", "tags", "description"):
        assert active[field] == WAREHOUSE[field]
    for field in ("prompt_pack", "llm_config", "execution_policy", "tool_policy"):
        assert WAREHOUSE[field].items() <= active[field].items(), field
    spec = template_spec_get(name="warehouse_agent")
    assert (spec.version, spec.content.execution_policy.max_iterations) == (1, 7)
    assert spec.content.tool_policy.allowlist == ["stock_lookup"]


def test_new_version_is_copy_on_write_and_inactive_until_activated(api, warehouse):
    tid = warehouse["id"]

    response = api.post(f"/admin/templates/{tid}/versions", {
        "execution_policy": {"max_searches": 1}, "prompt_pack": {"system_prompt": "Version two."},
        "note": "fewer searches"}, format="json")

    assert response.status_code == 201, response.content
    v2 = response.json()
    assert (v2["version"], v2["is_active"], v2["note"]) == (2, False, "fewer searches")
    assert v2["execution_policy"] == {**warehouse["active"]["execution_policy"], "max_searches": 1}
    assert v2["execution_policy"]["max_iterations"] == 7  # nested policy merged, not replaced
    assert v2["prompt_pack"]["system_prompt"] == "Version two."
    for field in ("llm_config", "tool_policy", "tags", "description", "agent_kind"):
        assert v2[field] == warehouse["active"][field], field
    assert api.get(f"/admin/templates/{tid}").json()["version"] == 1
    assert template_spec_get(name="warehouse_agent").version == 1

    activated = api.post(f"/admin/templates/{tid}/activate", {"version": 2}, format="json")

    assert activated.status_code == 200, activated.content
    assert activated.json()["version"] == 2
    assert [(v["version"], v["is_active"]) for v in activated.json()["versions"]] == [(1, False), (2, True)]
    spec = template_spec_get(name="warehouse_agent")
    assert (spec.version, spec.content.prompt_pack.system_prompt) == (2, "Version two.")
    back = api.post("/admin/templates/warehouse_agent/activate", {"version": 1}, format="json")
    assert back.json()["version"] == 1
    # the template's whole shape posted back, its own name included
    v3 = api.post(f"/admin/templates/{tid}/versions", {"name": "warehouse_agent", "tags": ["v3"], "activate": True},
                  format="json")
    assert (v3.status_code, v3.json()["version"], v3.json()["is_active"]) == (201, 3, True)
    assert template_spec_get(name="warehouse_agent").content.tags == ["v3"]


@pytest.mark.parametrize("changes,reason", [
    ({"execution_policy": {"max_iterations": 0}}, "max_iterations"),
    ({"tool_policy": {"denylist": ["stock_lookup"]}}, "stock_lookup"),  # clashes with the kept allowlist
    ({"bogus": 1}, "bogus"),
    ({"name": "another_agent", "tags": ["x"]}, "name"),  # a version cannot rename its template
])
def test_invalid_new_version_is_400_and_creates_nothing(api, warehouse, changes, reason):
    response = api.post(f"/admin/templates/{warehouse['id']}/versions", changes, format="json")

    error_of(response, 400, names=reason)
    assert AgentTemplateVersion.objects.filter(template_id=warehouse["id"]).count() == 1


def test_activating_an_unknown_version_is_404(api, warehouse):
    response = api.post(f"/admin/templates/{warehouse['id']}/activate", {"version": 9}, format="json")

    error_of(response, 404, code="template_version_not_found")
    assert AgentTemplate.objects.get(pk=warehouse["id"]).active_version.version == 1
    error_of(api.post(f"/admin/templates/{warehouse['id']}/activate", {"version": 0}, format="json"), 400,
             names="version")
    error_of(api.post("/admin/templates/no_such_agent/activate", {"version": 1}, format="json"), 404)


def test_the_database_refuses_edits_of_a_version(warehouse):
    version = AgentTemplateVersion.objects.get(template_id=warehouse["id"], version=1)

    with pytest.raises((IntegrityError, InternalError), match="immutable"), transaction.atomic():
        AgentTemplateVersion.objects.filter(pk=version.pk).update(description="edited in place")
    version.prompt_pack = {"system_prompt": "sneaky"}
    with pytest.raises((IntegrityError, InternalError), match="immutable"), transaction.atomic():
        version.save()

    version.refresh_from_db()
    assert version.description == WAREHOUSE["description"]
    assert version.prompt_pack["system_prompt"] == WAREHOUSE["prompt_pack"]["system_prompt"]
    # only the directory embedding may be refreshed
    AgentTemplateVersion.objects.filter(pk=version.pk).update(embedding=[0.1] * 384, embedding_model="test-model")


def test_openapi_schema_lists_the_admin_routes():
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200, response.content
    paths = response.json()["paths"]
    for path in ("/admin/tools", "/admin/tools/{ref}", "/admin/tools/{ref}/activate",
                 "/admin/tools/{ref}/deactivate", "/admin/templates", "/admin/templates/{ref}",
                 "/admin/templates/{ref}/versions", "/admin/templates/{ref}/activate"):
        assert path in paths, path
    assert {"get", "post"} <= set(paths["/admin/tools"]) and "patch" in paths["/admin/tools/{ref}"]
    # the consumer routes and /v1/models, which no DRF view describes, are there too (tag "chat")
    for path, method in (("/v1/chat/completions", "post"), ("/agents/{session_id}/provide_clarification", "post"),
                         ("/agents/{session_id}/cancel", "post"), ("/v1/models", "get")):
        assert paths[path][method]["tags"] == ["chat"], path
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["required"] == ["model", "messages"]
    assert {"application/json", "text/event-stream"} == set(chat["responses"]["200"]["content"])
