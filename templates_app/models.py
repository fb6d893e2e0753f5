"""Agent templates and their immutable versions.

A template points at its active version (so there is at most one); a version's
content never changes after it is written — a database trigger refuses updates
of content columns (see migration 0002), only the embedding may be refreshed.
"""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from pgvector.django import HnswIndex, VectorField

from catalog.models import EMBEDDING_DIMENSIONS

TEMPLATE_NAME_PATTERN = r"^[a-zA-Z0-9_.-]{1,100}$"


class AgentKind(models.TextChoices):
    TOOL_CALLING = "tool_calling", "Tool calling"
    SGR_TOOL_CALLING = "sgr_tool_calling", "SGR + tool calling"
    SGR = "sgr", "SGR (structured output)"


class AgentTemplate(models.Model):
    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(TEMPLATE_NAME_PATTERN, "Template names are 1-100 letters, digits, '_', '.' or '-'.")],
    )
    active_version = models.OneToOneField(
        "AgentTemplateVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive templates are not served.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "agent_templates"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(name__regex=TEMPLATE_NAME_PATTERN), name="agent_templates_name_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AgentTemplateVersion(models.Model):
    template = models.ForeignKey(AgentTemplate, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    agent_kind = models.CharField(max_length=32, choices=AgentKind.choices, default=AgentKind.SGR_TOOL_CALLING)
    prompt_pack = models.JSONField(default=dict, blank=True)
    llm_config = models.JSONField(default=dict, blank=True)
    execution_policy = models.JSONField(default=dict, blank=True)
    tool_policy = models.JSONField(default=dict, blank=True)
    rules = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    examples = models.JSONField(default=list, blank=True, help_text="Example requests (agent directory).")
    note = models.CharField(max_length=255, blank=True, help_text="What changed in this version.")
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agent_template_versions"
        ordering = ["template_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="template_version_unique"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="template_version_positive"),
            models.CheckConstraint(
                condition=models.Q(agent_kind__in=AgentKind.values), name="template_version_kind_valid"
            ),
        ]
        indexes = [
            HnswIndex(
                name="template_versions_emb_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.version}"


class AgentTemplateTool(models.Model):
    """A catalog tool named by a template version's tool policy (required or allowed): derived
    from ``tool_policy`` when the version is written (``templates_app.services``), never edited."""

    class Role(models.TextChoices):
        REQUIRED = "required", "Required (always offered)"
        ALLOWED = "allowed", "Allowed"

    version = models.ForeignKey(AgentTemplateVersion, on_delete=models.CASCADE, related_name="tool_links")
    tool = models.ForeignKey("catalog.Tool", on_delete=models.CASCADE, related_name="template_links")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ALLOWED)

    class Meta:
        db_table = "agent_template_tools"
        constraints = [
            models.UniqueConstraint(fields=["version", "tool"], name="template_tool_unique"),
            models.CheckConstraint(condition=models.Q(role__in=["required", "allowed"]), name="template_tool_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.version} → {self.tool.name} ({self.role})"
