"""Scripted OpenAI-compatible Chat Completions server for tests and benchmarks.

Standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread.

    with ScriptedLLM() as llm:
        llm.enqueue(tool_call("search", {"q": "x"}), content("done"))
        client = openai.OpenAI(base_url=llm.base_url, api_key="x")
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Union

__all__ = [
    "ScriptedLLM", "Reply", "Message", "ToolCall", "HTTPError", "Delay", "Garbage",
    "tool_call", "tool_calls", "content", "structured", "error", "delay", "garbage",
]


class _Server(ThreadingHTTPServer):
    """A listen backlog for bursts of concurrent clients (benchmarks open hundreds at once)."""

    request_queue_size = 1024


@dataclass
class ToolCall:
    """One function call inside an assistant message."""
    name: str
    arguments: str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass
class Message:
    """Assistant message: plain content and/or tool calls."""
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"


@dataclass
class HTTPError:
    """Non-200 answer with an OpenAI-shaped error body."""
    status: int
    message: str = "scripted error"
    type: str = "server_error"
    code: str | None = None


@dataclass
class Delay:
    """Sleep ``seconds`` and then answer with ``reply``."""
    seconds: float
    reply: "Reply"


@dataclass
class Garbage:
    """200 whose body (or SSE event data) is not valid JSON."""
    text: str = "this is {not json"


Reply = Union[Message, HTTPError, Delay, Garbage]
Responder = Callable[[dict[str, Any]], Reply]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 409: "conflict_error", 422: "invalid_request_error",
                429: "rate_limit_error"}


def _args(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> Message:
    """Assistant message with one tool call; a str ``arguments`` is sent verbatim."""
    tc = ToolCall(name, _args(arguments), *([call_id] if call_id else []))
    return Message(None, [tc], "tool_calls")


def tool_calls(calls: Iterable[tuple[str, dict[str, Any] | str]]) -> Message:
    """Assistant message with several tool calls, given as ``(name, arguments)`` pairs."""
    return Message(None, [ToolCall(n, _args(a)) for n, a in calls], "tool_calls")


def content(text: str) -> Message:
    """Assistant message with plain text content (``finish_reason: "stop"``)."""
    return Message(text)


def structured(obj: Any) -> Message:
    """Structured-output answer: ``content(json.dumps(obj))``."""
    return Message(json.dumps(obj, ensure_ascii=False))


def error(status: int, message: str = "scripted error", code: str | None = None) -> HTTPError:
    """HTTP error answer with body ``{"error": {"message", "type", "code"}}``."""
    return HTTPError(status, message, _ERROR_TYPES.get(status, "server_error"), code)


def delay(seconds: float, reply: Reply) -> Delay:
    """Answer ``reply`` after sleeping ``seconds`` (cut short by ``stop()``)."""
    return Delay(seconds, reply)


def garbage(text: str = "this is {not json") -> Garbage:
    """200 answer with this raw body / SSE data: not JSON, or JSON that is not a completion."""
    return Garbage(text)


def _pieces(text: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)]


class ScriptedLLM:
    """Fake ``/v1/chat/completions`` + ``/v1/models`` server driven by a reply script."""

    def __init__(self, model: str = "scripted") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.errors: list[str] = []
        self._queue: deque[Reply] = deque()
        self._responder: Responder | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def enqueue(self, *replies: Reply) -> None:
        """Append replies to the FIFO script."""
        with self._lock:
            self._queue.extend(replies)

    def set_responder(self, fn: Responder | None) -> None:
        """Fallback ``fn(request_body) -> Reply`` used when the queue is empty."""
        self._responder = fn

    @property
    def pending(self) -> int:
        """Number of queued replies not yet served."""
        with self._lock:
            return len(self._queue)

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self._queue:
                return self._queue.popleft()
            responder = self._responder
            if responder is None:
                msg = f"ScriptedLLM script exhausted at request #{len(self.requests)}"
                self.errors.append(msg)
                return HTTPError(500, msg, "server_error", "script_exhausted")
        return responder(body)

    def start(self) -> "ScriptedLLM":
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="ScriptedLLM", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and wake any delayed replies."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _usage(self, body: dict[str, Any], msg: Message) -> dict[str, int]:
        out = (msg.content or "") + "".join(tc.name + tc.arguments for tc in msg.tool_calls)
        prompt = len(json.dumps(body.get("messages", []), ensure_ascii=False)) // 4
        completion = len(out) // 4
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], msg: Message) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": msg.content, "refusal": None}
        if msg.tool_calls:
            message["tool_calls"] = [{"id": tc.id, "type": "function",
                                      "function": {"name": tc.name, "arguments": tc.arguments}}
                                     for tc in msg.tool_calls]
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or self.model, "system_fingerprint": None,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": msg.finish_reason}],
                "usage": self._usage(body, msg)}

    def _chunks(self, body: dict[str, Any], msg: Message) -> Iterable[dict[str, Any]]:
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model") or self.model, "system_fingerprint": None}

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if include_usage:
            base["usage"] = None  # like OpenAI: null on every chunk but the last

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": "" if msg.content is not None else None})
        for piece in _pieces(msg.content or ""):
            yield chunk({"content": piece})
        for i, tc in enumerate(msg.tool_calls):
            yield chunk({"tool_calls": [{"index": i, "id": tc.id, "type": "function",
                                         "function": {"name": tc.name, "arguments": ""}}]})
            for piece in _pieces(tc.arguments):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        yield chunk({}, msg.finish_reason)
        if include_usage:
            yield {**base, "choices": [], "usage": self._usage(body, msg)}


def _make_handler(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes on a kept-alive connection

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
            pass

        def _send(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()  # keep-alive, as real LLM APIs do: clients reuse the connection
            self.wfile.write(payload)

        def _send_error(self, err: HTTPError) -> None:
            body = {"error": {"message": err.message, "type": err.type, "param": None, "code": err.code}}
            self._send(err.status, json.dumps(body).encode())

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                model = {"id": llm.model, "object": "model", "created": 0, "owned_by": "tests"}
                self._send(200, json.dumps({"object": "list", "data": [model]}).encode())
            else:
                self._send_error(HTTPError(404, f"no route GET {self.path}", "not_found_error"))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
                return self._send_error(HTTPError(404, f"no route POST {self.path}", "not_found_error"))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            try:
                self._answer(body, llm._next(body, {k.lower(): v for k, v in self.headers.items()}))
            except (BrokenPipeError, ConnectionResetError):
                pass  # client gave up (e.g. timeout)

        def _answer(self, body: dict[str, Any], reply: Reply) -> None:
            while isinstance(reply, Delay):
                if llm._stopping.wait(reply.seconds):
                    return
                reply = reply.reply
            if isinstance(reply, HTTPError):
                return self._send_error(reply)
            stream = bool(body.get("stream"))
            if not stream:
                out = reply.text if isinstance(reply, Garbage) else json.dumps(llm._completion(body, reply))
                return self._send(200, out.encode())
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            events = [reply.text] if isinstance(reply, Garbage) else \
                [json.dumps(c) for c in llm._chunks(body, reply)] + ["[DONE]"]
            for data in events:
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()

    return Handler
