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
_KEY_SQL = "SELECT id, name, scopes, last_used_at FROM api_keys WHERE key_hash = %(hash)s AND revoked_at IS NULL"


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
    raw = parse_bearer(header)
    if raw is None:
        raise AuthenticationRequired()
    rows = fetch(_KEY_SQL, {"hash": api_key_digest(raw)})  # on every request: a prepared statement
    if not rows:
        raise AuthenticationRequired("Invalid or revoked API key")
    key_id, name, scopes, last_used_at = rows[0]
    now = timezone.now()
    if last_used_at is None or now - last_used_at > _TOUCH_EVERY:
        ApiKey.objects.filter(pk=key_id).update(last_used_at=now)
    principal = Principal(key_id=key_id, name=name, scopes=tuple(scopes))
    if require_admin and not principal.is_admin:
        raise PermissionDenied("This route needs an API key with the admin scope")
    return principal
