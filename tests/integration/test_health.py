"""Public project endpoints: health check and OpenAPI schema."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_health_reports_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"


def test_health_is_get_only(client):
    assert client.post("/health").status_code == 405


def test_openapi_schema_is_public(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content


def test_swagger_ui_serves_the_schema(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200 and response["content-type"].startswith("text/html")
    assert b"swagger-ui" in response.content and b"/api/schema/" in response.content
