"""Runs child sessions for agent tools on the process's pool (``Delegator`` of agent_tool)."""

from __future__ import annotations

import logging

from platform_site.errors import PlatformError
from runtime.db import db
from runtime.events import EventSink
from runtime.tools.agent_tool import ChildResult
from runtime.tools.base import ToolContext, ToolError
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services
from sessions_app.models import SessionState
from templates_app import selectors as template_selectors

logger = logging.getLogger("runtime.delegation")


def _open_child(spec, task: str, parent_id: str, depth: int, instance_id) -> tuple[str, list]:
    content = spec.content.prompt_pack.render("initial_user_request", task=task, current_date=_today())
    messages = [{"role": "user", "content": content}]
    session = session_services.session_start(
        instance_id=instance_id, template_version_id=spec.version_id, task=task, messages=messages,
        parent_id=parent_id, depth=depth,  # the child belongs to the key its parent belongs to
        api_key_id=session_selectors.session_get(session_id=parent_id).api_key_id,
    )
    return str(session.pk), messages


def _today() -> str:
    import datetime as dt

    return dt.date.today().isoformat()


def _close_waiting_child(session_id: str) -> None:
    session_services.session_transition(
        session_id=session_id, to=SessionState.CANCELLED,
        error="the agent asked for clarification; its questions were returned to the delegating agent",
    )


class PoolDelegator:
    def __init__(self, runtime) -> None:
        self.runtime = runtime

    async def run_child(self, *, parent: ToolContext, template: str, task: str, lineage: tuple[str, ...],
                        depth: int) -> ChildResult:
        pool = self.runtime.pool
        try:
            spec = await db(template_selectors.template_spec_get)(name=template)
            instance = await pool.acquire(spec)
        except PlatformError as exc:
            raise ToolError(f"cannot delegate to {template}: {exc.message}") from None
        try:
            session_id, messages = await db(_open_child)(spec, task, parent.session_id, depth, instance.id)
        except BaseException:
            await pool.release(instance)
            raise
        logger.info("delegating to %s as child session %s", template, session_id)
        try:
            result = await instance.run_session(
                session_id, EventSink(session_id), task=task, fresh_history=messages,
                lineage=lineage, depth=depth, delegator=self,
            )
        finally:
            await pool.release(instance, still_active=instance.spec.is_active_version)
        questions: tuple[str, ...] = ()
        if result.state == SessionState.WAITING_FOR_CLARIFICATION:
            questions = tuple(q for q in result.text.splitlines() if q.strip())
            await db(_close_waiting_child)(session_id)
        view = await db(session_selectors.session_get)(session_id=session_id)
        return ChildResult(
            session_id=session_id, state=view.state, text=result.text, iterations=view.iteration,
            tool_calls=view.tool_calls, prompt_tokens=view.prompt_tokens, completion_tokens=view.completion_tokens,
            questions=questions,
        )
