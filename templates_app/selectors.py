"""Reads for templates; the runtime gets ``TemplateSpec`` objects, never rows."""

from __future__ import annotations

import threading
from collections import OrderedDict

from platform_site.sql import fetch
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


# Specs built once per process: versions are immutable (a database trigger refuses updates), so a
# spec changes only with its template's name or active version, which are part of each key.
_SPEC_CACHE_SIZE = 256
_specs: OrderedDict[tuple, TemplateSpec] = OrderedDict()
_specs_lock = threading.Lock()


def _recall(key: tuple) -> TemplateSpec | None:
    with _specs_lock:
        spec = _specs.get(key)
        if spec is not None:
            _specs.move_to_end(key)
        return spec


def _remember(key: tuple, spec: TemplateSpec) -> None:
    with _specs_lock:
        _specs[key] = spec
        while len(_specs) > _SPEC_CACHE_SIZE:
            _specs.popitem(last=False)


_ACTIVE_VERSION_SQL = ("SELECT active_version_id FROM agent_templates "
                       "WHERE name = %(name)s AND is_active AND active_version_id IS NOT NULL")


def template_spec_get(*, name: str) -> TemplateSpec:
    """The active version of the served template ``name``.

    One small query per call (which version is active now); the spec of that version is
    built once per process.
    """
    rows = fetch(_ACTIVE_VERSION_SQL, {"name": name})  # on every request: a prepared statement
    row = rows[0][0] if rows else None
    if row is None:
        raise TemplateNotFound(f"Unknown model {name!r}: no active agent template has this name")
    key = ("active", name, row)
    spec = _recall(key)
    if spec is not None:
        return spec
    version = AgentTemplateVersion.objects.select_related("template").filter(pk=row).first()
    if version is None:  # deactivated or deleted between the two reads
        raise TemplateNotFound(f"Unknown model {name!r}: no active agent template has this name")
    spec = _spec(version)
    if spec.is_active_version and spec.name == name:
        _remember(key, spec)
    return spec


_VERSION_SQL = ("SELECT t.name, t.active_version_id IS NOT DISTINCT FROM v.id FROM agent_template_versions v "
                "JOIN agent_templates t ON t.id = v.template_id WHERE v.id = %(id)s")


def template_spec_for_version(*, version_id: int) -> TemplateSpec:
    """The spec of a version (a waiting session's, say), whether it is active or not: one small
    query per call (its template's name and whether it is the active version now)."""
    rows = fetch(_VERSION_SQL, {"id": version_id})
    if not rows:
        raise TemplateVersionNotFound()
    key = ("version", version_id, *rows[0])
    spec = _recall(key)
    if spec is not None:
        return spec
    version = AgentTemplateVersion.objects.select_related("template").filter(pk=version_id).first()
    if version is None:
        raise TemplateVersionNotFound()
    spec = _spec(version)
    if (spec.name, spec.is_active_version) == rows[0]:  # not changed between the two reads
        _remember(key, spec)
    return spec


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
