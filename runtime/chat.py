"""The OpenAI chat endpoint's logic: parse the request, open or continue a session, run it.

``Runtime`` is the per-process object holding the pool and the running tasks;
the consumer calls ``Runtime.open`` and streams what the returned ``ChatRun``
yields.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from channels.layers import get_channel_layer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from access.ratelimit import RateLimit, api_key_admit
from access.selectors import Principal
from runtime.config import RuntimeSettings
from runtime.db import db, db_start
from runtime.delegation import PoolDelegator
from runtime.errors import InvalidChatRequest, UnsupportedParameter
from runtime.events import EventSink
from runtime.instance import RunResult, start_tool_names
from runtime.llm import LLMClient
from runtime.pool import AgentPool
from runtime.router import ROUTER_MODEL, route
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services
from sessions_app.errors import SessionNotWaiting
from sessions_app.models import SessionState
from templates_app import selectors as template_selectors
from templates_app.specs import TemplateSpec

logger = logging.getLogger("runtime.chat")
END = object()


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields we act on (``temperature`` and ``max_tokens`` apply to every LLM call of the
    run, over the template's ``llm_config``); other OpenAI parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def sampling(self) -> dict[str, Any]:
        return {k: v for k, v in (("temperature", self.temperature), ("max_tokens", self.max_tokens)) if v is not None}


def parse_chat_request(data: Any) -> ChatRequest:
    if not isinstance(data, dict):
        raise InvalidChatRequest("The request body must be a JSON object")
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidChatRequest(f"Invalid chat completion request: {problems}") from exc
    if request.n not in (None, 1):
        raise UnsupportedParameter("Only n=1 is supported: an agent run produces one answer", param="n")
    return request


def message_text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):
        return "\n".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return ""


def last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            text = message_text(message).strip()
            if text:
                return text
    raise InvalidChatRequest("messages must contain a user message with text content")


@dataclass
class ChatRun:
    session_id: str
    queue: asyncio.Queue
    task: asyncio.Task
    include_usage: bool = False
    result: RunResult | None = field(default=None)

    def cancel(self) -> None:
        """Cancel the run, though never before its first step: a task cancelled before it starts
        never runs its body, so the instance would not go back to the pool nor the session end."""
        asyncio.get_running_loop().call_soon(self.task.cancel)


def _opening(spec: TemplateSpec, request: ChatRequest) -> tuple[str, list[dict[str, Any]]]:
    """A new session's task and first messages: the request's, its last user message framed by
    the template."""
    task = last_user_text(request)
    pack = spec.content.prompt_pack
    messages = [m.model_dump(exclude_none=True) for m in request.messages]
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            messages[i] = {"role": "user", "content": pack.render("initial_user_request", task=task, current_date=_today())}
            break
    return task, messages


def _starting_tools(spec: TemplateSpec) -> dict:
    """The specs of the tools a new session of ``spec`` starts with."""
    from catalog.selectors import tool_specs_by_name

    return tool_specs_by_name(names=start_tool_names(spec))


def _template_for(name: str) -> Resolved:
    """The template ``name`` (404 when unknown) with its sessions' starting tools."""
    spec = template_selectors.template_spec_get(name=name)
    return Resolved("template", spec, _starting_tools(spec))


def _today() -> str:
    import datetime as dt

    return dt.date.today().isoformat()


def _continue(session_id: str, text: str, spec: TemplateSpec, instance_id) -> None:
    """Waiting session → researching on ``instance_id`` with the user's answer appended (atomically)."""
    content = spec.content.prompt_pack.render("clarification_response", clarifications=text, current_date=_today())
    session_services.session_resume(
        session_id=session_id, instance_id=instance_id, message={"role": "user", "content": content}
    )


@dataclass(frozen=True)
class Resolved:
    """What a request's ``model`` names: a template (``tool_specs``: what a new session of it
    starts with), or a waiting session (``session``) and the template version it runs."""

    kind: Literal["template", "session"]
    spec: TemplateSpec
    tool_specs: dict | None = None  # always read for a template (``_template_for``)


def _resolve(model: str, principal: Principal | None) -> Resolved:
    """What ``model`` names: a template (404 when unknown), or a session waiting for the user's
    answer, with the template version it runs (404 when unknown or, for a ``principal``, another
    key's; 409 when not waiting). No principal: a caller inside the process, trusted."""
    if session_selectors.is_session_id(model):
        view = session_selectors.session_get_for(session_id=model, principal=principal)
        if view.state != SessionState.WAITING_FOR_CLARIFICATION:
            raise SessionNotWaiting(f"Session {model} is {view.state}, not waiting for clarification", state=view.state)
        return Resolved("session", template_selectors.template_spec_for_version(version_id=view.template_version_id))
    return _template_for(model)


def chat_admit(*, header: str | None, model: str | None, rate_limit: RateLimit | None = None,
               ) -> tuple[Principal, Resolved | None]:
    """What a chat request needs from the database before its run, in one crossing: the API key
    (401) with a token from its bucket (``rate_limit``: 429), then what ``model`` names (404),
    unless it is the router or the request could not be parsed (``model`` None)."""
    principal = api_key_admit(header, limit=rate_limit)
    if model is None or model == ROUTER_MODEL:
        return principal, None
    return principal, _resolve(model, principal)


RUNTIMES_GROUP = "runtimes"  # every server process's channel: where a cancel is sent


class Runtime:
    """Per-process runtime: the agent pool, the runs in progress, background upkeep.

    Each process listens on its own channel-layer channel, a member of ``RUNTIMES_GROUP``: a
    cancel sent from any process reaches them all, and the one running the session cancels it.
    Joining once per process (renewed by housekeeping: the Redis layer forgets a member after a
    day) keeps the channel layer off every session's path.
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.pool = AgentPool(settings)
        self.running: dict[str, ChatRun] = {}
        self.channel: str | None = None
        self._background: list[asyncio.Task] = []
        self._started = False
        self.delegator = PoolDelegator(self)
        self._router_client: LLMClient | None = None

    async def ensure_started(self) -> None:
        if self._started:
            return
        self._started = True  # before any await: concurrent first requests start this once
        from runtime.housekeeping import housekeeping_loop

        self._background.append(asyncio.create_task(housekeeping_loop(self)))
        layer = get_channel_layer()
        if layer is not None:
            self.channel = await layer.new_channel("runtime.")
            self._background.append(asyncio.create_task(self._listen(layer)))
            try:
                await self.join_runtimes_group()
            except Exception:  # the channel layer is down: housekeeping joins when it is back
                logger.exception("cannot join the %s group: cancels from other processes miss this one", RUNTIMES_GROUP)

    async def join_runtimes_group(self) -> None:
        """(Re)join ``RUNTIMES_GROUP`` with this process's channel."""
        layer = get_channel_layer() if self.channel else None
        if layer is not None:
            await layer.group_add(RUNTIMES_GROUP, self.channel)

    async def _listen(self, layer) -> None:
        while True:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed")
                await asyncio.sleep(1)
                continue
            if message.get("type") == "session.cancel":
                run = self.running.get(message.get("session_id", ""))
                if run is not None:
                    logger.info("cancel of session %s from another process", run.session_id)
                    run.cancel()

    async def open(self, request: ChatRequest, *, api_key_id: int | None, resolved: Resolved | None = None) -> ChatRun:
        """Open (or continue) the run ``request`` asks for; ``resolved`` is :func:`chat_admit`'s
        reading of ``request.model`` when the caller has it already."""
        await self.ensure_started()
        routing = None
        if request.model == ROUTER_MODEL:
            choice = await route(last_user_text(request), settings=self.settings.router, llm=self._router_llm())
            logger.info("router chose %s (%s, score %.3f)", choice.template, choice.method, choice.score)
            resolved = await db(_template_for)(choice.template)
            routing = choice.as_dict()
        else:
            resolved = resolved or await db(_resolve)(request.model, None)
            if resolved.kind == "session":
                return await self.resume(request.model, resolved.spec, last_user_text(request),
                                         include_usage=request.include_usage, sampling=request.sampling)
        spec = resolved.spec
        task, messages = _opening(spec, request)
        instance = await self.pool.acquire(spec)
        session_id = str(uuid.uuid4())
        # The session's write goes out now and its run starts at once: the response and the first
        # LLM call overlap the write (the run's first write, any tool and its end wait for it).
        opening = db_start(session_services.session_start, session_id=session_id, instance_id=instance.id,
                           template_version_id=spec.version_id, task=task, messages=messages,
                           api_key_id=api_key_id, routing=routing)
        return self._start(instance, session_id, request.include_usage, task=task, fresh_history=messages,
                           tool_specs=resolved.tool_specs, sampling=request.sampling, opening=opening)

    async def resume(self, session_id: str, spec: TemplateSpec, text: str, *, include_usage: bool = False,
                     sampling: dict | None = None) -> ChatRun:
        """Continue a waiting session (``_resolve`` read it) with the user's answer; the move back to
        ``researching`` is a compare-and-set, so a session answered meanwhile is refused there."""
        instance = await self.pool.acquire(spec)
        try:
            await db(_continue)(session_id, text, spec, instance.id)
        except BaseException:
            await self.pool.release(instance)
            raise
        return self._start(instance, session_id, include_usage, sampling=sampling)

    def _start(self, instance, session_id: str, include_usage: bool, *, task: str = "",
               fresh_history: list | None = None, tool_specs: dict | None = None,
               sampling: dict | None = None, opening: asyncio.Future | None = None) -> ChatRun:
        queue: asyncio.Queue = asyncio.Queue()
        sink = EventSink(session_id, queue)

        async def run() -> RunResult:
            try:
                return await instance.run_session(session_id, sink, task=task, fresh_history=fresh_history,
                                                  delegator=self.delegator, tool_specs=tool_specs, sampling=sampling,
                                                  opening=opening)
            finally:
                self.running.pop(session_id, None)
                await asyncio.shield(self.pool.release(
                    instance, still_active=instance.spec.is_active_version and instance.usable))
                queue.put_nowait(END)

        chat_run = ChatRun(session_id=session_id, queue=queue, task=asyncio.create_task(run()), include_usage=include_usage)
        self.running[session_id] = chat_run
        return chat_run

    def _router_llm(self) -> LLMClient | None:
        """The LLM for router tie-breaks (environment defaults), built once when enabled."""
        if not self.settings.router.llm_tiebreak or not self.settings.llm_base_url:
            return None
        if self._router_client is None:
            self._router_client = LLMClient(self.settings.default_llm())
        return self._router_client

    async def cancel(self, session_id: str, *, principal: Principal | None = None, wait_s: float = 10.0) -> str:
        """Cancel a session wherever it runs; a waiting (or not started) one is cancelled directly.
        With a ``principal``, a session it may not see is ``SessionNotFound`` and left alone. A run of
        this process is cancelled without reading its row first (its opening write may not be in yet)."""
        await self.ensure_started()
        chat_run = self.running.get(session_id)
        if chat_run is None or principal is not None:
            view = await db(session_selectors.session_get_for)(session_id=session_id, principal=principal)
        if chat_run is not None:
            chat_run.cancel()
            try:
                await chat_run.task
            except (asyncio.CancelledError, Exception):
                pass
            return (await db(session_selectors.session_get)(session_id=session_id)).state
        if view.state in (SessionState.INITED, SessionState.WAITING_FOR_CLARIFICATION):
            await db(session_services.session_transition)(session_id=session_id, to=SessionState.CANCELLED)
        elif view.state == SessionState.RESEARCHING and get_channel_layer() is not None:
            await get_channel_layer().group_send(RUNTIMES_GROUP, {"type": "session.cancel", "session_id": session_id})
            deadline = asyncio.get_running_loop().time() + wait_s
            while view.state == SessionState.RESEARCHING and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                view = await db(session_selectors.session_get)(session_id=session_id)
        return (await db(session_selectors.session_get)(session_id=session_id)).state


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime, built on first use from Django settings."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(RuntimeSettings.from_django())
    return _runtime
