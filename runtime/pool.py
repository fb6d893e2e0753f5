"""AgentPool: reusable instances per template version, with limits and bounded waits."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from platform_site import observability as obs
from runtime.config import RuntimeSettings
from runtime.errors import PoolExhausted
from runtime.instance import AgentInstance
from templates_app.specs import TemplateSpec

logger = logging.getLogger("runtime.pool")


class AgentPool:
    """Hands out idle instances; creates one below the limits; else waits, then 503.

    Limits: ``pool_per_version`` instances per template version and
    ``pool_global`` in all. Instances of a version that is no longer active are
    stopped when they come back (drained).
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self._instances: dict[int, list[AgentInstance]] = defaultdict(list)
        self._idle: dict[int, list[AgentInstance]] = defaultdict(list)
        self._creating = 0
        self._changed = asyncio.Condition()

    @property
    def size(self) -> int:
        return sum(len(v) for v in self._instances.values())

    def instances(self) -> list[AgentInstance]:
        return [i for group in self._instances.values() for i in group]

    async def acquire(self, spec: TemplateSpec, *, timeout_s: float | None = None) -> AgentInstance:
        timeout = self.settings.pool_acquire_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        async with self._changed:
            while True:
                idle = self._idle[spec.version_id]
                if idle:
                    instance = idle.pop()
                    obs.POOL_WAIT_SECONDS.observe(loop.time() - started)
                    self._gauge()
                    return instance
                if self._can_create(spec):
                    self._creating += 1
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    obs.POOL_EXHAUSTED.inc()
                    raise PoolExhausted(
                        f"All agent instances for {spec.name} v{spec.version} are busy "
                        f"(pool limits: {self.settings.pool_per_version} per version, "
                        f"{self.settings.pool_global} in all); retry later"
                    )
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    continue
        try:
            instance = await AgentInstance.create(spec=spec, settings=self.settings)
        finally:
            async with self._changed:
                self._creating -= 1
        async with self._changed:
            self._instances[spec.version_id].append(instance)
        obs.POOL_WAIT_SECONDS.observe(loop.time() - started)
        self._gauge()
        return instance

    def _gauge(self) -> None:
        idle = sum(len(v) for v in self._idle.values())
        obs.POOL_INSTANCES.labels("idle").set(idle)
        obs.POOL_INSTANCES.labels("busy").set(self.size - idle)

    def _can_create(self, spec: TemplateSpec) -> bool:
        mine = len(self._instances[spec.version_id])
        return mine < self.settings.pool_per_version and self.size + self._creating < self.settings.pool_global

    async def release(self, instance: AgentInstance, *, still_active: bool = True) -> None:
        """Return an instance; one whose version is superseded is stopped instead."""
        if not still_active:
            await self._discard(instance)
            return
        async with self._changed:
            self._idle[instance.spec.version_id].append(instance)
            self._changed.notify_all()
        self._gauge()

    async def _discard(self, instance: AgentInstance) -> None:
        async with self._changed:
            group = self._instances[instance.spec.version_id]
            if instance in group:
                group.remove(instance)
            self._changed.notify_all()
        await instance.close()

    async def drain(self, *, keep_version_ids: set[int]) -> int:
        """Stop idle instances whose version is not in ``keep_version_ids`` (superseded)."""
        return await self._drop_idle(lambda i: i.spec.version_id not in keep_version_ids)

    async def drop_stopped(self, instance_ids: set) -> int:
        """Drop idle instances whose rows were stopped elsewhere (a busy one leaves the pool when
        its next session cannot open on it)."""
        return await self._drop_idle(lambda i: i.id in instance_ids)

    async def _drop_idle(self, doomed_if) -> int:
        async with self._changed:
            doomed = [i for idle in self._idle.values() for i in idle if doomed_if(i)]
            for vid, idle in self._idle.items():
                self._idle[vid] = [i for i in idle if not doomed_if(i)]
        for instance in doomed:
            await self._discard(instance)
        return len(doomed)

    async def close(self) -> None:
        for instance in self.instances():
            await self._discard(instance)
