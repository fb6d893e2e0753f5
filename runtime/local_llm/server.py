"""The embedded llama.cpp server (xllamacpp), one per platform process, on loopback.

``ensure_started`` starts it once (thread-safe) on a free port of 127.0.0.1 and returns its
OpenAI-compatible base URL, so the local backend goes through the same ``LLMClient`` wire path
as any endpoint. It lives as long as the process and is stopped at exit. Several server
processes (``manage.py serve`` on several ports) each start their own: the GGUF is
memory-mapped, so its pages are shared between them; each has its own KV cache and threads.
A failure to install or start is remembered: every session then fails with that message
until the process is restarted.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runtime.local_llm import weights
from runtime.local_llm.config import LocalLLMConfig, LocalLLMError
from templates_app.specs import DEFAULT_SYSTEM_PROMPT

logger = logging.getLogger("runtime.local_llm")

INSTALL_HINT = ("the local LLM backend needs the `local-llm` extra (xllamacpp): "
                ".venv/bin/pip install -e '.[local-llm]' (make install does it); or set LLM_BASE_URL")


@dataclass(frozen=True)
class LocalEndpoint:
    base_url: str  # http://127.0.0.1:PORT/v1
    model: str
    gguf: Path
    threads: int
    ctx: int
    start_s: float
    warmup_s: float


_lock = threading.Lock()
_server: Any = None
_endpoint: LocalEndpoint | None = None
_failure: str = ""


def ensure_started(config: LocalLLMConfig, *, progress: bool = False) -> LocalEndpoint:
    """The process's local server, started (and its model installed) on first call."""
    global _endpoint, _failure
    with _lock:
        if _endpoint is not None:
            return _endpoint
        if _failure:
            raise LocalLLMError(_failure)
        try:
            _endpoint = _start(config, progress=progress)
        except LocalLLMError as exc:
            _failure = str(exc)
            raise
        except Exception as exc:  # a native start-up failure: keep it as a clear session error
            _failure = f"the local LLM server did not start: {type(exc).__name__}: {exc}"
            raise LocalLLMError(_failure) from exc
        return _endpoint


def running() -> LocalEndpoint | None:
    return _endpoint


def stop() -> None:
    """Stop the server (its destructor joins llama.cpp's threads). Registered at exit."""
    global _server, _endpoint
    with _lock:
        _server, _endpoint = None, None


def _start(config: LocalLLMConfig, *, progress: bool) -> LocalEndpoint:
    global _server
    try:
        import xllamacpp
    except ImportError:
        raise LocalLLMError(INSTALL_HINT) from None
    path = weights.gguf_path(config, progress=progress)
    threads = config.resolved_threads()
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {config.model_name}
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port
    params.n_ctx = config.ctx
    params.n_parallel = 1  # one request at a time, the others queue: each gets the whole context
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 0
    started = time.perf_counter()
    server = xllamacpp.Server(params)
    start_s = time.perf_counter() - started
    base_url = server.listening_address.rstrip("/") + "/v1"
    _server = server
    atexit.register(stop)
    warmup_s = _warm_up(base_url, config.model_name) if config.warmup else 0.0
    endpoint = LocalEndpoint(base_url=base_url, model=config.model_name, gguf=path, threads=threads,
                             ctx=config.ctx, start_s=start_s, warmup_s=warmup_s)
    logger.info("local LLM %s on %s (%d threads, context %d): started in %.1fs, warm-up %.1fs",
                endpoint.model, base_url, threads, config.ctx, start_s, warmup_s)
    return endpoint


def _warm_up(base_url: str, model: str) -> float:
    """One tiny constrained request with the default system prompt: it pages the weights in,
    builds the compute graphs and the JSON grammar code path, and leaves the prompt's common
    prefix in llama.cpp's prompt cache, so the first real request is not the slowest."""
    system = DEFAULT_SYSTEM_PROMPT.format(current_date=datetime.date.today().isoformat(), template_name="", tools="")
    body = {
        "model": model, "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Say ok."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "warmup", "schema": {
            "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}},
    }
    started = time.perf_counter()
    try:
        httpx.post(f"{base_url}/chat/completions", json=body, timeout=300).raise_for_status()
    except httpx.HTTPError as exc:
        raise LocalLLMError(f"the local LLM server started but its warm-up request failed: {exc}") from exc
    return time.perf_counter() - started
