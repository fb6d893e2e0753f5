"""AgentInstance: a worker pinned to one template version, reused across sessions.

It owns the clients that are expensive to build (the LLM client with its
connection pool, an HTTP client, the search provider) and serves one session at
a time. ``reset()`` drops everything that belonged to the last session.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from platform_site import observability as obs
from platform_site.errors import InvalidTransition
from runtime.agents.base import SYSTEM_TOOL_NAMES, ModelMisbehaved
from runtime.agents.kinds import agent_class
from runtime.agents.outcomes import Continue, Finish, WaitForUser
from runtime.config import RuntimeSettings
from runtime.db import db
from runtime.events import EventSink
from runtime.llm import LLMClient, LLMError, LLMSettings
from runtime.local_llm import LocalLLMError, attach
from runtime.net import public_http_client, shared_ssl_context
from runtime.recorder import SessionNotOpened, SessionRecorder, progress_of
from runtime.rules import parse_rules, policy_rules
from runtime.tools.agent_tool import AgentExecutable
from runtime.tools.base import SourceRef, ToolContext
from runtime.tools.executors import (
    RISK_ORDER,
    Executable,
    RateLimitedExecutable,
    build_executable,
)
from runtime.tools.http_tool import HttpExecutable
from runtime.tools.search_providers import web_search_provider
from sessions_app import instances as instance_services
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services
from sessions_app.models import InstanceStatus, SessionState
from templates_app.specs import TemplateSpec

logger = logging.getLogger("runtime.instance")


@dataclass
class RunResult:
    session_id: str
    state: str
    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error_code: str = ""
    iteration: int = 0


def start_tool_names(spec: TemplateSpec) -> list[str]:
    """Tools loaded at session start: system, required, and (without tool search) the allowlist."""
    policy = spec.content.tool_policy
    retrieval = policy.searches
    names = list(SYSTEM_TOOL_NAMES) + policy.required_tools + ([] if retrieval else policy.allowlist)
    denied = set(policy.denylist)
    return [n for n in dict.fromkeys(names) if n not in denied]


def _load(session_id: str | None, tool_names: list[str]):
    """Tool specs (every run: hot-load) and, for a resumed session, its saved state."""
    from catalog.selectors import tool_specs_by_name

    saved = session_selectors.session_run_state(session_id=session_id) if session_id else None
    return saved, tool_specs_by_name(names=tool_names)


def _refused_end(session_id: str, final_step: dict | None, progress: dict) -> tuple[str, str]:
    """After an end the session's row refused: the run's final step written on its own (the
    history stays whole), and the state and error the row holds."""
    if final_step is not None:
        session_services.session_step_record(session_id=session_id, **final_step, **progress)
    view = session_selectors.session_get(session_id=session_id)
    return view.state, view.error


def _search_step(query: str, spec: TemplateSpec, facts: dict):
    from catalog.selectors import tool_specs_by_name
    from retrieval.toolsearch import tool_search_for_step

    outcome = tool_search_for_step(query=query, template=spec, facts=facts,
                                   top_k=spec.content.tool_policy.max_tools_in_prompt)
    return outcome, tool_specs_by_name(names=[r.name for r in outcome.results])


NO_ENDPOINT = "No LLM endpoint configured: set LLM_BASE_URL (or llm_config.base_url on the template)"


class AgentInstance:
    def __init__(self, *, spec: TemplateSpec, settings: RuntimeSettings, row_id: uuid.UUID,
                 llm_settings: LLMSettings | None = None, llm_problem: str = "") -> None:
        self.id = row_id
        self.spec = spec
        self.settings = settings
        tool_timeout = spec.content.execution_policy.tool_timeout_s
        # operator-configured services (the search API); destinations of http tools are another client
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(tool_timeout), verify=shared_ssl_context())
        self.public_http = self.http if settings.http_allow_private else public_http_client(timeout=tool_timeout)
        llm_settings = llm_settings or settings.llm_for(spec)
        self.llm = LLMClient(llm_settings) if llm_settings.base_url else None
        self.llm_problem = llm_problem or NO_ENDPOINT  # why self.llm is None: every session fails with it
        self.search = web_search_provider(settings)
        self.rules = policy_rules(
            max_iterations=spec.content.execution_policy.max_iterations,
            max_searches=spec.content.execution_policy.max_searches,
            max_clarifications=spec.content.execution_policy.max_clarifications,
        ) + parse_rules(spec.content.rules)
        self.status = InstanceStatus.IDLE
        self.sessions_served = 0
        self.current_session: str | None = None
        self._executables: dict[tuple[str, int], Executable] = {}
        self._kinds = {
            "http": lambda s: HttpExecutable(s, client=self.public_http, allow_private=settings.http_allow_private),
            "agent": lambda s: AgentExecutable(s, max_depth=settings.max_delegation_depth),
        }
        self._agent = None
        self._lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    async def create(cls, *, spec: TemplateSpec, settings: RuntimeSettings) -> AgentInstance:
        """Registered in the database; on the local backend, the local server runs first."""
        llm_settings, problem = settings.llm_for(spec), ""
        try:
            llm_settings = await attach(llm_settings, settings.local_llm)
        except LocalLLMError as exc:
            problem = f"Local LLM unavailable: {exc}"
        row = await db(instance_services.instance_register)(
            template_version_id=spec.version_id, host=socket.gethostname(), pid=os.getpid()
        )
        return cls(spec=spec, settings=settings, row_id=row.pk, llm_settings=llm_settings, llm_problem=problem)

    def reset(self) -> None:
        """Drop all state of the last session (agent, conversation, context)."""
        self._agent = None
        self.current_session = None

    def health(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "template": self.spec.name, "version": self.spec.version,
            "status": self.status, "sessions_served": self.sessions_served,
            "current_session": self.current_session,
        }

    async def close(self) -> None:
        await self.http.aclose()
        if self.public_http is not self.http:
            await self.public_http.aclose()
        if self.llm is not None:
            await self.llm.aclose()
        try:
            await self._transition(InstanceStatus.STOPPED)
        except InvalidTransition:  # its row was stopped already (by another process's housekeeping)
            self.status = InstanceStatus.STOPPED

    @property
    def usable(self) -> bool:
        """False once its row is known not to be ours to run sessions on (see ``_end``): the pool
        drops it instead of handing it out again."""
        return self.status != InstanceStatus.STOPPED

    async def _transition(self, to: str, session_id: str | None = None, served: bool = False) -> None:
        rss = obs.process_rss() if to == InstanceStatus.IDLE else None
        await db(instance_services.instance_transition)(
            instance_id=self.id, to=to, session_id=session_id, memory_rss_bytes=rss, served=served
        )
        self.status = to

    # -- running ------------------------------------------------------------------------------
    @property
    def uses_retrieval(self) -> bool:
        return self.spec.content.tool_policy.searches

    def tool_names(self) -> list[str]:
        return start_tool_names(self.spec)

    def _executable(self, spec) -> Executable:
        key = (spec.name, spec.revision)
        if key not in self._executables or self._executables[key].spec != spec:
            executable = build_executable(
                spec, entrypoint_allowlist=self.settings.entrypoint_allowlist, extra_kinds=self._kinds
            )
            if self.settings.tool_rate is not None and not spec.is_system:
                executable = RateLimitedExecutable(executable, self.settings.tool_rate)
            self._executables[key] = executable
        return self._executables[key]

    async def _retrieve(self, *, query: str, facts: dict) -> tuple[dict[str, Executable], dict[str, str]]:
        """This step's tools from tool search (template filters and rules applied, pinned tools added)."""
        outcome, specs = await db(_search_step)(query, self.spec, facts)
        found = {r.name: self._executable(specs[r.name]) for r in outcome.results
                 if r.name in specs and self._permitted(specs[r.name])}
        return found, outcome.removed

    def _permitted(self, spec) -> bool:
        """This environment's allowlist and the template's risk ceiling (high risk needs max_risk=high)."""
        ceiling = RISK_ORDER[self.spec.content.tool_policy.max_risk]
        return (self.settings.tool_allowed_here(spec.name, spec.tags, spec.is_system)
                and (spec.is_system or RISK_ORDER.get(spec.risk, 2) <= ceiling))

    async def run_session(
        self, session_id: str, sink: EventSink, *, task: str = "", fresh_history: list[dict] | None = None,
        lineage: tuple[str, ...] = (), depth: int = 0, delegator=None, tool_specs: dict | None = None,
        sampling: dict | None = None, opening: asyncio.Future | None = None,
    ) -> RunResult:
        """Run a session (already marked ``researching`` on this instance, which is ``busy``)
        until it finishes, waits for the user, fails or is cancelled; then reset to ``idle``.

        ``fresh_history`` is a new session's messages (nothing to load; ``tool_specs`` may carry
        the tools it starts with, read beforehand); otherwise the session's state is read from the
        database — any process may continue any session. ``opening``: the new session's own write
        (``session_start``), still in flight; the run starts meanwhile, and its first write, any
        tool and its end wait for it. If it fails, the run fails with its reason and nothing is
        recorded; the instance, whose row it did not move, is idle again, or unusable (``usable``)
        when its row was not idle to begin with.
        """
        if opening is not None and (fresh_history is None or tool_specs is None):
            raise ValueError("an opening run starts from its fresh history and tool specs")
        async with self._lock:
            self.status = InstanceStatus.BUSY
            self.current_session = session_id
            try:
                return await self._run(session_id, sink, task=task, fresh_history=fresh_history,
                                       tool_specs=tool_specs, opening=opening,
                                       delegation={"lineage": lineage or (self.spec.name,), "depth": depth,
                                                   "delegator": delegator, "sampling": sampling or {}})
            finally:
                await asyncio.shield(self._release())

    async def _release(self) -> None:
        """Reset (in memory) and back to ``idle``, unless the session's end did both already (or
        found the instance unusable)."""
        if self.status in (InstanceStatus.IDLE, InstanceStatus.STOPPED):
            return
        self.sessions_served += 1
        self.reset()
        await self._transition(InstanceStatus.IDLE, served=True)

    def _context(self, session_id: str, task: str, saved, recorder: SessionRecorder) -> ToolContext:
        ctx = ToolContext(session_id=session_id, task=task, store=recorder, llm=self.llm, http=self.http,
                          search=self.search, allow_private_fetch=self.settings.http_allow_private)
        if saved is None:
            return ctx
        view, _, sources = saved
        ctx.task = view.task
        ctx.iteration, ctx.searches_used = view.iteration, view.searches_used
        ctx.clarifications_used = view.clarifications_used
        ctx.tool_counts = dict(view.context.get("tool_counts", {}))
        ctx.plan = view.context.get("plan")
        ctx.current_reasoning = view.current_step_reasoning
        ctx.sources = {s["url"]: SourceRef(**s) for s in sources}
        ctx.extra.update(prompt_tokens=view.prompt_tokens, completion_tokens=view.completion_tokens,
                         stage=view.stage, last_tool=view.context.get("last_tool", ""))
        return ctx

    async def _run(self, session_id: str, sink: EventSink, *, task: str, fresh_history: list[dict] | None,
                   tool_specs: dict | None, opening: asyncio.Future | None, delegation: dict) -> RunResult:
        ctx: ToolContext | None = None
        obs.correlation_id.set(session_id)
        try:
            if fresh_history is not None and tool_specs is not None:
                saved, specs = None, tool_specs
            else:
                saved, specs = await db(_load)(None if fresh_history is not None else session_id, self.tool_names())
            history = list(fresh_history) if fresh_history is not None else list(saved[1])
            recorder = SessionRecorder(next_seq=len(history), opening=opening)
            ctx = self._context(session_id, task, saved, recorder)
            ctx.extra.update(delegation)
            if self.llm is None:
                raise LLMError(self.llm_problem)
            kind = agent_class(self.spec.agent_kind, self.llm.settings)
            if kind.kind != self.spec.agent_kind:
                logger.info("%s is %s; on the %s backend it runs as %s", self.spec.name, self.spec.agent_kind,
                            self.llm.settings.backend, kind.kind, extra={"correlation_id": session_id})
            if "reasoning_tool" not in specs and kind.kind != "tool_calling":
                raise ModelMisbehaved("reasoning_tool is not active in the tool catalog")
            tools = {name: self._executable(specs[name]) for name in self.tool_names()
                     if name in specs and self._permitted(specs[name])}
            agent = kind(
                spec=self.spec, ctx=ctx, history=history, tools=tools, rules=self.rules,
                llm=self.llm, recorder=recorder, events=sink,
                retriever=self._retrieve if self.uses_retrieval else None,
            )
            self._agent = agent
            await sink.start()
            outcome = await self._loop(agent, ctx)
            await recorder.flush()  # the last step's write is in before the end is recorded
        except asyncio.CancelledError:
            await asyncio.shield(self._end(session_id, ctx, SessionState.CANCELLED, error="cancelled"))
            raise
        except (LLMError, ModelMisbehaved) as exc:
            return await self._end(session_id, ctx, SessionState.FAILED, error=str(exc), code="llm_error")
        except SessionNotOpened:  # not a bug: the end reports why, and records nothing
            return await self._end(session_id, ctx, SessionState.FAILED)
        except Exception as exc:  # a bug: fail the session with the reason, log the traceback
            logger.exception("session %s crashed", session_id, extra={"correlation_id": session_id})
            return await self._end(session_id, ctx, SessionState.FAILED,
                                   error=f"internal error: {type(exc).__name__}: {exc}", code="internal_error")
        match outcome:
            case WaitForUser(text=text):
                return await self._end(session_id, ctx, SessionState.WAITING_FOR_CLARIFICATION, text=text)
            case Finish(answer=answer, status="completed"):
                return await self._end(session_id, ctx, SessionState.COMPLETED, text=answer)
            case Finish(answer=answer, reason=reason):
                return await self._end(session_id, ctx, SessionState.FAILED, text=answer,
                                       error=reason or "the agent reported failure",
                                       finish_reason="length" if reason.startswith("max_iterations") else "stop")

    async def _loop(self, agent, ctx: ToolContext):
        """The step loop with its hard cap: the run always ends. Transition rules run as the session
        enters ``researching`` and as it leaves for ``waiting_for_clarification``."""
        forced = agent.on_transition(SessionState.RESEARCHING)
        if forced is not None:
            return forced
        max_iterations = self.spec.content.execution_policy.max_iterations
        while ctx.iteration < max_iterations:
            ctx.iteration += 1
            started = time.perf_counter()
            try:
                outcome = await agent.step()
            except ModelMisbehaved as exc:
                if ctx.iteration < max_iterations:
                    raise
                # the last step offers only the final answer; a model that will not give it hit the limit
                reason = f"max_iterations={max_iterations} reached without a final answer ({exc})"
                return Finish(answer=f"Stopped: {reason}.", status="failed", reason=reason)
            obs.STEP_SECONDS.labels(self.spec.name, agent.kind).observe(time.perf_counter() - started)
            match outcome:
                case Continue():
                    continue
                case WaitForUser():
                    return agent.on_transition(SessionState.WAITING_FOR_CLARIFICATION) or outcome
                case Finish():
                    return outcome
        reason = f"max_iterations={max_iterations} reached without a final answer"
        return Finish(answer=f"Stopped: {reason}.", status="failed", reason=reason)

    async def _end(self, session_id: str, ctx: ToolContext | None, state: str, *, text: str = "", error: str = "",
                   code: str = "", finish_reason: str = "stop") -> RunResult:
        """Record how the run ended and put this instance back to ``idle`` (through ``resetting``, its
        in-memory reset done first), in one transaction."""
        recorder = ctx.store if ctx is not None and isinstance(ctx.store, SessionRecorder) else None
        unopened = await recorder.opening_error() if recorder is not None else None
        if unopened is not None:  # no session: nothing to record
            logger.error("session %s could not be opened: %s", session_id, unopened, extra={"correlation_id": session_id})
            self.reset()
            # The opening moves nothing unless the row was idle. If it was not (another process's
            # housekeeping stopped it, say), this instance is not usable: the pool drops it.
            self.status = InstanceStatus.STOPPED if isinstance(unopened, InvalidTransition) else InstanceStatus.IDLE
            return RunResult(session_id=session_id, state=SessionState.FAILED, error_code="internal_error",
                             text=f"The session could not be opened: {unopened}")
        if recorder is not None:
            try:  # a run that failed or was cancelled may have a step write in flight: in first
                await recorder.flush()
            except Exception:  # the run is failing already; the end is still recorded
                logger.exception("session %s: a step's write failed", session_id, extra={"correlation_id": session_id})
        progress = progress_of(ctx) if ctx is not None else {}
        final_step = recorder.take_final_step() if recorder is not None else None
        self.reset()  # the run's state is in ``progress`` now: idle in the same transaction as the end
        try:
            released = await db(session_services.session_end)(
                session_id=session_id, instance_id=self.id, to=state, error=error, result=text,
                memory_rss_bytes=obs.process_rss(), final_step=final_step, **progress
            )
            self.sessions_served += 1
            # not released: its row was stopped meanwhile (a reaper that came while the session
            # opened, before it could fail it): not ours to run sessions on, the pool drops it
            self.status = InstanceStatus.IDLE if released else InstanceStatus.STOPPED
        except InvalidTransition:  # moved elsewhere meanwhile: failed by a reaper, cancelled by a lost cancel
            logger.warning("session %s: cannot record %s", session_id, state, extra={"correlation_id": session_id})
            held, held_error = await db(_refused_end)(session_id, final_step, progress)
            try:
                await self._transition(InstanceStatus.RESETTING)
            except InvalidTransition:  # its row was stopped too (another process's reaper): not ours
                self.status = InstanceStatus.STOPPED
            # the client hears what the session's row says, not what this run would have recorded
            text = f"The session was ended elsewhere while it ran ({held}: {held_error or 'no reason given'})"
            obs.SESSIONS_FINISHED.labels(self.spec.name, held).inc()
            return RunResult(session_id=session_id, state=held, text=text, error_code="invalid_transition",
                             iteration=progress.get("iteration", 0))
        obs.SESSIONS_FINISHED.labels(self.spec.name, state).inc()
        return RunResult(
            session_id=session_id, state=state, text=text or error, finish_reason=finish_reason,
            prompt_tokens=progress.get("prompt_tokens", 0), completion_tokens=progress.get("completion_tokens", 0),
            error_code=code, iteration=progress.get("iteration", 0),
        )
