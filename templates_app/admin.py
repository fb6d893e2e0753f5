"""Django admin for agent templates and their immutable versions.

A version cannot be edited once written (the database refuses it), so its change
page is a view page; new content means a new version (the add page). Which
version is active is changed only by the "activate" action, which goes through
``templates_app.services.template_version_activate``.
"""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from catalog.admin import JSON_FORMFIELD_OVERRIDES, embedding_info, pretty_json
from platform_site.errors import PlatformError
from templates_app.models import AgentTemplate, AgentTemplateTool, AgentTemplateVersion
from templates_app.services import template_content_validate, template_version_activate, template_version_create

VERSION_CONTENT_FIELDS = [
    "template",
    "agent_kind",
    "description",
    "note",
    "tags",
    "prompt_pack",
    "llm_config",
    "execution_policy",
    "tool_policy",
    "rules",
    "examples",
]


CONTENT_JSON_FIELDS = ["prompt_pack", "llm_config", "execution_policy", "tool_policy", "rules", "examples"]


class VersionAddForm(forms.ModelForm):
    """Validates the content like the template services do; saved through ``template_version_create``."""

    class Meta:
        model = AgentTemplateVersion
        fields = VERSION_CONTENT_FIELDS

    def clean(self):
        cleaned = super().clean()
        content_fields = [f for f in VERSION_CONTENT_FIELDS if f not in ("template", "note")]
        if any(name in self.errors for name in content_fields):
            return cleaned
        data = {name: cleaned[name] for name in content_fields if cleaned.get(name) not in (None, "")}
        try:
            content = template_content_validate(data)
        except PlatformError as exc:
            raise forms.ValidationError(exc.message) from exc
        for name, value in content.model_dump(mode="json").items():
            if name in content_fields:
                cleaned[name] = value
        return cleaned


class VersionInline(admin.TabularInline):
    model = AgentTemplateVersion
    fields = ["version", "agent_kind", "note", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AgentTemplate)
class AgentTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "active_version_number", "is_active", "version_count", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "active_version__description"]
    fields = ["name", "is_active", "active_version", "created_at", "updated_at"]
    readonly_fields = ["active_version", "created_at", "updated_at"]
    inlines = [VersionInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("active_version")
            .annotate(_version_count=Count("versions"))
        )

    @admin.display(description="active version", ordering="active_version__version")
    def active_version_number(self, obj: AgentTemplate) -> str:
        return f"v{obj.active_version.version}" if obj.active_version else "-"

    @admin.display(description="versions", ordering="_version_count")
    def version_count(self, obj: AgentTemplate) -> int:
        return obj._version_count


class ToolLinkInline(admin.TabularInline):
    """The catalog tools the version's ``tool_policy`` names (derived from it: read-only)."""

    model = AgentTemplateTool
    fields = ["tool", "role"]
    readonly_fields = ["tool", "role"]
    extra = 0
    verbose_name_plural = "catalog tools named by the tool policy"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AgentTemplateVersion)
class AgentTemplateVersionAdmin(admin.ModelAdmin):
    form = VersionAddForm
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    list_display = ["__str__", "template", "version", "is_active_version", "agent_kind", "note", "created_at"]
    list_filter = ["agent_kind", "template"]
    list_select_related = ["template"]
    search_fields = ["template__name", "description", "note"]
    fields = VERSION_CONTENT_FIELDS
    inlines = [ToolLinkInline]
    actions = ["activate_version"]
    autocomplete_fields = ["template"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding")

    def save_model(self, request, obj: AgentTemplateVersion, form, change: bool) -> None:
        """A new version: the next number, written by the template service (not activated)."""
        content = {f: form.cleaned_data[f] for f in VERSION_CONTENT_FIELDS if f not in ("template", "note")}
        created = template_version_create(
            template=form.cleaned_data["template"], changes=content, note=form.cleaned_data.get("note", "")
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def get_inlines(self, request, obj):
        return [ToolLinkInline] if obj is not None else []  # the add page sets tools in tool_policy

    def save_related(self, request, form, formsets, change: bool) -> None:
        form.instance = AgentTemplateVersion.objects.get(pk=form.instance.pk)
        super().save_related(request, form, formsets, change)

    # Existing versions are immutable: the change page is a read-only view page.
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return VERSION_CONTENT_FIELDS
        return [*VERSION_CONTENT_FIELDS, "embedding_status", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            f"{name}_pretty" if name in CONTENT_JSON_FIELDS else name for name in self.get_fields(request, obj)
        ]

    def get_fieldsets(self, request, obj=None):
        fields = self.get_fields(request, obj)
        if obj is not None:
            fields = self.get_readonly_fields(request, obj)
        return [(None, {"fields": fields})]

    @admin.display(boolean=True, description="active")
    def is_active_version(self, obj: AgentTemplateVersion) -> bool:
        return obj.template.active_version_id == obj.pk

    @admin.display(description="embedding")
    def embedding_status(self, obj: AgentTemplateVersion) -> str:
        return embedding_info(obj)

    @admin.display(description="prompt pack")
    def prompt_pack_pretty(self, obj):
        return pretty_json(obj.prompt_pack)

    @admin.display(description="LLM config")
    def llm_config_pretty(self, obj):
        return pretty_json(obj.llm_config)

    @admin.display(description="execution policy")
    def execution_policy_pretty(self, obj):
        return pretty_json(obj.execution_policy)

    @admin.display(description="tool policy")
    def tool_policy_pretty(self, obj):
        return pretty_json(obj.tool_policy)

    @admin.display(description="rules")
    def rules_pretty(self, obj):
        return pretty_json(obj.rules)

    @admin.display(description="examples")
    def examples_pretty(self, obj):
        return pretty_json(obj.examples)

    @admin.action(description="Activate this version (make it the template's active version)")
    def activate_version(self, request, queryset) -> None:
        versions = list(queryset.select_related("template"))
        per_template = Counter(v.template_id for v in versions)
        clashing = sorted({v.template.name for v in versions if per_template[v.template_id] > 1})
        if clashing:
            names = ", ".join(clashing)
            self.message_user(request, f"Select one version per template (several for: {names}).", messages.ERROR)
            return
        for version in versions:
            try:
                template_version_activate(version=version)
            except PlatformError as exc:
                self.message_user(request, f"{version}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{version} is now active.", messages.SUCCESS)


@admin.register(AgentTemplateTool)
class AgentTemplateToolAdmin(admin.ModelAdmin):
    """Links are derived from each version's ``tool_policy`` when it is written: viewed here,
    never added or edited. Delete stays allowed so that deleting a tool or a template in the
    admin can cascade."""

    list_display = ["version", "tool", "role"]
    list_filter = ["role", "version__template"]
    list_select_related = ["version__template", "tool"]
    search_fields = ["version__template__name", "tool__name"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
