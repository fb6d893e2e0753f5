"""Writes for API keys."""

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from access.models import ApiKey, ApiKeyScope

KEY_PREFIX = "ap-"


def api_key_digest(raw_key: str) -> str:
    """SHA-256 of the key. Keys are 256 random bits, so a fast digest is enough."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    raw: str


@transaction.atomic
def api_key_create(*, name: str, admin: bool = False) -> IssuedKey:
    """Create a key; the raw key is returned once and never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    scopes = [ApiKeyScope.CHAT.value] + ([ApiKeyScope.ADMIN.value] if admin else [])
    key = ApiKey(name=name, prefix=raw[:10], key_hash=api_key_digest(raw), scopes=scopes)
    key.full_clean()
    key.save()
    return IssuedKey(key=key, raw=raw)


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
