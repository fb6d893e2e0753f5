"""Sessions, their history (messages, tool executions, sources, artifacts) and agent instances.

A session's whole state lives here, so any server process can continue it.
Statuses are data: ``SessionState``/``InstanceStatus`` with the allowed
transitions in ``sessions_app.states``; only the transition services change them.
"""

import uuid

from django.db import models


class SessionState(models.TextChoices):
    INITED = "inited", "Inited"
    RESEARCHING = "researching", "Researching"
    WAITING_FOR_CLARIFICATION = "waiting_for_clarification", "Waiting for clarification"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class InstanceStatus(models.TextChoices):
    IDLE = "idle", "Idle"
    BUSY = "busy", "Busy"
    RESETTING = "resetting", "Resetting"
    STOPPED = "stopped", "Stopped"


class AgentInstance(models.Model):
    """A worker pinned to one template version that serves sessions one at a time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template_version = models.ForeignKey(
        "templates_app.AgentTemplateVersion", on_delete=models.PROTECT, related_name="instances"
    )
    status = models.CharField(max_length=16, choices=InstanceStatus.choices, default=InstanceStatus.IDLE)
    current_session = models.ForeignKey(
        "Session", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sessions_served = models.PositiveIntegerField(default=0)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    memory_rss_bytes = models.PositiveBigIntegerField(default=0)
    heartbeat_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_instances"
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "template_version"], name="instances_status_version")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=InstanceStatus.values), name="agent_instances_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=InstanceStatus.BUSY) | models.Q(current_session__isnull=False),
                name="agent_instances_busy_has_session",
            ),
        ]

    def __str__(self) -> str:
        return f"instance {str(self.id)[:8]} ({self.status})"


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template_version = models.ForeignKey(
        "templates_app.AgentTemplateVersion", on_delete=models.PROTECT, related_name="sessions"
    )
    instance = models.ForeignKey(
        AgentInstance, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    depth = models.PositiveSmallIntegerField(default=0, help_text="Delegation depth (0 = top level).")
    api_key = models.ForeignKey("access.ApiKey", on_delete=models.SET_NULL, null=True, blank=True)
    state = models.CharField(max_length=32, choices=SessionState.choices, default=SessionState.INITED)
    stage = models.CharField(max_length=64, blank=True)
    task = models.TextField(blank=True)
    iteration = models.PositiveIntegerField(default=0)
    searches_used = models.PositiveIntegerField(default=0)
    clarifications_used = models.PositiveIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    context = models.JSONField(default=dict, blank=True, help_text="Snapshot: plan, tool counts, …")
    current_step_reasoning = models.JSONField(null=True, blank=True)
    execution_result = models.TextField(blank=True)
    error = models.TextField(blank=True)
    routing = models.JSONField(null=True, blank=True, help_text="Router choice and score.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sessions"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "-created_at"], name="sessions_state_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=SessionState.values), name="sessions_state_valid"),
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True, depth=0) | models.Q(parent__isnull=False, depth__gte=1),
                name="sessions_depth_matches_parent",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.id} ({self.state})"


class MessageRole(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    TOOL = "tool", "Tool"


class SessionMessage(models.Model):
    """One message of the conversation, exactly in OpenAI chat format."""

    # no index of its own: the unique (session, seq) index serves lookups by session
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages", db_index=False)
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    message = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "session_messages"
        ordering = ["session_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="session_message_seq_unique"),
            models.CheckConstraint(condition=models.Q(role__in=MessageRole.values), name="session_message_role_valid"),
            models.CheckConstraint(condition=models.Q(message__has_key="role"), name="session_message_has_role"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.role}"


class ToolExecutionStatus(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"


class ToolExecution(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tool_executions")
    tool = models.ForeignKey("catalog.Tool", on_delete=models.SET_NULL, null=True, blank=True)
    tool_name = models.CharField(max_length=64)
    tool_call_id = models.CharField(max_length=100, blank=True)
    iteration = models.PositiveIntegerField(default=0)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=ToolExecutionStatus.choices)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "tool_executions"
        ordering = ["session_id", "id"]
        indexes = [models.Index(fields=["tool_name", "status"], name="tool_exec_name_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ToolExecutionStatus.values), name="tool_executions_status_valid"
            ),
            models.CheckConstraint(condition=models.Q(duration_ms__gte=0), name="tool_executions_duration_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"


class Source(models.Model):
    """A web source found during a session (cited as [number] in answers)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="sources")
    number = models.PositiveIntegerField()
    url = models.URLField(max_length=2000)
    title = models.CharField(max_length=500, blank=True)
    snippet = models.TextField(blank=True)
    full_content = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "sources"
        ordering = ["session_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["session", "url"], name="source_session_url_unique"),
            models.UniqueConstraint(fields=["session", "number"], name="source_session_number_unique"),
        ]

    def __str__(self) -> str:
        return f"[{self.number}] {self.title or self.url}"


class Artifact(models.Model):
    """A document produced by a session (e.g. a report), stored instead of a loose file."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=32, default="report")
    content_type = models.CharField(max_length=100, default="text/markdown")
    content = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "artifacts"
        ordering = ["session_id", "id"]

    def __str__(self) -> str:
        return self.name
