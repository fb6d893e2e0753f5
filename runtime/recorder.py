"""Persistence of a run: every message, tool execution, source and artifact, as it happens.

Each method is one unit of work (one transaction) crossing into the synchronous
services. The recorder keeps the next message sequence number of the session,
so appends need no extra read.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from runtime.agents.outcomes import Action
from runtime.db import db
from runtime.tools.base import SourceRef, ToolContext
from sessions_app import services as session_services


def progress_of(ctx: ToolContext) -> dict[str, Any]:
    """The session columns that mirror the in-memory run state."""
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
            "tool_counts": ctx.tool_counts,
            "last_tool": ctx.extra.get("last_tool", ""),
            "last_offered": ctx.extra.get("last_offered"),
            "sources": len(ctx.sources),
            "delegations": ctx.extra.get("delegations", []),
        },
    }


class SessionRecorder:
    """Implements the tools' ``SessionStore`` and the loop's history writes.

    The step that ends a run (final answer, clarification) is not written on its own:
    it is held in ``final_step`` and written by the run's end, in the same statement
    (one database crossing fewer per session; nothing is held past the end).
    """

    def __init__(self, next_seq: int) -> None:
        self.next_seq = next_seq
        self.final_step: dict[str, Any] | None = None

    async def append_messages(self, ctx: ToolContext, messages: list[dict[str, Any]]) -> None:
        self.next_seq = await db(session_services.session_step_record)(
            session_id=ctx.session_id, messages=messages, first_seq=self.next_seq, **progress_of(ctx)
        )

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
        self.next_seq = await db(session_services.session_step_record)(
            session_id=ctx.session_id, messages=messages, first_seq=self.next_seq, execution=execution,
            **progress_of(ctx),
        )

    def take_final_step(self) -> dict[str, Any] | None:
        step, self.final_step = self.final_step, None
        return step

    async def save_sources(self, session_id: str, sources: list[SourceRef]) -> None:
        await db(session_services.sources_save)(session_id=session_id, sources=[asdict(s) for s in sources])

    async def save_artifact(self, session_id: str, *, name: str, kind: str, content: str, metadata: dict) -> int:
        artifact = await db(session_services.artifact_create)(
            session_id=session_id, name=name, kind=kind, content=content, metadata=metadata
        )
        return artifact.pk
