"""Tiny Tavily-compatible search server (plus SearXNG's JSON search and static HTML pages) for tests.

Standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread.

    with ScriptedSearch() as srv:
        srv.enqueue([result("Doc", srv.add_page("doc", "<p>hi</p>"), "hi")], answer="hi")
        # POST {srv.base_url}/search  {"query": "...", "max_results": 5}
        # GET  {srv.base_url}/search?q=...&format=json  (SearXNG)
        # GET  {srv.base_url}/page/doc
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["ScriptedSearch", "SearchReply", "result"]


class _Server(ThreadingHTTPServer):
    """A listen backlog for bursts of concurrent clients (benchmarks open hundreds at once)."""

    request_queue_size = 1024


def result(title: str, url: str, content: str, score: float = 0.9, raw_content: str | None = None) -> dict[str, Any]:
    """One Tavily search result dict."""
    return {"title": title, "url": url, "content": content, "score": score, "raw_content": raw_content}


@dataclass
class SearchReply:
    """Scripted answer to one ``POST /search``; ``status != 200`` sends an error body."""
    results: list[dict[str, Any]] = field(default_factory=list)
    answer: str | None = None
    status: int = 200
    delay: float = 0.0


@dataclass
class _Page:
    body: bytes
    status: int
    content_type: str


class ScriptedSearch:
    """Fake Tavily ``POST /search`` with scripted results and ``GET /page/<name>`` HTML pages."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # parsed /search bodies
        self.headers: list[dict[str, str]] = []  # headers of each /search request
        self.page_hits: list[str] = []  # names requested at GET /page/<name>
        self.errors: list[str] = []
        self._queue: deque[SearchReply] = deque()
        self._default: SearchReply | Callable[[dict[str, Any]], SearchReply] = SearchReply()
        self._pages: dict[str, _Page] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- script ---------------------------------------------------------------
    def enqueue(self, results: list[dict[str, Any]], answer: str | None = None, *,
                status: int = 200, delay: float = 0.0) -> None:
        """Queue the answer for the next ``/search`` call (FIFO)."""
        with self._lock:
            self._queue.append(SearchReply(list(results), answer, status, delay))

    def set_default(self, reply: SearchReply | Callable[[dict[str, Any]], SearchReply]) -> None:
        """Answer (or ``fn(request_body) -> SearchReply``) used when the queue is empty."""
        self._default = reply

    def add_page(self, name: str, html: str, *, status: int = 200,
                 content_type: str = "text/html; charset=utf-8") -> str:
        """Serve ``html`` at ``GET /page/<name>``; returns its absolute URL."""
        with self._lock:
            self._pages[name] = _Page(html.encode("utf-8"), status, content_type)
        return self.page_url(name)

    def page_url(self, name: str) -> str:
        """Absolute URL of a registered page (valid once started)."""
        return f"{self.base_url}/page/{name}"

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> SearchReply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if self._queue:
                return self._queue.popleft()
        return self._default(body) if callable(self._default) else self._default

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> "ScriptedSearch":
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="ScriptedSearch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ScriptedSearch":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(srv: ScriptedSearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
            pass

        def _send(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path.rstrip("/") == "/search":
                return self._searxng()
            if not path.startswith("/page/"):
                return self._json(404, {"detail": {"error": f"no route GET {path}"}})
            name = unquote(path[len("/page/"):])
            with srv._lock:
                srv.page_hits.append(name)
                page = srv._pages.get(name)
            if page is None:
                return self._send(404, b"<html><body>Not found</body></html>", "text/html; charset=utf-8")
            self._send(page.status, page.body, page.content_type)

        def _searxng(self) -> None:
            """SearXNG's ``GET /search?q=…&format=json`` from the same script (no result cap: SearXNG
            has no max_results; ``format`` other than json is SearXNG's 403)."""
            query = parse_qs(urlsplit(self.path).query)
            body = {"query": (query.get("q") or [""])[0], "format": (query.get("format") or [""])[0]}
            reply = srv._next(body, {k.lower(): v for k, v in self.headers.items()})
            if body["format"] != "json":
                return self._send(403, b"Forbidden", "text/html")
            if reply.status != 200:
                return self._send(reply.status, b"<html>error</html>", "text/html")
            results = [{"url": r["url"], "title": r["title"], "content": r["content"], "engine": "scripted"}
                       for r in reply.results]
            self._json(200, {"query": body["query"], "number_of_results": len(results), "results": results})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0].rstrip("/") != "/search":
                return self._json(404, {"detail": {"error": f"no route POST {self.path}"}})
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                srv.errors.append("invalid JSON body")
                return self._json(400, {"detail": {"error": "invalid JSON body"}})
            started = time.monotonic()
            reply = srv._next(body, {k.lower(): v for k, v in self.headers.items()})
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status != 200:
                return self._json(reply.status, {"detail": {"error": f"scripted error {reply.status}"}})
            results = reply.results[: int(body.get("max_results") or 5)]
            if not body.get("include_raw_content"):
                results = [{**r, "raw_content": None} for r in results]
            out: dict[str, Any] = {"query": body.get("query", ""), "results": results, "images": [],
                                   "response_time": round(time.monotonic() - started, 3)}
            if reply.answer is not None:
                out["answer"] = reply.answer
            try:
                self._json(200, out)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
