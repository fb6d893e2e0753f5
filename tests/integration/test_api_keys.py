"""API keys: the management command, the header check and the DRF authentication/permission."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from access.authentication import ApiKeyAuthentication
from access.models import ApiKey
from access.permissions import IsAdminKey, IsApiKey
from access.selectors import Principal, principal_from_header
from access.services import api_key_create, api_key_revoke
from platform_site.errors import AuthenticationRequired, PermissionDenied

pytestmark = pytest.mark.django_db


def run_create_api_key(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- manage.py create_api_key -----------------------------------------------------------------


@pytest.mark.parametrize("admin", [False, True])
def test_create_api_key_prints_key_last_and_stores_only_its_hash(admin):
    out, _ = run_create_api_key("--name", "ci", *(["--admin"] if admin else []))
    raw = out.strip().splitlines()[-1].strip()
    assert raw.startswith("ap-") and len(raw) > 30

    key = ApiKey.objects.get(name="ci")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.is_admin is admin
    assert "chat" in key.scopes
    stored = [str(value) for value in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert raw not in stored
    assert raw.startswith(key.prefix) and len(key.prefix) < len(raw) // 2

    principal = principal_from_header(f"Bearer {raw}")
    assert principal.key_id == key.pk and principal.is_admin is admin


def test_create_api_key_needs_a_name():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        run_create_api_key()


def test_each_key_is_different():
    first, _ = run_create_api_key("--name", "a")
    second, _ = run_create_api_key("--name", "b")
    assert first.strip().splitlines()[-1] != second.strip().splitlines()[-1]


# --- principal_from_header --------------------------------------------------------------------


def test_valid_key_gives_a_principal(chat_key):
    principal = principal_from_header(f"Bearer {chat_key}")
    assert isinstance(principal, Principal)
    assert principal.name == "chat-test" and not principal.is_admin
    assert ApiKey.objects.get(pk=principal.key_id).last_used_at is not None
    # The scheme is case-insensitive and surrounding spaces are ignored.
    assert principal_from_header(f"  bearer   {chat_key} ") == principal


def test_admin_key_passes_require_admin(admin_key):
    assert principal_from_header(f"Bearer {admin_key}", require_admin=True).is_admin


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "ap-no-scheme"])
def test_missing_or_malformed_header_is_refused(header):
    with pytest.raises(AuthenticationRequired):
        principal_from_header(header)


def test_unknown_key_is_refused():
    with pytest.raises(AuthenticationRequired):
        principal_from_header("Bearer ap-not-a-real-key")


def test_revoked_key_is_refused():
    issued = api_key_create(name="to-revoke")
    api_key_revoke(key=issued.key)
    with pytest.raises(AuthenticationRequired):
        principal_from_header(f"Bearer {issued.raw}")


def test_chat_key_is_not_admin(chat_key):
    with pytest.raises(PermissionDenied):
        principal_from_header(f"Bearer {chat_key}", require_admin=True)


# --- DRF authentication and permissions -------------------------------------------------------


class AdminOnlyView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAdminKey]

    def get(self, request):
        return Response({"key": request.auth.name, "admin": request.auth.is_admin})


class AnyKeyView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsApiKey]

    def get(self, request):
        return Response({"key": request.auth.name})


def call(view, key: str | None = None, *, header: str | None = None):
    factory = APIRequestFactory()
    extra = {}
    if header is not None:
        extra["HTTP_AUTHORIZATION"] = header
    elif key is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    response = view.as_view()(factory.get("/throwaway", **extra))
    response.render()
    return response


def assert_openai_error(response, status: int, type_: str) -> dict:
    assert response.status_code == status
    body = response.data
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])
    assert body["error"]["type"] == type_
    assert body["error"]["message"]
    return body["error"]


def test_drf_admin_key_is_let_in(admin_key):
    response = call(AdminOnlyView, admin_key)
    assert response.status_code == 200
    assert response.data == {"key": "admin-test", "admin": True}


def test_drf_missing_key_is_401():
    response = call(AdminOnlyView)
    assert_openai_error(response, 401, "authentication_error")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_drf_malformed_header_is_401():
    assert_openai_error(call(AdminOnlyView, header="Basic Zm9vOmJhcg=="), 401, "authentication_error")


def test_drf_unknown_key_is_401():
    assert_openai_error(call(AdminOnlyView, "ap-not-a-real-key"), 401, "authentication_error")


def test_drf_revoked_key_is_401():
    issued = api_key_create(name="revoked", admin=True)
    api_key_revoke(key=issued.key)
    error = assert_openai_error(call(AdminOnlyView, issued.raw), 401, "authentication_error")
    assert "revoked" in error["message"].lower()


def test_drf_chat_key_on_admin_view_is_403(chat_key):
    error = assert_openai_error(call(AdminOnlyView, chat_key), 403, "permission_error")
    assert "admin" in error["message"]


def test_drf_chat_key_on_any_key_view_is_200(chat_key):
    response = call(AnyKeyView, chat_key)
    assert response.status_code == 200 and response.data == {"key": "chat-test"}
