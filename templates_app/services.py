"""Writes for agent templates: create (v1), new version (copy-on-write), activate."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from pydantic import ValidationError

from templates_app.errors import TemplateExists, TemplateInvalid
from templates_app.models import AgentTemplate, AgentTemplateTool, AgentTemplateVersion
from templates_app.specs import TemplateContent

CONTENT_FIELDS = tuple(TemplateContent.model_fields)


def template_content_validate(data: dict[str, Any]) -> TemplateContent:
    """Validate template content; raise ``TemplateInvalid`` with every problem listed."""
    try:
        return TemplateContent.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or 'template'}: {err['msg']}" for err in exc.errors()]
        raise TemplateInvalid("Invalid template: " + "; ".join(problems), problems=problems) from exc


def _version_write(*, template: AgentTemplate, number: int, content: TemplateContent, note: str) -> AgentTemplateVersion:
    data = content.model_dump(mode="json")
    version = AgentTemplateVersion(template=template, version=number, note=note, **data)
    version.full_clean(exclude=["embedding"])
    version.save()
    _tool_links_write(version)
    return version


def _tool_links_write(version: AgentTemplateVersion) -> None:
    """A new version's ``agent_template_tools`` rows, derived from its ``tool_policy``: each named
    catalog tool, ``required`` or ``allowed``. The policy is what the runtime reads; the links
    index it by tool (which versions name a tool, shown in the admin). Names with no tool in the
    catalog get no link."""
    from catalog.models import Tool

    policy = version.tool_policy or {}
    required = set(policy.get("required_tools") or [])
    names = required | set(policy.get("allowlist") or [])
    role = AgentTemplateTool.Role
    AgentTemplateTool.objects.bulk_create([
        AgentTemplateTool(version=version, tool=tool, role=role.REQUIRED if tool.name in required else role.ALLOWED)
        for tool in Tool.objects.filter(name__in=names).order_by("name")
    ])


@transaction.atomic
def template_create(*, name: str, content: dict[str, Any] | None = None, note: str = "") -> AgentTemplateVersion:
    """Create a template and its version 1, active."""
    validated = template_content_validate(content or {})
    if AgentTemplate.objects.filter(name=name).exists():
        raise TemplateExists(f"A template named {name!r} exists; create a new version of it instead")
    template = AgentTemplate(name=name)
    template.full_clean(exclude=["active_version"])
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError as exc:  # a concurrent create won
        raise TemplateExists(f"A template named {name!r} exists") from exc
    version = _version_write(template=template, number=1, content=validated, note=note or "created")
    template.active_version = version
    template.save(update_fields=["active_version", "updated_at"])
    _directory_refresh(template.pk)
    return version


@transaction.atomic
def template_version_create(
    *, template: AgentTemplate, changes: dict[str, Any], note: str = "", activate: bool = False
) -> AgentTemplateVersion:
    """New version from the active one with ``changes`` applied (copy-on-write).

    Locks the template row (SELECT ... FOR UPDATE) so version numbers never clash.
    """
    template = AgentTemplate.objects.select_for_update().get(pk=template.pk)
    base = template.active_version or template.versions.order_by("-version").first()
    current = template_version_content(version=base) if base else TemplateContent()
    unknown = set(changes) - set(CONTENT_FIELDS)
    if unknown:
        raise TemplateInvalid(f"Unknown template field(s): {sorted(unknown)}")
    merged = template_content_validate(current.merged(changes))
    number = (template.versions.aggregate(n=Max("version"))["n"] or 0) + 1
    version = _version_write(template=template, number=number, content=merged, note=note)
    if activate:
        template.active_version = version
        template.save(update_fields=["active_version", "updated_at"])
        _directory_refresh(template.pk)
    return version


@transaction.atomic
def template_version_activate(*, version: AgentTemplateVersion) -> AgentTemplate:
    """Make ``version`` its template's active version (new sessions use it)."""
    template = AgentTemplate.objects.select_for_update().get(pk=version.template_id)
    if template.active_version_id != version.pk:
        template.active_version = version
        template.save(update_fields=["active_version", "updated_at"])
        _directory_refresh(template.pk)
    return template


def _directory_refresh(template_id: int) -> None:
    """The agent directory indexes active versions: refresh it after this transaction."""
    from retrieval.directory import directory_refresh_on_commit

    directory_refresh_on_commit(template_id=template_id)


def template_version_content(*, version: AgentTemplateVersion) -> TemplateContent:
    return TemplateContent.model_validate({field: getattr(version, field) for field in CONTENT_FIELDS})
