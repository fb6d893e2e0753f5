"""The OpenAI-compatible endpoint on a Channels ``AsyncHttpConsumer`` (thin).

Authenticate, parse, hand over to the runtime, stream what it yields; cancel
the run when the client disconnects; always close the response (an error after
the headers are sent becomes an in-band error event).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings

from access.selectors import Principal, principal_from_header
from platform_site.errors import (
    InvalidRequest,
    InvalidTransition,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PlatformError,
    platform_error_body,
)
from runtime import streaming
from runtime.chat import (
    END,
    ChatRequest,
    ChatRun,
    chat_admit,
    get_runtime,
    parse_chat_request,
)
from runtime.db import db
from runtime.errors import SessionCancelled, UpstreamLLMError
from runtime.instance import RunResult
from sessions_app.models import SessionState

logger = logging.getLogger("runtime.consumers")


class PlatformHttpConsumer(AsyncHttpConsumer):
    """Body size limit, JSON errors, a handler task that a disconnect cancels."""

    # No channel of its own: a request needs none (cancels reach runs through the runtime's
    # per-process channel), and Channels would otherwise create one per request and keep a
    # receive on it (with Redis, on the server) until the response ends.
    channel_layer_alias = "__none__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._size = 0
        self._handler: asyncio.Task | None = None
        self._run: ChatRun | None = None
        self._started = False

    async def dispatch(self, message):
        """Channels' dispatch without its ``aclose_old_connections()``: that is a thread hop per
        message to tidy the connection of a thread these consumers never use (services run on
        ``runtime.db`` workers, whose connections Django's CONN_MAX_AGE rules keep)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def http_request(self, message):
        body = message.get("body", b"")
        self._size += len(body)
        if self._size > settings.MAX_REQUEST_BYTES:
            await self.send_error(PayloadTooLarge(f"Request body is larger than {settings.MAX_REQUEST_BYTES} bytes"))
            raise StopConsumer()
        self.body.append(body)
        if not message.get("more_body"):
            self._handler = asyncio.create_task(self._handle_safely(b"".join(self.body)))

    async def http_disconnect(self, message):
        if self._handler is not None and not self._handler.done():
            if self._run is not None and not self._run.task.done():
                logger.info("client disconnected: cancelling session %s", self._run.session_id)
                await get_runtime().cancel(self._run.session_id)
            self._handler.cancel()
        raise StopConsumer()

    async def _handle_safely(self, body: bytes) -> None:
        try:
            await self.handle(body)
        except asyncio.CancelledError:
            raise
        except PlatformError as exc:
            await self.send_error(exc)
        except Exception:
            logger.exception("unhandled error in %s", self.scope.get("path"))
            await self.send_error(PlatformError("Internal server error"))

    async def send_json(self, status: int, payload: dict, headers: list | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        await self.send_response(status, body, headers=[(b"content-type", b"application/json"), *(headers or [])])

    async def send_error(self, exc: PlatformError) -> None:
        if self._started:  # headers are out: in-band error event, then close
            await self.send_body(streaming.sse(platform_error_body(exc)), more_body=False)
            return
        headers = []
        if "retry_after_s" in exc.details:
            headers.append((b"retry-after", str(max(1, math.ceil(exc.details["retry_after_s"]))).encode()))
        await self.send_json(exc.http_status, platform_error_body(exc), headers)

    async def principal(self) -> Principal:
        return await db(principal_from_header)(self.header())

    def header(self) -> str:
        return dict(self.scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")

    @staticmethod
    def parse_json(body: bytes):
        try:
            return json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from exc

    async def stream_run(self, run: ChatRun) -> None:
        """Stream a run as SSE ``chat.completion.chunk`` events ending with ``[DONE]``."""
        self._run = run
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                   (b"x-session-id", run.session_id.encode())]
        await self.send_headers(status=200, headers=headers)
        self._started = True
        finished = False
        while not finished:  # events queued together go out in one write
            items = [await run.queue.get()]
            while not run.queue.empty():
                items.append(run.queue.get_nowait())
            if END in items:
                items, finished = items[:items.index(END)], True
            if items:
                await self.send_body(b"".join(streaming.sse(item) for item in items), more_body=True)
        result = await self._result(run)
        problem = _run_error(run, result)
        if problem is not None:
            await self.send_error(problem)
            return
        final = streaming.chunk(run.session_id, f"{result.iteration}-final", {"content": result.text},
                                finish_reason=result.finish_reason)
        tail = [streaming.sse(final)]
        if run.include_usage:
            usage = streaming.usage_of(result.prompt_tokens, result.completion_tokens)
            tail.append(streaming.sse(streaming.usage_chunk(run.session_id, "usage", usage)))
        await self.send_body(b"".join([*tail, streaming.DONE]), more_body=False)

    @staticmethod
    async def _result(run: ChatRun):
        """The run's result, or None when the run (not this request) was cancelled."""
        try:
            return await run.task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            return None

    async def respond_run(self, run: ChatRun) -> None:
        """Wait for the run and answer with one ``chat.completion``."""
        self._run = run
        while await run.queue.get() is not END:
            pass
        result = await self._result(run)
        headers = [(b"x-session-id", run.session_id.encode())]
        problem = _run_error(run, result)
        if problem is not None:
            await self.send_json(problem.http_status, {**platform_error_body(problem), "session_id": run.session_id},
                                 headers)
            return
        usage = streaming.usage_of(result.prompt_tokens, result.completion_tokens)
        await self.send_json(200, streaming.completion(run.session_id, result.text, result.finish_reason, usage), headers)


def _run_error(run: ChatRun, result: RunResult | None) -> PlatformError | None:
    """What the client is told instead of an answer: the run was cancelled (``result`` None, or
    its session's row says so), or it failed with a code, or another process ended its session."""
    if result is None or result.state == SessionState.CANCELLED:
        return SessionCancelled(f"Session {run.session_id} was cancelled")
    match result.error_code:
        case "":
            return None
        case "llm_error":
            return UpstreamLLMError(result.text)
        case "invalid_transition":
            return InvalidTransition(result.text)
    return PlatformError(result.text)


class _RunConsumer(PlatformHttpConsumer):
    async def admit_and_run(self, parse: Callable[[], ChatRequest]) -> None:
        """``parse`` the body (no database), then admit the API key, take a token of its rate limit
        and read what the request names (a template, or a session that must be this key's) in one
        crossing, then run and respond. A bad body is only reported to an authenticated caller."""
        try:
            request, problem = parse(), None
        except PlatformError as exc:
            request, problem = None, exc
        principal, resolved = await db(chat_admit)(header=self.header(), model=request and request.model,
                                                   rate_limit=get_runtime().settings.api_key_rate)
        if problem is not None:
            raise problem
        run = await get_runtime().open(request, api_key_id=principal.key_id, resolved=resolved)
        if request.stream:
            await self.stream_run(run)
        else:
            await self.respond_run(run)


class ChatCompletionsConsumer(_RunConsumer):
    """POST /v1/chat/completions"""

    async def handle(self, body: bytes) -> None:
        if self.scope["method"] != "POST":
            raise MethodNotAllowed("Use POST")
        await self.admit_and_run(lambda: parse_chat_request(self.parse_json(body)))


class ProvideClarificationConsumer(_RunConsumer):
    """POST /agents/{session_id}/provide_clarification — streams the continuation (a run: the same
    admission and rate limit as a chat)."""

    async def handle(self, body: bytes) -> None:
        if self.scope["method"] != "POST":
            raise MethodNotAllowed("Use POST")
        session_id = self.scope["url_route"]["kwargs"]["session_id"]

        def parse() -> ChatRequest:
            data = self.parse_json(body)
            if not isinstance(data, dict) or not isinstance(data.get("messages"), list) or not data["messages"]:
                raise InvalidRequest('Body must be {"messages": [{"role": "user", "content": "..."}]}')
            return parse_chat_request({"model": session_id, "messages": data["messages"],
                                       "stream": data.get("stream", True), "stream_options": data.get("stream_options")})

        await self.admit_and_run(parse)


class CancelConsumer(PlatformHttpConsumer):
    """POST /agents/{session_id}/cancel"""

    async def handle(self, body: bytes) -> None:
        if self.scope["method"] != "POST":
            raise MethodNotAllowed("Use POST")
        principal = await self.principal()
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        state = await get_runtime().cancel(session_id, principal=principal)  # 404: not its key's
        await self.send_json(200, {"session_id": session_id, "state": state})


class NotFoundConsumer(PlatformHttpConsumer):
    async def handle(self, body: bytes) -> None:
        raise NotFound(f"No route {self.scope.get('path')}")
