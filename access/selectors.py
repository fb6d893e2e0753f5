"""Reads for API keys; also the one check used by DRF and the Channels consumer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from access.models import ApiKey, ApiKeyScope
from access.services import api_key_digest
from platform_site.errors import AuthenticationRequired, PermissionDenied

_TOUCH_EVERY = timedelta(minutes=1)


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
    key = ApiKey.objects.filter(key_hash=api_key_digest(raw), revoked_at__isnull=True).first()
    if key is None:
        raise AuthenticationRequired("Invalid or revoked API key")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    principal = Principal(key_id=key.pk, name=key.name, scopes=tuple(key.scopes))
    if require_admin and not principal.is_admin:
        raise PermissionDenied("This route needs an API key with the admin scope")
    return principal
