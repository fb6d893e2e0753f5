"""Persistence of a run: every message, tool execution, source and artifact, as it happens.

Each method is one unit of work (one transaction) crossing into the synchronous
services. The recorder keeps the next message sequence number of the session,
so appends need no extra read.

A step's write is sent as the step ends, and the run goes on while it commits: the next
LLM call overlaps it (interleaved A/B: ~0.3 ms less per step). Writes stay in order: each one, and
the run's end (``flush``), waits for the one before, whose failure surfaces there. A new
session's own write (``opening``) is the first of them: the run starts while it commits.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from runtime.agents.outcomes import Action
from runtime.db import db, db_start
from runtime.tools.base import SourceRef, ToolContext
from sessions_app import services as session_services


class SessionNotOpened(Exception):
    """The session's opening write failed: there is no session to record into (``flush``)."""


def progress_of(ctx: ToolContext) -> dict[str, Any]:
    """The session columns that mirror the in-memory run state (a snapshot: the containers the
    run goes on changing are copied, since a write may serialise them after the run moved on)."""
    return {
        "iteration": ctx.iteration,
        "searches_used": ctx.searches_used,
        "clarifications_used": ctx.clarifications_used,
        "prompt_tokens": ctx.extra.get("prompt_tokens", 0),
        "completion_tokens": ctx.extra.get("completion_tokens", 0),
        "stage": ctx.extra.get("stage", ""),
        "current_step_reasoning": ctx.current_reasoning,
        "context": {
            "plan": ctx.plan,
            "tool_counts": dict(ctx.tool_counts),
            "last_tool": ctx.extra.get("last_tool", ""),
            "last_offered": ctx.extra.get("last_offered"),
            "sources": len(ctx.sources),
            "delegations": list(ctx.extra.get("delegations", [])),
        },
    }


class SessionRecorder:
    """Implements the tools' ``SessionStore`` and the loop's history writes.

    The step that ends a run (final answer, clarification) is not written on its own:
    it is held in ``final_step`` and written by the run's end, in the same statement
    (one database crossing fewer per session; nothing is held past the end).
    """

    def __init__(self, next_seq: int, *, opening: asyncio.Future | None = None) -> None:
        self.next_seq = next_seq
        self.final_step: dict[str, Any] | None = None
        self._opening = opening  # the session's own write, if the run started before it was in
        self._pending: asyncio.Future | None = opening

    async def opening_error(self) -> Exception | None:
        """Why the session is not in the database (its opening write failed), or None: it is
        (the write waited for, if still in flight)."""
        if self._opening is None:
            return None
        try:
            await asyncio.shield(self._opening)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return exc
        return None

    async def flush(self) -> None:
        """Wait for the step write in flight, if any (raising its error, once; ``SessionNotOpened``
        for the opening's). A cancel of the waiting task leaves the write going and still pending,
        so the run's end waits for it."""
        pending = self._pending
        if pending is None:
            return
        try:
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if pending is self._opening:
                raise SessionNotOpened(str(exc)) from exc
            raise
        finally:
            if pending.done():
                self._pending = None

    async def _step(self, ctx: ToolContext, messages: list[dict[str, Any]], **kwargs: Any) -> None:
        """Send a step's write (after the previous one is in) and go on while it commits."""
        await self.flush()
        self._pending = db_start(session_services.session_step_record, session_id=ctx.session_id,
                                 messages=messages, first_seq=self.next_seq, **kwargs, **progress_of(ctx))
        self.next_seq += len(messages)

    async def append_messages(self, ctx: ToolContext, messages: list[dict[str, Any]]) -> None:
        await self._step(ctx, messages)

    async def record_action(self, ctx: ToolContext, *, action: Action, tool_id: int, messages: list[dict[str, Any]],
                            status: str, error: str, result: str, duration_ms: float, last: bool = False) -> None:
        """The assistant's tool call and its result, with the execution record, in one transaction;
        ``last``: the step ends the run, held for the run's end to write (``final_step``)."""
        execution = {
            "tool_name": action.name, "tool_id": tool_id, "tool_call_id": action.call_id,
            "iteration": ctx.iteration, "arguments": action.arguments, "result": result,
            "status": status, "error": error, "duration_ms": duration_ms,
        }
        if last:
            self.final_step = {"messages": messages, "first_seq": self.next_seq, "execution": execution}
            self.next_seq += len(messages)
            return
        await self._step(ctx, messages, execution=execution)

    def take_final_step(self) -> dict[str, Any] | None:
        step, self.final_step = self.final_step, None
        return step

    async def save_sources(self, session_id: str, sources: list[SourceRef]) -> None:
        await self.flush()
        await db(session_services.sources_save)(session_id=session_id, sources=[asdict(s) for s in sources])

    async def save_artifact(self, session_id: str, *, name: str, kind: str, content: str, metadata: dict) -> int:
        await self.flush()
        artifact = await db(session_services.artifact_create)(
            session_id=session_id, name=name, kind=kind, content=content, metadata=metadata
        )
        return artifact.pk
