"""Writes for sessions: creation, transitions, history, tool executions, sources, artifacts.

Every state change goes through ``session_transition`` (checked against
``SESSION_TRANSITIONS``); an illegal transition raises ``InvalidTransition``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from platform_site.errors import InvalidTransition
from sessions_app.errors import SessionNotFound
from sessions_app.models import (
    AgentInstance,
    Artifact,
    InstanceStatus,
    Session,
    SessionMessage,
    SessionState,
    Source,
    ToolExecution,
)
from sessions_app.states import INSTANCE_TRANSITIONS, SESSION_TERMINAL, SESSION_TRANSITIONS

PROGRESS_FIELDS = (
    "iteration", "searches_used", "clarifications_used", "tool_calls", "prompt_tokens",
    "completion_tokens", "context", "current_step_reasoning", "stage",
)


@transaction.atomic
def session_create(
    *,
    template_version_id: int,
    task: str,
    messages: list[dict[str, Any]],
    api_key_id: int | None = None,
    parent_id: uuid.UUID | str | None = None,
    depth: int = 0,
    routing: dict | None = None,
) -> Session:
    """Create an ``inited`` session with its first messages (system, user, ...)."""
    session = Session(
        template_version_id=template_version_id,
        task=task,
        api_key_id=api_key_id,
        parent_id=parent_id,
        depth=depth,
        routing=routing,
    )
    session.full_clean(exclude=["template_version", "api_key", "parent", "instance"])
    session.save()
    session_messages_append(session_id=session.pk, messages=messages)
    return session


def _locked(session_id) -> Session:
    session = Session.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise SessionNotFound(f"No session {session_id}")
    return session


@transaction.atomic
def session_transition(*, session_id, to: str, error: str = "", result: str | None = None, **progress: Any) -> Session:
    """Move a session to state ``to`` (row locked FOR UPDATE); saves progress fields given."""
    session = _locked(session_id)
    if to not in SESSION_TRANSITIONS[session.state]:
        raise InvalidTransition(
            f"Session {session.pk} cannot go from {session.state} to {to}",
            from_state=session.state,
            to_state=to,
        )
    session.state = to
    fields = ["state", "updated_at"]
    if error:
        session.error = error[:10_000]
        fields.append("error")
    if result is not None:
        session.execution_result = result
        fields.append("execution_result")
    if to in SESSION_TERMINAL:
        session.finished_at = timezone.now()
        fields.append("finished_at")
    for name, value in progress.items():
        if name not in PROGRESS_FIELDS:
            raise TypeError(f"unknown progress field {name}")
        setattr(session, name, value)
        fields.append(name)
    session.save(update_fields=fields)
    return session


def session_progress_save(*, session_id, **progress: Any) -> None:
    """Save counters and the context snapshot (no state change)."""
    unknown = set(progress) - set(PROGRESS_FIELDS)
    if unknown:
        raise TypeError(f"unknown progress fields {sorted(unknown)}")
    Session.objects.filter(pk=session_id).update(updated_at=timezone.now(), **progress)


@transaction.atomic
def session_messages_append(*, session_id, messages: list[dict[str, Any]]) -> int:
    """Append messages (OpenAI format) in order; returns the last sequence number.

    Expects the caller to be the session's only writer (its running instance);
    the unique (session, seq) constraint catches a second writer.
    """
    if not messages:
        return -1
    last = SessionMessage.objects.filter(session_id=session_id).aggregate(n=Max("seq"))["n"]
    seq = -1 if last is None else last
    rows = []
    for message in messages:
        seq += 1
        rows.append(SessionMessage(session_id=session_id, seq=seq, role=message["role"], message=message))
    SessionMessage.objects.bulk_create(rows)
    return seq


def tool_execution_record(
    *,
    session_id,
    tool_name: str,
    tool_id: int | None,
    tool_call_id: str,
    iteration: int,
    arguments: Any,
    result: str,
    status: str,
    error: str,
    duration_ms: float,
) -> ToolExecution:
    execution = ToolExecution(
        session_id=session_id, tool_id=tool_id, tool_name=tool_name, tool_call_id=tool_call_id[:100],
        iteration=iteration, arguments=arguments if isinstance(arguments, dict) else {"raw": arguments},
        result=result, status=status, error=error, duration_ms=max(duration_ms, 0.0),
    )
    execution.save()
    Session.objects.filter(pk=session_id).update(tool_calls=F("tool_calls") + 1)
    return execution


@transaction.atomic
def sources_save(*, session_id, sources: list[dict[str, Any]]) -> None:
    """Insert or update sources by URL (number, title, snippet, full content)."""
    for src in sources:
        Source.objects.update_or_create(
            session_id=session_id,
            url=src["url"],
            defaults={k: src[k] for k in ("number", "title", "snippet", "full_content") if k in src},
        )


def artifact_create(*, session_id, name: str, kind: str, content: str, metadata: dict) -> Artifact:
    artifact = Artifact(session_id=session_id, name=name[:255], kind=kind, content=content, metadata=metadata)
    artifact.save()
    return artifact


def sessions_fail_running(*, reason: str, instance_ids: list | None = None) -> int:
    """Mark ``researching`` sessions failed (after a crash); returns how many."""
    qs = Session.objects.filter(state=SessionState.RESEARCHING)
    if instance_ids is not None:
        qs = qs.filter(instance_id__in=instance_ids)
    return qs.update(state=SessionState.FAILED, error=reason, finished_at=timezone.now(), updated_at=timezone.now())


# -- agent instances ------------------------------------------------------------------------------

def instance_register(*, template_version_id: int, host: str, pid: int) -> AgentInstance:
    instance = AgentInstance(template_version_id=template_version_id, host=host, pid=pid)
    instance.save()
    return instance


@transaction.atomic
def instance_transition(
    *, instance_id, to: str, session_id=None, memory_rss_bytes: int | None = None, served: bool = False
) -> AgentInstance:
    """Move an instance to status ``to`` (row locked); ``busy`` needs the session it serves."""
    instance = AgentInstance.objects.select_for_update().get(pk=instance_id)
    if to not in INSTANCE_TRANSITIONS[instance.status]:
        raise InvalidTransition(f"Instance {instance.pk} cannot go from {instance.status} to {to}")
    instance.status = to
    fields = ["status", "heartbeat_at", "current_session"]
    instance.heartbeat_at = timezone.now()
    instance.current_session_id = session_id if to == InstanceStatus.BUSY else None
    if served:
        instance.sessions_served += 1
        fields.append("sessions_served")
    if memory_rss_bytes is not None:
        instance.memory_rss_bytes = memory_rss_bytes
        fields.append("memory_rss_bytes")
    if to == InstanceStatus.STOPPED:
        instance.stopped_at = timezone.now()
        fields.append("stopped_at")
    instance.save(update_fields=fields)
    if to == InstanceStatus.BUSY:
        Session.objects.filter(pk=session_id).update(instance_id=instance.pk)
    return instance


@transaction.atomic
def instances_stop_dead(*, host: str, alive_pids: set[int], reason: str) -> int:
    """On start-up: stop this host's instances whose process is gone; fail their running sessions.

    Sessions that were mid-run are failed (not resumed): a half-executed tool call
    may have had side effects, so replaying it silently would be wrong.
    """
    dead = list(
        AgentInstance.objects.select_for_update()
        .filter(host=host)
        .exclude(status=InstanceStatus.STOPPED)
        .exclude(pid__in=alive_pids)
        .values_list("pk", flat=True)
    )
    if not dead:
        return 0
    sessions_fail_running(reason=reason, instance_ids=dead)
    AgentInstance.objects.filter(pk__in=dead).update(
        status=InstanceStatus.STOPPED, current_session=None, stopped_at=timezone.now()
    )
    return len(dead)


def instances_heartbeat(*, instance_ids: list, memory_rss_bytes: int) -> None:
    AgentInstance.objects.filter(pk__in=instance_ids).exclude(status=InstanceStatus.STOPPED).update(
        heartbeat_at=timezone.now(), memory_rss_bytes=memory_rss_bytes
    )


@transaction.atomic
def instances_stop_stale(*, older_than_s: float, reason: str) -> int:
    """Stop instances (any host) whose heartbeat is older than ``older_than_s``; fail their running sessions."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    stale = list(
        AgentInstance.objects.select_for_update(skip_locked=True)
        .filter(heartbeat_at__lt=cutoff)
        .exclude(status=InstanceStatus.STOPPED)
        .values_list("pk", flat=True)
    )
    if not stale:
        return 0
    sessions_fail_running(reason=reason, instance_ids=stale)
    AgentInstance.objects.filter(pk__in=stale).update(
        status=InstanceStatus.STOPPED, current_session=None, stopped_at=timezone.now()
    )
    return len(stale)
