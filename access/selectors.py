"""Reads for API keys; also the one check used by DRF and the Channels consumer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from access.models import ApiKey, ApiKeyScope
from access.services import api_key_digest
from platform_site.errors import AuthenticationRequired, PermissionDenied
from platform_site.sql import fetch

_TOUCH_EVERY = timedelta(minutes=1)
KEY_SQL = "SELECT id, name, scopes, last_used_at FROM api_keys WHERE key_hash = %(hash)s AND revoked_at IS NULL"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's id, name and scopes."""

    key_id: int
    name: str
    scopes: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return ApiKeyScope.ADMIN in self.scopes


def parse_bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_from_header(header: str | None, *, require_admin: bool = False) -> Principal:
    """Authenticate an ``Authorization`` header value; raise 401/403 platform errors."""
    rows = fetch(KEY_SQL, {"hash": api_key_digest(bearer_required(header))})  # on every request: prepared
    principal = principal_of(rows)
    if require_admin and not principal.is_admin:
        raise PermissionDenied("This route needs an API key with the admin scope")
    return principal


def bearer_required(header: str | None) -> str:
    """The raw key of a bearer header (401 without one)."""
    raw = parse_bearer(header)
    if raw is None:
        raise AuthenticationRequired()
    return raw


def principal_of(rows: list[tuple]) -> Principal:
    """The principal of a key row ``(id, name, scopes, last_used_at, ...)`` found by its hash (401
    when none); the key's ``last_used_at`` is touched at most once a minute."""
    if not rows:
        raise AuthenticationRequired("Invalid or revoked API key")
    key_id, name, scopes, last_used_at = rows[0][:4]
    now = timezone.now()
    if last_used_at is None or now - last_used_at > _TOUCH_EVERY:
        ApiKey.objects.filter(pk=key_id).update(last_used_at=now)
    return Principal(key_id=key_id, name=name, scopes=tuple(scopes))
