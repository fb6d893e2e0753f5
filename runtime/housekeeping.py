"""Background upkeep of a server process: heartbeats, draining superseded instances, reaping dead ones.

Every ``interval_s``: the process renews its place in the cancel group; its instances send a
heartbeat (with RSS), and idle ones whose rows another process stopped leave the pool;
idle instances of a template version that is no longer active are stopped;
instances of any host whose heartbeat is older than ``stale_after_s`` (their
process died) are stopped and their running sessions failed.
"""

from __future__ import annotations

import asyncio
import logging

from platform_site import observability as obs
from runtime.db import db
from sessions_app import instances as instance_services

logger = logging.getLogger("runtime.housekeeping")


def _active_version_ids(template_ids: set[int]) -> set[int]:
    from templates_app.models import AgentTemplate

    return set(
        AgentTemplate.objects.filter(pk__in=template_ids, is_active=True).values_list("active_version_id", flat=True)
    )


async def housekeeping_once(runtime, *, stale_after_s: float) -> None:
    await runtime.join_runtimes_group()  # renewed, so the channel layer never drops this process
    pool = runtime.pool
    instances = pool.instances()
    if instances:
        stopped = await db(instance_services.instances_heartbeat)(
            instance_ids=[i.id for i in instances], memory_rss_bytes=obs.process_rss()
        )
        if stopped and (dropped := await pool.drop_stopped(stopped)):
            logger.warning("dropped %d idle instance(s) whose rows another process stopped", dropped)
        active = await db(_active_version_ids)({i.spec.template_id for i in instances})
        await pool.drain(keep_version_ids=active)
    reaped = await db(instance_services.instances_stop_stale)(
        older_than_s=stale_after_s, reason="the server process running this session stopped sending heartbeats"
    )
    if reaped:
        logger.warning("stopped %d instance(s) without heartbeat", reaped)


async def housekeeping_loop(runtime, *, interval_s: float = 10.0, stale_after_s: float = 90.0) -> None:
    while True:
        try:
            await housekeeping_once(runtime, stale_after_s=stale_after_s)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("housekeeping failed")
        await asyncio.sleep(interval_s)
