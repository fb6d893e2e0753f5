"""Reads for templates; the runtime gets ``TemplateSpec`` objects, never rows."""

from __future__ import annotations

from templates_app.errors import TemplateNotFound, TemplateVersionNotFound
from templates_app.models import AgentTemplate, AgentTemplateVersion
from templates_app.services import template_version_content
from templates_app.specs import TemplateSpec


def _spec(version: AgentTemplateVersion) -> TemplateSpec:
    template = version.template
    return TemplateSpec(
        template_id=template.pk,
        name=template.name,
        version_id=version.pk,
        version=version.version,
        is_active_version=template.active_version_id == version.pk,
        content=template_version_content(version=version),
    )


def template_spec_get(*, name: str) -> TemplateSpec:
    """The active version of the served template ``name``."""
    template = (
        AgentTemplate.objects.select_related("active_version")
        .filter(name=name, is_active=True, active_version__isnull=False)
        .first()
    )
    if template is None:
        raise TemplateNotFound(f"Unknown model {name!r}: no active agent template has this name")
    version = template.active_version
    version.template = template
    return _spec(version)


def template_spec_for_version(*, version_id: int) -> TemplateSpec:
    version = AgentTemplateVersion.objects.select_related("template").filter(pk=version_id).first()
    if version is None:
        raise TemplateVersionNotFound()
    return _spec(version)


def template_specs_served() -> list[TemplateSpec]:
    """Active templates with an active version, by name (for /v1/models)."""
    templates = AgentTemplate.objects.select_related("active_version").filter(
        is_active=True, active_version__isnull=False
    )
    specs = []
    for template in templates:
        version = template.active_version
        version.template = template
        specs.append(_spec(version))
    return specs


def template_get(*, ref: str | int) -> AgentTemplate:
    """A template by id or name; ``TemplateNotFound`` (404) otherwise."""
    ref = str(ref)
    qs = AgentTemplate.objects.select_related("active_version")
    template = qs.filter(pk=int(ref)).first() if ref.isdigit() else qs.filter(name=ref).first()
    if template is None:
        raise TemplateNotFound(f"No template {ref!r}")
    return template


def template_version_get(*, template: AgentTemplate, version: int) -> AgentTemplateVersion:
    found = template.versions.filter(version=version).first()
    if found is None:
        raise TemplateVersionNotFound(f"Template {template.name} has no version {version}")
    return found


def templates_list():
    return AgentTemplate.objects.select_related("active_version").order_by("name")
