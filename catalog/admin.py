"""Django admin for the tool catalog.

Writes go through ``catalog.services`` so every admin edit bumps the tool's
revision like an API edit does. The JSON helpers at the top are shared by the
other apps' admin modules.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils.html import format_html

from catalog.models import Tool
from catalog.errors import ToolInvalid
from catalog.schemas import tool_definition_check
from catalog.services import DEFINITION_FIELDS, tool_create, tool_set_active, tool_update

# --- shared admin helpers -------------------------------------------------------------------


class PrettyJSONFormField(forms.JSONField):
    """A JSON form field shown indented; invalid JSON is a form error (Django's own check)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, cls=self.encoder)


JSON_FORMFIELD_OVERRIDES = {
    models.JSONField: {
        "form_class": PrettyJSONFormField,
        "widget": forms.Textarea(attrs={"rows": 12, "cols": 90, "style": "font-family: monospace"}),
    }
}


def pretty_json(value: Any) -> str:
    """Read-only HTML rendering of a JSON value."""
    if value is None:
        return "-"
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def embedding_info(obj: Any) -> str:
    """Whether a row has an embedding, and which model made it (vectors are never edited)."""
    if obj is None or obj.embedding is None:
        return "no embedding"
    return f"yes ({obj.embedding_model or 'unknown model'})"


# --- tools ------------------------------------------------------------------------------------


class ToolAdminForm(forms.ModelForm):
    class Meta:
        model = Tool
        exclude = ["embedding", "embedding_model", "revision"]

    def clean(self) -> dict:
        """The same whole-definition check the services run, shown as form errors."""
        data = super().clean()
        definition = {f: data.get(f, getattr(self.instance, f)) for f in DEFINITION_FIELDS}
        definition["endpoint"] = definition.get("endpoint") or {}
        definition["tags"] = list(definition.get("tags") or [])
        try:
            checked = tool_definition_check(
                definition,
                entrypoint_allowlist=settings.TOOL_ENTRYPOINT_ALLOWLIST,
                allow_private=settings.HTTP_TOOL_ALLOW_PRIVATE,
            )
        except ToolInvalid as exc:
            for field, message in exc.details.get("fields", {}).items():
                self.add_error(field if field in self.fields else None, message)
            return data
        data.update({f: checked[f] for f in ("parameters", "endpoint") if f in data})
        return data


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    form = ToolAdminForm
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    list_display = ["name", "kind", "risk", "is_active", "is_system", "revision", "has_embedding", "updated_at"]
    list_filter = ["is_active", "kind", "risk", "is_system"]
    search_fields = ["name", "description", "entrypoint", "target_template"]
    readonly_fields = ["revision", "embedding_status", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "kind", "risk", "tags", "is_active", "is_system"]}),
        ("Implementation", {"fields": ["entrypoint", "endpoint", "target_template"]}),
        ("Arguments (JSON Schema)", {"fields": ["parameters"]}),
        ("Bookkeeping", {"fields": ["revision", "embedding_status", "created_at", "updated_at"]}),
    ]
    actions = ["activate_tools", "deactivate_tools"]

    @admin.display(boolean=True, description="embedding", ordering="_has_embedding")
    def has_embedding(self, obj: Tool) -> bool:
        return obj._has_embedding

    @admin.display(description="embedding")
    def embedding_status(self, obj: Tool | None) -> str:
        return embedding_info(obj)

    def get_queryset(self, request):
        # Vectors are large: the list only needs to know whether one exists.
        has_embedding = ExpressionWrapper(Q(embedding__isnull=False), output_field=BooleanField())
        return super().get_queryset(request).defer("embedding").annotate(_has_embedding=has_embedding)

    def save_model(self, request, obj: Tool, form, change: bool) -> None:
        editable = [name for name in form.cleaned_data if name in form.fields]
        if change:
            changed = [name for name in form.changed_data if name in editable]
            if changed:
                tool_update(tool=obj, **{name: form.cleaned_data[name] for name in changed})
            return
        created = tool_create(**{name: form.cleaned_data[name] for name in editable})
        obj.pk = created.pk
        obj.refresh_from_db()

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = 0
        for tool in queryset:
            before = tool.revision
            tool_set_active(tool=tool, active=active)
            changed += tool.revision != before
        verb = "Activated" if active else "Deactivated"
        self.message_user(request, f"{verb} {changed} tool(s).", messages.SUCCESS)

    @admin.action(description="Activate selected tools", permissions=["change"])
    def activate_tools(self, request, queryset) -> None:
        self._set_active(request, queryset, active=True)

    @admin.action(description="Deactivate selected tools", permissions=["change"])
    def deactivate_tools(self, request, queryset) -> None:
        self._set_active(request, queryset, active=False)
