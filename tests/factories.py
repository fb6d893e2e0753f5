"""Plain factory functions creating rows directly through the ORM (no services).

Each takes keyword overrides; names are made unique with a counter so tests can
call them freely.
"""

from __future__ import annotations

import itertools
import os
import socket
from typing import Any

from catalog.models import Tool
from sessions_app.models import AgentInstance, Session, SessionMessage
from templates_app.models import AgentTemplate, AgentTemplateVersion

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}"


def make_tool(**overrides: Any) -> Tool:
    fields: dict[str, Any] = {
        "name": unique("tool"),
        "description": "A tool made by a test factory.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }
    fields.update(overrides)
    return Tool.objects.create(**fields)


def make_version(template: AgentTemplate, *, version: int | None = None, **fields: Any) -> AgentTemplateVersion:
    """A new version of ``template`` (number max+1 unless given); does not activate it."""
    if version is None:
        last = template.versions.order_by("-version").values_list("version", flat=True).first()
        version = (last or 0) + 1
    fields.setdefault("prompt_pack", {"system_prompt": "You are a test agent."})
    fields.setdefault("execution_policy", {"max_iterations": 5})
    return AgentTemplateVersion.objects.create(template=template, version=version, **fields)


def make_template(name: str | None = None, *, is_active: bool = True, **version_fields: Any) -> AgentTemplate:
    """An AgentTemplate with version 1 holding ``version_fields``, set as the active version."""
    template = AgentTemplate.objects.create(name=name or unique("template"), is_active=is_active)
    template.active_version = make_version(template, version=1, **version_fields)
    template.save(update_fields=["active_version"])
    return template


def make_session(template_version: AgentTemplateVersion | None = None, **overrides: Any) -> Session:
    if template_version is None:
        template_version = make_template().active_version
    overrides.setdefault("task", "Find out something for a test.")
    return Session.objects.create(template_version=template_version, **overrides)


def make_instance(template_version: AgentTemplateVersion | None = None, **overrides: Any) -> AgentInstance:
    if template_version is None:
        template_version = make_template().active_version
    overrides.setdefault("host", socket.gethostname())
    overrides.setdefault("pid", os.getpid())
    return AgentInstance.objects.create(template_version=template_version, **overrides)


def make_message(session: Session, *, seq: int | None = None, role: str = "user", **message: Any) -> SessionMessage:
    if seq is None:
        last = session.messages.order_by("-seq").values_list("seq", flat=True).first()
        seq = (last or 0) + 1
    body = {"role": role, "content": "hello", **message}
    return SessionMessage.objects.create(session=session, seq=seq, role=role, message=body)
