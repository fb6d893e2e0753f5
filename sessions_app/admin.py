"""Django admin for sessions, their history and agent instances: a monitoring view.

All of this is written by the runtime through ``sessions_app`` services (state
transitions are validated there), so the admin only reads: no add, no change.
Delete stays allowed so old sessions can be cleaned up (their history cascades).
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.utils.text import Truncator

from catalog.admin import pretty_json
from sessions_app.models import (
    AgentInstance,
    Artifact,
    Session,
    SessionMessage,
    Source,
    ToolExecution,
)


class ReadOnlyAdminMixin:
    """No add and no change: the change page renders as a view page."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _short(text: str, length: int = 120) -> str:
    return Truncator(text or "").chars(length)


class MessageInline(ReadOnlyInline):
    model = SessionMessage
    fields = ["seq", "role", "message_pretty", "created_at"]
    readonly_fields = fields
    ordering = ["seq"]

    @admin.display(description="message")
    def message_pretty(self, obj: SessionMessage):
        return pretty_json(obj.message)


class ToolExecutionInline(ReadOnlyInline):
    model = ToolExecution
    fields = ["iteration", "tool_name", "status", "duration_ms", "arguments_pretty", "result_short", "error"]
    readonly_fields = fields
    ordering = ["id"]

    @admin.display(description="arguments")
    def arguments_pretty(self, obj: ToolExecution):
        return pretty_json(obj.arguments)

    @admin.display(description="result")
    def result_short(self, obj: ToolExecution) -> str:
        return _short(obj.result, 500)


class SourceInline(ReadOnlyInline):
    model = Source
    fields = ["number", "url", "title"]
    readonly_fields = fields
    ordering = ["number"]


class ArtifactInline(ReadOnlyInline):
    model = Artifact
    fields = ["name", "kind", "content_type", "created_at"]
    readonly_fields = fields


@admin.register(Session)
class SessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id", "template_name", "version_number", "state", "iteration", "searches_used",
        "tool_calls", "depth", "created_at", "finished_at",
    ]
    list_filter = ["state", "template_version__template", "depth", "created_at"]
    list_select_related = ["template_version__template"]
    search_fields = ["=id", "task", "template_version__template__name"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["id", "template_version", "instance", "parent", "depth", "api_key", "state", "stage"]}),
        ("Task and result", {"fields": ["task", "execution_result", "error", "current_reasoning", "routing_pretty"]}),
        ("Counters", {"fields": [
            "iteration", "searches_used", "clarifications_used", "tool_calls", "prompt_tokens", "completion_tokens",
        ]}),
        ("Context snapshot", {"classes": ["collapse"], "fields": ["context_pretty"]}),
        ("Times", {"fields": ["created_at", "updated_at", "finished_at"]}),
    ]
    inlines = [MessageInline, ToolExecutionInline, SourceInline, ArtifactInline]

    @admin.display(description="template", ordering="template_version__template__name")
    def template_name(self, obj: Session) -> str:
        return obj.template_version.template.name

    @admin.display(description="version", ordering="template_version__version")
    def version_number(self, obj: Session) -> int:
        return obj.template_version.version

    @admin.display(description="current reasoning")
    def current_reasoning(self, obj: Session):
        return pretty_json(obj.current_step_reasoning)

    @admin.display(description="routing")
    def routing_pretty(self, obj: Session):
        return pretty_json(obj.routing)

    @admin.display(description="context")
    def context_pretty(self, obj: Session):
        return pretty_json(obj.context)


@admin.register(AgentInstance)
class AgentInstanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "short_id", "template_version", "status", "sessions_served", "current_session",
        "host", "pid", "memory_rss_bytes", "heartbeat_at", "started_at", "stopped_at",
    ]
    list_filter = ["status", "template_version__template", "host"]
    list_select_related = ["template_version__template", "current_session"]
    search_fields = ["=id", "host", "template_version__template__name"]

    @admin.display(description="instance", ordering="id")
    def short_id(self, obj: AgentInstance) -> str:
        return str(obj.id)[:8]


class SessionChildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_select_related = ["session"]
    raw_id_fields = ["session"]


@admin.register(SessionMessage)
class SessionMessageAdmin(SessionChildAdmin):
    list_display = ["session", "seq", "role", "preview", "created_at"]
    list_filter = ["role", "created_at"]
    search_fields = ["=session__id"]
    fields = ["session", "seq", "role", "message_pretty", "created_at"]
    readonly_fields = fields

    @admin.display(description="content")
    def preview(self, obj: SessionMessage) -> str:
        content = obj.message.get("content") if isinstance(obj.message, dict) else None
        return _short(content if isinstance(content, str) else str(obj.message), 100)

    @admin.display(description="message")
    def message_pretty(self, obj: SessionMessage):
        return pretty_json(obj.message)


@admin.register(ToolExecution)
class ToolExecutionAdmin(SessionChildAdmin):
    list_display = ["tool_name", "status", "duration_ms", "iteration", "session", "created_at"]
    list_filter = ["status", "tool_name", "created_at"]
    search_fields = ["tool_name", "tool_call_id", "error", "=session__id"]
    fields = [
        "session", "tool", "tool_name", "tool_call_id", "iteration", "status", "duration_ms",
        "arguments_pretty", "result", "error", "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="arguments")
    def arguments_pretty(self, obj: ToolExecution):
        return pretty_json(obj.arguments)


@admin.register(Source)
class SourceAdmin(SessionChildAdmin):
    list_display = ["number", "title", "url", "session", "created_at"]
    search_fields = ["url", "title", "=session__id"]
    list_filter = ["created_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # Django 6 default, no warning


@admin.register(Artifact)
class ArtifactAdmin(SessionChildAdmin):
    list_display = ["name", "kind", "content_type", "session", "created_at"]
    list_filter = ["kind", "content_type", "created_at"]
    search_fields = ["name", "content", "=session__id"]
    fields = ["session", "name", "kind", "content_type", "content", "metadata_pretty", "created_at"]
    readonly_fields = fields

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: Artifact):
        return pretty_json(obj.metadata)
