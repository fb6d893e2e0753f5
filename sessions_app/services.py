"""Writes for sessions: creation, transitions, history, tool executions, sources, artifacts.

Every state change is a compare-and-set checked against ``SESSION_TRANSITIONS`` /
``INSTANCE_TRANSITIONS`` (``session_transition``, ``sessions_app.instances.instance_transition``,
or the same rule inside the start's, resume's and end's statements); an illegal transition raises
``InvalidTransition``. A run costs few round trips: one statement for its start (or its resume),
one per step, one for its end. These are plain SQL, prepared on the connection
(``platform_site.sql.fetch``): they run for every step of every session.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from platform_site.errors import InvalidTransition
from platform_site.sql import fetch
from sessions_app.errors import SessionNotFound
from sessions_app.models import (
    AgentInstance,
    Artifact,
    InstanceStatus,
    Session,
    SessionState,
    Source,
)
from sessions_app.states import (
    INSTANCE_TRANSITIONS,
    SESSION_TERMINAL,
    SESSION_TRANSITIONS,
    sources_of,
)

logger = logging.getLogger(__name__)

PROGRESS_FIELDS = (
    "iteration", "searches_used", "clarifications_used", "tool_calls", "prompt_tokens",
    "completion_tokens", "context", "current_step_reasoning", "stage",
)


def _session_fields(to: str, *, error: str = "", result: str | None = None, **progress: Any) -> dict[str, Any]:
    unknown = set(progress) - set(PROGRESS_FIELDS)
    if unknown:
        raise TypeError(f"unknown progress fields {sorted(unknown)}")
    fields: dict[str, Any] = {"state": to, "updated_at": timezone.now(), **progress}
    if error:
        fields["error"] = error[:10_000]
    if result is not None:
        fields["execution_result"] = result
    if to in SESSION_TERMINAL:
        fields["finished_at"] = timezone.now()
    return fields


def session_transition(*, session_id, to: str, error: str = "", result: str | None = None, **progress: Any) -> None:
    """Move a session to state ``to``, saving the progress fields given.

    A compare-and-set UPDATE (``WHERE state IN <states that may go to `to`>``):
    atomic without an explicit lock; an illegal transition raises ``InvalidTransition``.
    """
    fields = _session_fields(to, error=error, result=result, **progress)
    if not Session.objects.filter(pk=session_id, state__in=sources_of(SESSION_TRANSITIONS, to)).update(**fields):
        raise session_refusal(session_id, to)


def session_refusal(session_id, to: str) -> SessionNotFound | InvalidTransition:
    """Why a session's compare-and-set to ``to`` changed nothing (its row read again)."""
    current = Session.objects.filter(pk=session_id).values_list("state", flat=True).first()
    if current is None:
        return SessionNotFound(f"No session {session_id}")
    return InvalidTransition(f"Session {session_id} cannot go from {current} to {to}", from_state=current,
                             to_state=to)


def instance_refusal(instance_id, to: str) -> InvalidTransition:
    """Why an instance's compare-and-set to ``to`` changed nothing (its row read again)."""
    current = AgentInstance.objects.filter(pk=instance_id).values_list("status", flat=True).first()
    return InvalidTransition(f"Instance {instance_id} cannot go from {current} to {to}")


def _session_new(*, template_version_id: int, task: str, api_key_id: int | None = None,
                 parent_id: uuid.UUID | str | None = None, depth: int = 0, routing: dict | None = None,
                 **fields: Any) -> Session:
    # No full_clean(): it costs two queries (pk uniqueness, check constraints) that the INSERT's own
    # constraints enforce anyway; the fields come from the runtime, not from a form.
    return Session(template_version_id=template_version_id, task=task, api_key_id=api_key_id,
                   parent_id=parent_id, depth=depth, routing=routing, **fields)


assert SessionState.RESEARCHING in SESSION_TRANSITIONS[SessionState.INITED]


_START_TEMPLATE = """
    WITH moved AS (  -- the instance's compare-and-set: idle → busy, serving the new session
        UPDATE agent_instances SET status = %(busy)s, heartbeat_at = now(), current_session_id = %(session)s
        WHERE id = %(instance)s AND status = ANY(%(allowed)s)
        RETURNING id
    ), created AS (
        INSERT INTO sessions ({columns}) SELECT {values} WHERE EXISTS (SELECT 1 FROM moved)
        RETURNING id
    ), messages AS (
        INSERT INTO session_messages (session_id, seq, role, message, created_at)
        SELECT %(session)s, m.ord - 1, m.message ->> 'role', m.message, now()
        FROM jsonb_array_elements(%(messages)s) WITH ORDINALITY AS m(message, ord)
        WHERE EXISTS (SELECT 1 FROM created)
    )
    SELECT count(*) FROM created
"""
_session_columns = list(Session._meta.concrete_fields)
_START_SQL = _START_TEMPLATE.format(columns=", ".join(connection.ops.quote_name(f.column) for f in _session_columns),
                                    values=", ".join(f"%(f_{f.column})s" for f in _session_columns))


def session_start(*, instance_id, messages: list[dict[str, Any]], session_id: uuid.UUID | str | None = None,
                  **create: Any) -> Session:
    """Create a session (``session_id``: chosen by the caller, so it can be used before the row is
    in) and start it on ``instance_id``: ``inited → researching`` (the row is inserted in its started
    form), instance ``idle → busy``, with the first messages.

    One statement (atomic by itself): nothing is written unless the instance was free;
    otherwise ``InvalidTransition``. The row's values come from the model's own defaults.
    """
    if session_id is not None:
        create["id"] = uuid.UUID(str(session_id))
    session = _session_new(**create, state=SessionState.RESEARCHING, instance_id=instance_id)
    params = {f"f_{f.column}": f.get_db_prep_save(f.pre_save(session, add=True), connection)
              for f in _session_columns}
    params.update(session=str(session.pk), instance=str(instance_id), busy=InstanceStatus.BUSY,
                  allowed=sources_of(INSTANCE_TRANSITIONS, InstanceStatus.BUSY),
                  messages=Jsonb(messages))
    ((created,),) = fetch(_START_SQL, params)
    if not created:
        raise instance_refusal(instance_id, InstanceStatus.BUSY)
    session._state.adding, session._state.db = False, connection.alias
    return session


_RESUME_SQL = """
    WITH waiting AS (  -- locked: once the instance is taken, the session's move cannot fail
        SELECT id FROM sessions WHERE id = %(session)s AND state = ANY(%(allowed)s) FOR UPDATE
    ), taken AS (  -- the instance's compare-and-set: idle → busy, serving the session
        UPDATE agent_instances SET status = %(busy)s, heartbeat_at = now(), current_session_id = %(session)s
        WHERE id = %(instance)s AND status = ANY(%(instance_allowed)s) AND EXISTS (SELECT 1 FROM waiting)
        RETURNING id
    ), moved AS (
        UPDATE sessions SET state = %(to)s, updated_at = now(), instance_id = %(instance)s
        WHERE id IN (SELECT id FROM waiting) AND EXISTS (SELECT 1 FROM taken)
        RETURNING id
    ), appended AS (
        INSERT INTO session_messages (session_id, seq, role, message, created_at)
        SELECT %(session)s, coalesce(max(seq) + 1, 0), %(role)s, %(message)s, now()
        FROM session_messages WHERE session_id = %(session)s
        HAVING EXISTS (SELECT 1 FROM moved)
    )
    SELECT (SELECT count(*) FROM waiting), (SELECT count(*) FROM taken)
"""


def session_resume(*, session_id, instance_id, message: dict[str, Any]) -> None:
    """A waiting session goes on with the user's answer: ``waiting → researching`` on ``instance_id``
    (``idle → busy``), the answer appended to its history.

    One statement (atomic by itself; prepared, as it runs for every continued session): nothing is
    written unless both moves are legal; otherwise ``SessionNotFound`` or ``InvalidTransition``.
    """
    to = SessionState.RESEARCHING
    params = {
        "session": str(session_id), "instance": str(instance_id), "to": to, "busy": InstanceStatus.BUSY,
        "allowed": sources_of(SESSION_TRANSITIONS, to),
        "instance_allowed": sources_of(INSTANCE_TRANSITIONS, InstanceStatus.BUSY),
        "role": message["role"], "message": Jsonb(message),
    }
    ((waiting, taken),) = fetch(_RESUME_SQL, params)
    if not waiting:
        raise session_refusal(session_id, to)
    if not taken:
        raise instance_refusal(instance_id, InstanceStatus.BUSY)


# What the runtime mirrors into the session row (``runtime.recorder.progress_of``): all progress
# fields but ``tool_calls``, which the database counts itself.
_STEP_PROGRESS = tuple(f for f in PROGRESS_FIELDS if f != "tool_calls")


def _progress_params(progress: dict[str, Any]) -> dict[str, Any]:
    """SQL parameters of the progress fields (None where not given), JSON ones adapted."""
    params = {k: progress.get(k) for k in _STEP_PROGRESS}
    for key in ("current_step_reasoning", "context"):
        if params[key] is not None:
            params[key] = Jsonb(params[key])
    return params


_END_SQL = """
    WITH ended AS (
        UPDATE sessions SET state = %(to)s, updated_at = now(), tool_calls = tool_calls + %(step_tool_calls)s,
            finished_at = CASE WHEN %(terminal)s THEN now() ELSE finished_at END,
            error = coalesce(%(error)s, error), execution_result = coalesce(%(result)s, execution_result),
            iteration = coalesce(%(iteration)s, iteration), searches_used = coalesce(%(searches_used)s, searches_used),
            clarifications_used = coalesce(%(clarifications_used)s, clarifications_used),
            prompt_tokens = coalesce(%(prompt_tokens)s, prompt_tokens),
            completion_tokens = coalesce(%(completion_tokens)s, completion_tokens),
            stage = coalesce(%(stage)s, stage), context = coalesce(%(context)s, context),
            current_step_reasoning = coalesce(%(current_step_reasoning)s, current_step_reasoning)
        WHERE id = %(session)s AND state = ANY(%(allowed)s)
        RETURNING id
    ), released AS (  -- busy → resetting → idle: the reset happened in memory, before this statement
        UPDATE agent_instances SET status = %(idle)s, heartbeat_at = now(), current_session_id = NULL,
            sessions_served = sessions_served + 1, memory_rss_bytes = coalesce(%(rss)s, memory_rss_bytes)
        WHERE id = %(instance)s AND status = %(busy)s AND EXISTS (SELECT 1 FROM ended)
        RETURNING id
    ){step}
    SELECT (SELECT count(*) FROM ended), (SELECT count(*) FROM released)
"""
assert InstanceStatus.RESETTING in INSTANCE_TRANSITIONS[InstanceStatus.BUSY]
assert InstanceStatus.IDLE in INSTANCE_TRANSITIONS[InstanceStatus.RESETTING]


def session_end(*, session_id, instance_id, to: str, error: str = "", result: str | None = None,
                memory_rss_bytes: int | None = None, final_step: dict[str, Any] | None = None,
                **progress: Any) -> bool:
    """The run is over: the session's final (or waiting) state, and its instance, which has
    already dropped the run from memory, ``busy → resetting → idle`` (counted as served).

    One statement, atomic by itself; the instance moves only if the session did. An illegal
    session transition raises ``InvalidTransition``; an instance that is no longer ``busy``
    (stopped meanwhile) is left as it is, and the result is False (True: it is idle again).
    ``final_step`` (``messages``, ``first_seq``, ``execution``: the step that ended the run) is
    written by the same statement, only if the session moved: it stands or falls with the end
    (the caller writes it alone if refused).
    """
    unknown = set(progress) - set(_STEP_PROGRESS)
    if unknown:
        raise TypeError(f"unknown progress fields {sorted(unknown)}")
    params = {
        "session": str(session_id), "instance": str(instance_id), "to": to, "terminal": to in SESSION_TERMINAL,
        "allowed": sources_of(SESSION_TRANSITIONS, to),
        "error": error[:10_000] if error else None, "result": result, "rss": memory_rss_bytes,
        "idle": InstanceStatus.IDLE, "busy": InstanceStatus.BUSY, **_progress_params(progress),
        "step_tool_calls": 0,
    }
    sql = _END_SQL_ALONE
    if final_step is not None:
        if set(_STEP_PROGRESS) - set(progress):
            raise TypeError(f"a final step records exactly the progress fields {_STEP_PROGRESS}")
        step = _step_params(session_id, **final_step)
        assert not (set(step) & set(params)) - {"session"}, "step and end parameters must not share names"
        params.update(step, step_tool_calls=int(step["executed"]))
        sql = _END_SQL_WITH_STEP
    ((ended, released),) = fetch(sql, params)
    if not ended:
        raise session_refusal(session_id, to)
    if not released:
        logger.warning("session %s ended, but its instance %s was no longer busy", session_id, instance_id)
    return bool(released)


_STEP_INSERTS = """
    messages AS (
        INSERT INTO session_messages (session_id, seq, role, message, created_at)
        SELECT %(session)s, %(first_seq)s + m.ord - 1, m.message ->> 'role', m.message, now()
        FROM jsonb_array_elements(%(messages)s) WITH ORDINALITY AS m(message, ord)
        WHERE {guard}
    ), execution AS (
        INSERT INTO tool_executions (session_id, tool_id, tool_name, tool_call_id, iteration, arguments, result,
                                     status, error, duration_ms, created_at)
        SELECT %(session)s, %(x_tool_id)s, %(x_tool_name)s, %(x_tool_call_id)s, %(x_iteration)s, %(x_arguments)s,
               %(x_result)s, %(x_status)s, %(x_error)s, %(x_duration_ms)s, now()
        WHERE %(executed)s AND {guard}
    )"""
_STEP_SQL = "WITH" + _STEP_INSERTS.format(guard="TRUE") + """
    UPDATE sessions SET updated_at = now(), iteration = %(iteration)s, searches_used = %(searches_used)s,
        clarifications_used = %(clarifications_used)s, prompt_tokens = %(prompt_tokens)s,
        completion_tokens = %(completion_tokens)s, stage = %(stage)s,
        current_step_reasoning = %(current_step_reasoning)s, context = %(context)s,
        tool_calls = tool_calls + (CASE WHEN %(executed)s THEN 1 ELSE 0 END)
    WHERE id = %(session)s
"""
_END_SQL_ALONE = _END_SQL.format(step="")
_END_SQL_WITH_STEP = _END_SQL.format(step="," + _STEP_INSERTS.format(guard="EXISTS (SELECT 1 FROM ended)"))


def _step_params(session_id, *, messages: list[dict[str, Any]], first_seq: int,
                 execution: dict[str, Any] | None = None) -> dict[str, Any]:
    execution = execution or {}
    arguments = execution.get("arguments", {})
    # x_: the execution's own fields, apart from the session's (``session_end`` binds both)
    return {
        "session": str(session_id), "first_seq": first_seq, "messages": Jsonb(messages),
        "executed": bool(execution), "x_tool_id": execution.get("tool_id"),
        "x_tool_name": execution.get("tool_name", ""), "x_tool_call_id": execution.get("tool_call_id", "")[:100],
        "x_iteration": execution.get("iteration", 0),
        "x_arguments": Jsonb(arguments if isinstance(arguments, dict) else {"raw": arguments}),
        "x_result": execution.get("result", ""), "x_status": execution.get("status", ""),
        "x_error": execution.get("error", ""), "x_duration_ms": max(execution.get("duration_ms", 0.0), 0.0),
    }


def session_step_record(
    *, session_id, messages: list[dict[str, Any]], first_seq: int, execution: dict[str, Any] | None = None,
    **progress: Any,
) -> int:
    """One step's writes in one statement (so one round trip, atomic by itself): its messages,
    the tool execution, the progress. The hot path of every run: plain SQL, not the ORM.
    ``progress`` carries every progress field (``runtime.recorder.progress_of``)."""
    missing = set(_STEP_PROGRESS) - set(progress)
    if missing or set(progress) - set(_STEP_PROGRESS):
        raise TypeError(f"a step records exactly the progress fields {_STEP_PROGRESS}")
    params = {**_step_params(session_id, messages=messages, first_seq=first_seq, execution=execution),
              **_progress_params(progress)}
    fetch(_STEP_SQL, params)
    return first_seq + len(messages)


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
