"""A server process joins the cancel group once (not per session) and housekeeping renews its
place, so a cancel sent to the group from any process reaches the run wherever it is."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from runtime.chat import RUNTIMES_GROUP, ChatRun, Runtime
from runtime.config import RuntimeSettings
from runtime.housekeeping import housekeeping_once

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def runtime(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    runtime = Runtime(RuntimeSettings.from_django())
    await runtime.ensure_started()
    yield runtime
    for task in runtime._background:
        task.cancel()
    await asyncio.gather(*runtime._background, return_exceptions=True)


async def test_a_process_joins_once_and_housekeeping_renews_it(runtime):
    layer = get_channel_layer()
    assert runtime.channel in layer.groups[RUNTIMES_GROUP]
    await layer.group_discard(RUNTIMES_GROUP, runtime.channel)  # what the layer's group expiry does
    assert runtime.channel not in layer.groups.get(RUNTIMES_GROUP, {})
    await housekeeping_once(runtime, stale_after_s=90)
    assert runtime.channel in layer.groups[RUNTIMES_GROUP]


async def test_a_cancel_sent_to_the_group_reaches_the_run(runtime):
    async def slow_run():
        await asyncio.sleep(30)

    task = asyncio.create_task(slow_run())
    runtime.running["s-1"] = ChatRun(session_id="s-1", queue=asyncio.Queue(), task=task)
    other = asyncio.create_task(asyncio.sleep(30))
    runtime.running["s-2"] = ChatRun(session_id="s-2", queue=asyncio.Queue(), task=other)
    await get_channel_layer().group_send(RUNTIMES_GROUP, {"type": "session.cancel", "session_id": "s-1"})
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert not other.done()  # only the session named
    other.cancel()
