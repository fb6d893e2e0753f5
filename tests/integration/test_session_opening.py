"""A new session's write, its response and its first LLM call overlap: the run starts while the
session's row goes in, its writes land after it, a session that cannot be opened fails with the
reason, records nothing and leaves its instance free for the next one, and a cancel that comes
meanwhile ends it cancelled. An instance whose row another process stopped leaves the pool."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import threading
import time

import pytest
from django.db import DatabaseError, connection

from runtime.chat import ChatRequest, Runtime
from runtime.config import RuntimeSettings
from sessions_app import instances as instance_services
from sessions_app import services as session_services
from sessions_app.models import AgentInstance, InstanceStatus, Session, SessionMessage
from tests.e2e.helpers import final, think
from tests.fakes.llm_server import tool_call

MODEL = "research_agent"


@pytest.fixture
def defaults(transactional_db):
    from runtime.defaults import load_defaults

    load_defaults()


@pytest.fixture
async def runtime(defaults, scripted_llm):
    runtime = Runtime(dataclasses.replace(RuntimeSettings.from_django(), llm_base_url=scripted_llm.base_url))
    yield runtime
    for task in runtime._background:
        task.cancel()
    await runtime.pool.close()
    await asyncio.get_running_loop().shutdown_default_executor()  # the db() worker threads
    gc.collect()  # ... and their connections, so the test database can be dropped


def two_calls(body: dict):
    """The forced reasoning call, then the final answer (each session: two LLM calls)."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("function", {}).get("name") == "reasoning_tool":
        return think()
    return tool_call("final_answer_tool", final("4"))


def _wait_opened(session_id: str, timeout: float = 10) -> None:
    """Until the session's opening write has committed (its row is in)."""
    deadline = time.monotonic() + timeout
    while not Session.objects.filter(pk=session_id).exists():
        assert time.monotonic() < deadline, "the session's opening write did not commit"
        time.sleep(0.005)


def request(text: str = "What is 2+2?") -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[{"role": "user", "content": text}])


def _on_worker(fn):
    """``fn`` as a db() worker runs it, closing that thread's connection after (the test database
    is dropped later)."""
    def call(**kwargs):
        try:
            return fn(**kwargs)
        finally:
            connection.close()
    return call


def _stored(session_id: str):
    session = Session.objects.filter(pk=session_id).first()
    messages = list(SessionMessage.objects.filter(session_id=session_id).order_by("seq").values_list("role", flat=True))
    return session, messages


async def test_the_first_llm_call_overlaps_the_sessions_write(runtime, scripted_llm, monkeypatch):
    asked = threading.Event()
    scripted_llm.set_responder(lambda body: (asked.set(), two_calls(body))[1])
    original = session_services.session_start

    def held_until_asked(**kwargs):  # in only once the run has called the LLM: it must not wait for us
        assert asked.wait(10), "the run did not call the LLM before the session's write was in"
        return original(**kwargs)

    monkeypatch.setattr(session_services, "session_start", _on_worker(held_until_asked))
    chat_run = await runtime.open(request(), api_key_id=None)  # at once: the write is on its way
    result = await chat_run.task
    assert (result.state, result.text) == ("completed", "4")
    session, roles = await asyncio.to_thread(_on_worker(lambda: _stored(chat_run.session_id)))
    assert session.state == "completed" and session.iteration == 1
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]  # the first step's write came after the row


async def _failed_opening(runtime, monkeypatch, failing) -> list:
    """A session whose opening ``failing`` breaks: it fails with the reason and records nothing;
    the ids of the instances it was opened on."""
    instance_ids = []

    def opening(**kwargs):
        instance_ids.append(kwargs["instance_id"])
        return failing(**kwargs)

    monkeypatch.setattr(session_services, "session_start", _on_worker(opening))
    failed = await (await runtime.open(request(), api_key_id=None)).task
    assert (failed.state, failed.error_code) == ("failed", "internal_error")
    assert failed.text.startswith("The session could not be opened: ")
    assert not runtime.running
    counts = await asyncio.to_thread(_on_worker(lambda: (Session.objects.count(), SessionMessage.objects.count())))
    assert counts == (0, 0)
    return instance_ids, failed.text


async def _next_session_completes(runtime, monkeypatch, original):
    monkeypatch.setattr(session_services, "session_start", _on_worker(original))
    chat_run = await runtime.open(request(), api_key_id=None)
    assert (await chat_run.task).state == "completed"


async def test_a_database_error_at_the_opening_records_nothing_and_frees_the_instance(
        runtime, scripted_llm, monkeypatch, caplog):
    scripted_llm.set_responder(two_calls)
    original = session_services.session_start

    def failing(**kwargs):
        raise DatabaseError("the database went away")

    (instance_id,), reason = await _failed_opening(runtime, monkeypatch, failing)
    assert "went away" in reason
    logged = [r.getMessage() for r in caplog.records if r.name == "runtime.instance"]
    assert logged and all("could not be opened" in m for m in logged)  # reported once, not as a crash
    await _next_session_completes(runtime, monkeypatch, original)
    assert [i.id for i in runtime.pool.instances()] == [instance_id]  # the same instance served it
    row = await asyncio.to_thread(_on_worker(lambda: AgentInstance.objects.get(pk=instance_id)))
    assert (row.status, row.sessions_served) == (InstanceStatus.IDLE, 1)


async def test_an_instance_stopped_elsewhere_fails_its_opening_and_leaves_the_pool(runtime, scripted_llm, monkeypatch):
    scripted_llm.set_responder(two_calls)
    original = session_services.session_start

    def stopped_meanwhile(**kwargs):  # another process's housekeeping stopped the instance's row
        AgentInstance.objects.filter(pk=kwargs["instance_id"]).update(status=InstanceStatus.STOPPED)
        return original(**kwargs)

    (stopped_id,), reason = await _failed_opening(runtime, monkeypatch, stopped_meanwhile)
    assert "cannot go from stopped to busy" in reason
    assert runtime.pool.instances() == []  # dropped, not handed out again to fail every session
    await _next_session_completes(runtime, monkeypatch, original)
    (fresh,) = runtime.pool.instances()
    assert fresh.id != stopped_id


async def test_a_session_cancelled_while_it_opens_ends_cancelled(runtime, scripted_llm, monkeypatch):
    scripted_llm.set_responder(two_calls)
    original, entered, release = session_services.session_start, threading.Event(), threading.Event()

    def slow(**kwargs):
        entered.set()
        assert release.wait(10)
        return original(**kwargs)

    monkeypatch.setattr(session_services, "session_start", _on_worker(slow))
    chat_run = await runtime.open(request(), api_key_id=None)
    assert await asyncio.to_thread(entered.wait, 10)
    canceller = asyncio.create_task(runtime.cancel(chat_run.session_id))  # as when the client goes away
    await asyncio.sleep(0.05)
    assert not canceller.done()  # the run's end waits for the session's write ...
    release.set()
    assert await canceller == "cancelled"  # ... and then records it
    session, _ = await asyncio.to_thread(_on_worker(lambda: _stored(chat_run.session_id)))
    assert session.state == "cancelled"
    (instance,) = runtime.pool.instances()
    row = await asyncio.to_thread(_on_worker(lambda: AgentInstance.objects.get(pk=instance.id)))
    assert row.status == InstanceStatus.IDLE


async def test_a_cancel_before_the_runs_first_step_still_ends_it_and_frees_the_instance(runtime, scripted_llm):
    scripted_llm.set_responder(two_calls)
    chat_run = await runtime.open(request(), api_key_id=None)
    assert await runtime.cancel(chat_run.session_id) == "cancelled"  # the run has not taken a step yet
    (instance,) = runtime.pool.instances()
    assert runtime.pool._idle[instance.spec.version_id] == [instance]  # back in the pool
    row = await asyncio.to_thread(_on_worker(lambda: AgentInstance.objects.get(pk=instance.id)))
    assert row.status == InstanceStatus.IDLE


async def test_housekeeping_drops_an_idle_instance_stopped_elsewhere(runtime, scripted_llm):
    from runtime.housekeeping import housekeeping_once

    scripted_llm.set_responder(two_calls)
    assert (await (await runtime.open(request(), api_key_id=None)).task).state == "completed"
    (instance,) = runtime.pool.instances()
    await asyncio.to_thread(_on_worker(  # another process's housekeeping stopped it
        lambda: AgentInstance.objects.filter(pk=instance.id).update(status=InstanceStatus.STOPPED)))
    await housekeeping_once(runtime, stale_after_s=90)
    assert runtime.pool.instances() == []  # gone before a session could fail on it
    assert (await (await runtime.open(request(), api_key_id=None)).task).state == "completed"
    (fresh,) = runtime.pool.instances()
    assert fresh.id != instance.id


async def _held_at_its_first_llm_call(runtime, scripted_llm):
    """A run that waits in its first LLM call (its session opened) until ``release`` is set."""
    asked, release = threading.Event(), threading.Event()

    def first_call_held(body):
        if not asked.is_set():
            asked.set()
            assert release.wait(10)
        return two_calls(body)

    scripted_llm.set_responder(first_call_held)
    chat_run = await runtime.open(request(), api_key_id=None)
    assert await asyncio.to_thread(asked.wait, 10)
    # the session's opening write overlaps that call: wait for it to commit
    await asyncio.to_thread(_on_worker(lambda: _wait_opened(chat_run.session_id)))
    (instance,) = runtime.pool.instances()
    return chat_run, instance, release


async def test_a_run_whose_instance_was_reaped_meanwhile_ends_and_its_instance_leaves_the_pool(
        runtime, scripted_llm):
    # this reaper comes after the opening committed (one that came while it commits finds no
    # session to fail yet: the next test)
    chat_run, instance, release = await _held_at_its_first_llm_call(runtime, scripted_llm)
    await asyncio.to_thread(_on_worker(  # what another process's reaper does when heartbeats are late
        lambda: instance_services.instances_stop(instance_ids=[instance.id], reason="stopped sending heartbeats")))
    release.set()
    result = await chat_run.task  # the end cannot be recorded, but the run still ends without an error
    assert runtime.pool.instances() == []
    session, roles = await asyncio.to_thread(_on_worker(lambda: _stored(chat_run.session_id)))
    assert session.state == "failed" and session.error == "stopped sending heartbeats"
    assert roles[-1] == "tool"  # the history is whole: the final step was written on its own
    # the client is told what the row says, not the answer the run would have recorded
    assert (result.state, result.error_code) == ("failed", "invalid_transition")
    assert result.text == "The session was ended elsewhere while it ran (failed: stopped sending heartbeats)"


async def test_a_run_whose_instance_was_stopped_before_its_session_could_be_failed_leaves_the_pool(
        runtime, scripted_llm):
    """A reaper that came while the session opened stopped the instance's row but found no session
    to fail: the run completes, and the instance is dropped rather than handed out again."""
    chat_run, instance, release = await _held_at_its_first_llm_call(runtime, scripted_llm)
    await asyncio.to_thread(_on_worker(  # the row alone: its session was not bound when the reaper came
        lambda: AgentInstance.objects.filter(pk=instance.id).update(status=InstanceStatus.STOPPED)))
    release.set()
    assert (await chat_run.task).state == "completed"
    session, _ = await asyncio.to_thread(_on_worker(lambda: _stored(chat_run.session_id)))
    assert session.state == "completed"
    assert runtime.pool.instances() == []  # not back in the pool, where the next opening would fail on it
    assert (await (await runtime.open(request(), api_key_id=None)).task).state == "completed"
    (fresh,) = runtime.pool.instances()
    assert fresh.id != instance.id
