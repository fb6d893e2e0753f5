"""Reads for sessions, as frozen views (the runtime never sees Session rows)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from access.selectors import Principal
from platform_site.sql import fetch
from sessions_app.errors import SessionNotFound
from sessions_app.models import Session
from sessions_app.states import SESSION_ACTIVE


class SessionView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    template: str
    template_version_id: int
    version: int
    instance_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    depth: int
    api_key_id: int | None  # the key that started it (a delegated session: its root's); None: deleted key
    state: str
    stage: str
    task: str
    iteration: int
    searches_used: int
    clarifications_used: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    context: dict[str, Any]
    current_step_reasoning: dict[str, Any] | None
    execution_result: str
    error: str
    routing: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _parse_id(session_id) -> uuid.UUID:
    try:
        return session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
    except ValueError as exc:
        raise SessionNotFound(f"No session {session_id!r}") from exc


def is_session_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _view(session: Session) -> SessionView:
    version = session.template_version
    return SessionView(
        id=session.pk, template=version.template.name, template_version_id=version.pk,
        version=version.version, instance_id=session.instance_id, parent_id=session.parent_id,
        depth=session.depth, api_key_id=session.api_key_id, state=session.state, stage=session.stage,
        task=session.task,
        iteration=session.iteration, searches_used=session.searches_used,
        clarifications_used=session.clarifications_used, tool_calls=session.tool_calls,
        prompt_tokens=session.prompt_tokens, completion_tokens=session.completion_tokens,
        context=session.context or {}, current_step_reasoning=session.current_step_reasoning,
        execution_result=session.execution_result, error=session.error, routing=session.routing,
        created_at=session.created_at, updated_at=session.updated_at, finished_at=session.finished_at,
    )


# A session's view, read with a prepared statement (``platform_site.sql``): a waiting session's
# continuation reads it twice, a cancel polls it; the ORM's compiler and three model instances
# cost ~2 ms a read on a 2-core machine, this ~0.2 ms.
_VIEW_COLUMNS = {
    "id": "s.id", "template": "t.name", "template_version_id": "v.id", "version": "v.version",
    **{name: f"s.{name}" for name in (
        "instance_id", "parent_id", "depth", "api_key_id", "state", "stage", "task", "iteration", "searches_used",
        "clarifications_used", "tool_calls", "prompt_tokens", "completion_tokens", "context",
        "current_step_reasoning", "execution_result", "error", "routing", "created_at", "updated_at",
        "finished_at")},
}
assert set(_VIEW_COLUMNS) == set(SessionView.model_fields)
_JSON_COLUMNS = ("context", "current_step_reasoning", "routing")  # Django's connection loads jsonb as text
_VIEW_FROM = ("FROM sessions s JOIN agent_template_versions v ON v.id = s.template_version_id "
              "JOIN agent_templates t ON t.id = v.template_id WHERE s.id = %(id)s")
_GET_SQL = f"SELECT {', '.join(_VIEW_COLUMNS.values())} {_VIEW_FROM}"
_RUN_STATE_SQL = f"""
    SELECT {', '.join(_VIEW_COLUMNS.values())},
        (SELECT coalesce(jsonb_agg(m.message ORDER BY m.seq), '[]') FROM session_messages m WHERE m.session_id = s.id),
        (SELECT coalesce(jsonb_agg(jsonb_build_object('number', x.number, 'url', x.url, 'title', x.title,
                                                      'snippet', x.snippet, 'full_content', x.full_content)
                                   ORDER BY x.number), '[]')
         FROM sources x WHERE x.session_id = s.id)
    {_VIEW_FROM}"""


def _view_of(row: tuple) -> SessionView:
    fields = dict(zip(_VIEW_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        fields[name] = json.loads(fields[name]) if fields[name] is not None else None
    fields["context"] = fields["context"] or {}
    return SessionView(**fields)


def _row(sql: str, session_id) -> tuple:
    rows = fetch(sql, {"id": _parse_id(session_id)})
    if not rows:
        raise SessionNotFound(f"No session {session_id}")
    return rows[0]


def session_get(*, session_id) -> SessionView:
    return _view_of(_row(_GET_SQL, session_id))


def visible_to(view: SessionView, principal: Principal) -> bool:
    """Sessions belong to the API key that started them: another key (unless an admin one) is
    told there is no such session, so it can neither read nor continue nor cancel it."""
    return principal.is_admin or (view.api_key_id is not None and view.api_key_id == principal.key_id)


def session_get_for(*, session_id, principal: Principal | None) -> SessionView:
    """``session_get`` on behalf of ``principal``: ``SessionNotFound`` for a session it may not see
    (no principal: a caller inside the process, trusted)."""
    view = session_get(session_id=session_id)
    if principal is not None and not visible_to(view, principal):
        raise SessionNotFound(f"No session {session_id}")
    return view


def sessions_active(*, principal: Principal | None = None, limit: int = 200) -> list[SessionView]:
    """The active sessions, newest first; with a ``principal``, only those it may see."""
    qs = Session.objects.select_related("template_version__template").filter(state__in=SESSION_ACTIVE)
    if principal is not None and not principal.is_admin:
        qs = qs.filter(api_key_id=principal.key_id)
    return [_view(s) for s in qs.order_by("-created_at")[:limit]]


def instances_list(*, include_stopped: bool = False) -> list[dict[str, Any]]:
    from sessions_app.models import AgentInstance, InstanceStatus

    qs = AgentInstance.objects.select_related("template_version__template").order_by("-started_at")
    if not include_stopped:
        qs = qs.exclude(status=InstanceStatus.STOPPED)
    return [
        {
            "instance_id": str(i.pk),
            "template": i.template_version.template.name,
            "version": i.template_version.version,
            "status": i.status,
            "current_session": str(i.current_session_id) if i.current_session_id else None,
            "sessions_served": i.sessions_served,
            "memory_rss_bytes": i.memory_rss_bytes,
            "host": i.host,
            "pid": i.pid,
            "heartbeat_at": i.heartbeat_at,
            "started_at": i.started_at,
            "stopped_at": i.stopped_at,
        }
        for i in qs[:1000]
    ]


def session_run_state(*, session_id) -> tuple[SessionView, list[dict[str, Any]], list[dict[str, Any]]]:
    """What a runtime needs to continue a session: its view, messages and sources (one statement)."""
    row = _row(_RUN_STATE_SQL, session_id)
    width = len(_VIEW_COLUMNS)
    return _view_of(row[:width]), json.loads(row[width]), json.loads(row[width + 1])
