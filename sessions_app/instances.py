"""Writes for agent instances: registration, compare-and-set transitions, heartbeats, and stopping
the instances of processes that are gone (failing the sessions they were running)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sessions_app.models import AgentInstance, InstanceStatus, Session
from sessions_app.services import instance_refusal, sessions_fail_running
from sessions_app.states import INSTANCE_TRANSITIONS, sources_of


def instance_register(*, template_version_id: int, host: str, pid: int) -> AgentInstance:
    instance = AgentInstance(template_version_id=template_version_id, host=host, pid=pid)
    instance.save()
    return instance


def instance_transition(
    *, instance_id, to: str, session_id=None, memory_rss_bytes: int | None = None, served: bool = False,
    bind: bool = True,
) -> None:
    """Move an instance to status ``to`` (compare-and-set); ``busy`` records the session it serves
    (and, with ``bind``, points the session at the instance)."""
    fields: dict[str, Any] = {"status": to, "heartbeat_at": timezone.now()}
    fields["current_session_id"] = session_id if to == InstanceStatus.BUSY else None
    if served:
        fields["sessions_served"] = F("sessions_served") + 1
    if memory_rss_bytes is not None:
        fields["memory_rss_bytes"] = memory_rss_bytes
    if to == InstanceStatus.STOPPED:
        fields["stopped_at"] = timezone.now()
    movable = AgentInstance.objects.filter(pk=instance_id, status__in=sources_of(INSTANCE_TRANSITIONS, to))
    if not movable.update(**fields):
        raise instance_refusal(instance_id, to)
    if to == InstanceStatus.BUSY and bind:
        Session.objects.filter(pk=session_id).update(instance_id=instance_id)


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
    return instances_stop(instance_ids=dead, reason=reason)


def instances_heartbeat(*, instance_ids: list, memory_rss_bytes: int) -> set:
    """Heartbeat of a process's instances; the ids of those whose rows were stopped meanwhile (by
    another process's housekeeping, say), which must not serve again."""
    AgentInstance.objects.filter(pk__in=instance_ids).exclude(status=InstanceStatus.STOPPED).update(
        heartbeat_at=timezone.now(), memory_rss_bytes=memory_rss_bytes
    )
    return set(AgentInstance.objects.filter(pk__in=instance_ids, status=InstanceStatus.STOPPED)
               .values_list("pk", flat=True))


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
    return instances_stop(instance_ids=stale, reason=reason)


@transaction.atomic
def instances_stop(*, instance_ids: list, reason: str) -> int:
    """Stop these instances (their process is gone or going) and fail the sessions they were running."""
    if not instance_ids:
        return 0
    sessions_fail_running(reason=reason, instance_ids=instance_ids)
    AgentInstance.objects.filter(pk__in=instance_ids).update(
        status=InstanceStatus.STOPPED, current_session=None, stopped_at=timezone.now()
    )
    return len(instance_ids)
