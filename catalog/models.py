"""The tool catalog: every tool an agent may be offered is a row here."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import RegexValidator
from django.db import models
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class ToolKind(models.TextChoices):
    PYTHON = "python", "Python class (entrypoint)"
    HTTP = "http", "HTTP endpoint"
    AGENT = "agent", "Another agent template"
    DECLARED = "declared", "Declared only (no implementation)"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class Tool(models.Model):
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(TOOL_NAME_PATTERN, "Tool names are 1-64 letters, digits, '_' or '-'.")],
    )
    description = models.TextField()
    kind = models.CharField(max_length=16, choices=ToolKind.choices, default=ToolKind.DECLARED)
    entrypoint = models.CharField(
        max_length=255, blank=True, help_text="python kind: import string package.module:ClassName"
    )
    endpoint = models.JSONField(
        default=dict, blank=True, help_text='http kind: {"url", "timeout_s", "headers_from_env", ...}'
    )
    target_template = models.CharField(
        max_length=100, blank=True, help_text="agent kind: name of the template to delegate to"
    )
    parameters = models.JSONField(default=dict, blank=True, help_text="JSON Schema of the arguments (an object)")
    risk = models.CharField(max_length=8, choices=RiskLevel.choices, default=RiskLevel.LOW)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    is_active = models.BooleanField(default=True)
    is_system = models.BooleanField(default=False)
    revision = models.PositiveIntegerField(default=1, help_text="Bumped on every change (hot-load).")
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "tools"
        ordering = ["name"]
        indexes = [
            GinIndex(fields=["tags"], name="tools_tags_gin"),
            models.Index(fields=["is_active", "kind"], name="tools_active_kind"),
            models.Index(fields=["updated_at"], name="tools_updated_at"),
            HnswIndex(
                name="tools_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(name__regex=TOOL_NAME_PATTERN), name="tools_name_valid"),
            models.CheckConstraint(condition=models.Q(kind__in=ToolKind.values), name="tools_kind_valid"),
            models.CheckConstraint(condition=models.Q(risk__in=RiskLevel.values), name="tools_risk_valid"),
            models.CheckConstraint(
                condition=~models.Q(kind=ToolKind.PYTHON) | ~models.Q(entrypoint=""),
                name="tools_python_has_entrypoint",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=ToolKind.HTTP) | models.Q(endpoint__has_key="url"),
                name="tools_http_has_url",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=ToolKind.AGENT) | ~models.Q(target_template=""),
                name="tools_agent_has_target",
            ),
            models.CheckConstraint(
                condition=models.Q(embedding__isnull=True) | ~models.Q(embedding_model=""),
                name="tools_embedding_has_model",
            ),
        ]

    def __str__(self) -> str:
        return self.name
