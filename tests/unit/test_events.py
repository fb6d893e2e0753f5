"""Run events as chunks on the consumer's queue."""

from __future__ import annotations

import asyncio

from runtime.events import EventSink


async def test_the_first_chunk_reaches_the_waiting_consumer_before_the_run_goes_on():
    """``start`` gives the loop one turn: a consumer waiting on the queue takes the chunk then, not
    after the run's next step (its first LLM request, built without yielding)."""
    queue: asyncio.Queue = asyncio.Queue()
    taken: list[dict] = []

    async def consumer() -> None:
        taken.append(await queue.get())

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)  # the consumer is waiting on the queue
    await EventSink("s-1", queue).start()
    assert [c["id"] for c in taken] == ["0-start"]
    assert taken[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    await task

