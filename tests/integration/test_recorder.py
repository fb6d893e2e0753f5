"""The run's recorder: a step's write is sent as the step ends and the run goes on while it
commits; writes land in order, as snapshots of the run when they were sent, and a failed write
surfaces at the next write or at ``flush`` (the run's end)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connection

from runtime.recorder import SessionRecorder
from runtime.tools.base import ToolContext
from sessions_app import services as session_services
from sessions_app.models import Session, SessionMessage
from tests.factories import make_session

pytestmark = pytest.mark.django_db(transaction=True)  # the writes commit on the runtime's own threads


@pytest.fixture
async def run():
    session = await sync_to_async(make_session)()
    recorder = SessionRecorder(next_seq=0)
    ctx = ToolContext(session_id=str(session.pk), task="t", store=recorder)
    yield ctx, recorder
    await recorder.flush()


def _stored(session_id: str):
    messages = list(SessionMessage.objects.filter(session_id=session_id).order_by("seq")
                    .values_list("seq", "message__content"))
    return messages, Session.objects.get(pk=session_id)


async def test_the_run_goes_on_while_a_step_commits(run, monkeypatch):
    ctx, recorder = run
    release, entered = threading.Event(), threading.Event()
    original = session_services.session_step_record

    def slow(**kwargs):
        entered.set()
        assert release.wait(10), "the write was never released"
        try:
            return original(**kwargs)
        finally:
            connection.close()  # this worker thread's connection; the test database is dropped later

    monkeypatch.setattr(session_services, "session_step_record", slow)
    ctx.iteration = 1
    await recorder.append_messages(ctx, [{"role": "assistant", "content": "a"}])  # returns: the write is held
    assert await sync_to_async(entered.wait)(10)
    assert (await sync_to_async(_stored)(ctx.session_id))[0] == []
    release.set()
    await recorder.flush()
    assert (await sync_to_async(_stored)(ctx.session_id))[0] == [(0, "a")]


async def test_writes_land_in_order_as_snapshots_of_the_run(run):
    ctx, recorder = run
    ctx.iteration, ctx.tool_counts["web_search_tool"] = 1, 1
    ctx.extra["delegations"] = [{"template": "a"}]
    await recorder.append_messages(ctx, [{"role": "assistant", "content": "a"}])
    ctx.iteration, ctx.tool_counts["web_search_tool"] = 2, 2  # the run moves on while the write is out
    ctx.extra["delegations"].append({"template": "b"})
    await recorder.flush()
    messages, session = await sync_to_async(_stored)(ctx.session_id)
    assert messages == [(0, "a")]
    assert session.iteration == 1
    assert session.context["tool_counts"] == {"web_search_tool": 1}
    assert session.context["delegations"] == [{"template": "a"}]

    await recorder.append_messages(ctx, [{"role": "user", "content": "b"}, {"role": "user", "content": "c"}])
    await recorder.append_messages(ctx, [{"role": "user", "content": "d"}])  # waits for the one before
    await recorder.flush()
    messages, session = await sync_to_async(_stored)(ctx.session_id)
    assert messages == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]
    assert recorder.next_seq == 4
    assert session.iteration == 2 and session.context["tool_counts"] == {"web_search_tool": 2}


async def test_a_failed_write_surfaces_at_the_next_write_and_at_flush(run, monkeypatch):
    ctx, recorder = run

    def broken(**kwargs):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(session_services, "session_step_record", broken)
    await recorder.append_messages(ctx, [{"role": "assistant", "content": "a"}])
    with pytest.raises(DatabaseError, match="went away"):
        await recorder.append_messages(ctx, [{"role": "user", "content": "b"}])
    await recorder.append_messages(ctx, [{"role": "user", "content": "c"}])
    with pytest.raises(DatabaseError, match="went away"):
        await recorder.flush()
    await recorder.flush()  # reported once: nothing is left in flight


async def test_a_cancelled_wait_leaves_the_write_pending_for_the_end(run, monkeypatch):
    """A run cancelled while it waits for a step's write: the write goes on, and the end's flush
    still waits for it (so the end is recorded after it, never before)."""
    ctx, recorder = run
    release = threading.Event()
    original = session_services.session_step_record

    def held(**kwargs):
        assert release.wait(10), "the write was never released"
        try:
            return original(**kwargs)
        finally:
            connection.close()

    monkeypatch.setattr(session_services, "session_step_record", held)
    await recorder.append_messages(ctx, [{"role": "assistant", "content": "a"}])
    waiting = asyncio.create_task(recorder.append_messages(ctx, [{"role": "user", "content": "b"}]))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await recorder.flush()  # the end's flush: the first write, not lost to the cancel
    assert (await sync_to_async(_stored)(ctx.session_id))[0] == [(0, "a")]
