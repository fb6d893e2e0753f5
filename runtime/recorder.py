"""Persistence of a run: every message, tool execution, source and artifact, as it happens.

Each method crosses into the synchronous services once per unit of work.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from runtime.agents.outcomes import Action
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
        },
    }


def _record_action(session_id, *, action: Action, tool_id, message, status, error, result, duration_ms, iteration, progress):
    with transaction.atomic():
        session_services.session_messages_append(session_id=session_id, messages=[message])
        session_services.tool_execution_record(
            session_id=session_id, tool_name=action.name, tool_id=tool_id, tool_call_id=action.call_id,
            iteration=iteration, arguments=action.arguments, result=result, status=status, error=error,
            duration_ms=duration_ms,
        )
        session_services.session_progress_save(session_id=session_id, **progress)


def _append(session_id, messages, progress):
    with transaction.atomic():
        session_services.session_messages_append(session_id=session_id, messages=messages)
        session_services.session_progress_save(session_id=session_id, **progress)


class SessionRecorder:
    """Implements the tools' ``SessionStore`` and the loop's history writes."""

    async def append_messages(self, ctx: ToolContext, messages: list[dict[str, Any]]) -> None:
        await sync_to_async(_append)(ctx.session_id, messages, progress_of(ctx))

    async def record_action(self, ctx: ToolContext, *, action: Action, tool_id: int, message: dict[str, Any],
                            status: str, error: str, result: str, duration_ms: float) -> None:
        await sync_to_async(_record_action)(
            ctx.session_id, action=action, tool_id=tool_id, message=message, status=status, error=error,
            result=result, duration_ms=duration_ms, iteration=ctx.iteration, progress=progress_of(ctx),
        )

    async def save_sources(self, session_id: str, sources: list[SourceRef]) -> None:
        await sync_to_async(session_services.sources_save)(session_id=session_id, sources=[asdict(s) for s in sources])

    async def save_artifact(self, session_id: str, *, name: str, kind: str, content: str, metadata: dict) -> int:
        artifact = await sync_to_async(session_services.artifact_create)(
            session_id=session_id, name=name, kind=kind, content=content, metadata=metadata
        )
        return artifact.pk
