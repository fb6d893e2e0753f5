"""API keys: only a SHA-256 digest of each key is stored."""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class ApiKeyScope(models.TextChoices):
    CHAT = "chat", "Chat (/v1, /agents)"
    ADMIN = "admin", "Admin (/admin API)"


class ApiKey(models.Model):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, for recognising it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=16, choices=ApiKeyScope.choices), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_keys"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scopes__contained_by=[c.value for c in ApiKeyScope]),
                name="api_keys_scopes_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_admin(self) -> bool:
        return ApiKeyScope.ADMIN in self.scopes

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class RateBucket(models.Model):
    """A token bucket shared by every server process (per API key, per tool, ...)."""

    key = models.CharField(max_length=200, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "rate_buckets"

    def __str__(self) -> str:
        return f"{self.key}: {self.tokens:.1f}"
