"""Shared set-up for benchmarks: a bench database, a scripted zero-latency LLM, a server process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.base")
os.environ.setdefault("EMBEDDED_PG_DBNAME", "bench_platform")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402
from _scripted import respond  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from tests.e2e.conftest import PlatformServer  # noqa: E402
from tests.fakes.llm_server import ScriptedLLM  # noqa: E402


class InstantLLM(ScriptedLLM):
    """In this process: answers every request at once (``_scripted.respond``)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_responder(respond)


def setup_database() -> str:
    """Migrate the bench database, load defaults, return a fresh chat API key."""
    import io

    call_command("migrate", interactive=False, verbosity=0)
    call_command("load_defaults", verbosity=0, stdout=io.StringIO())  # keep stdout pure JSON
    from access.services import api_key_create

    return api_key_create(name="bench").raw


def start_server(llm: ScriptedLLM, **env: str) -> PlatformServer:
    base = {"LLM_BASE_URL": llm.base_url, "LLM_MAX_RETRIES": "0", "LOG_LEVEL": "WARNING",
            "API_KEY_RATE_LIMIT": "0",  # one key drives the whole benchmark
            "EMBEDDED_PG_DBNAME": os.environ["EMBEDDED_PG_DBNAME"]}
    server = PlatformServer({**base, **env})
    return server.start()


async def stream_session(client: httpx.AsyncClient, headers: dict) -> tuple[float, float | None, str | None]:
    """One streamed session of ``research_agent`` (one user message): its wall time, the time to its
    first chunk, and what went wrong (None when it ended with ``[DONE]``; an in-band error's code).

    The times stop at ``[DONE]`` (or the error), but the response is still read to its end, as
    openai-python's stream does, so the connection is reused by the next session: a client that
    dropped it would reconnect for every session and measure its own connection set-up.
    """
    body = {"model": "research_agent", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    started = time.perf_counter()
    first = ended = None
    outcome = "no [DONE]"
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            if response.status_code != 200:
                return time.perf_counter() - started, None, f"HTTP {response.status_code}"
            async for line in response.aiter_lines():
                if ended is not None or not line.startswith("data: "):
                    continue
                if first is None:
                    first = time.perf_counter() - started
                if line == "data: [DONE]":
                    ended, outcome = time.perf_counter() - started, None
                elif line.startswith('data: {"error"'):
                    ended = time.perf_counter() - started
                    try:
                        code = json.loads(line[6:])["error"].get("code") or "in-band error"
                    except (ValueError, KeyError, AttributeError):
                        code = "in-band error"
                    outcome = str(code)
            return (ended if ended is not None else time.perf_counter() - started), first, outcome
    except httpx.HTTPError as exc:
        return time.perf_counter() - started, first, type(exc).__name__


async def run_concurrent(base_url: str, headers: dict, n: int, concurrency: int):
    """``n`` sessions, at most ``concurrency`` at a time: their results and the elapsed seconds.

    ``concurrency`` clients, each with its own connection, take the next session as they finish
    one (as that many users would). One shared client would hold every connection in one httpx
    pool, whose upkeep scans all of its connections on each request: with a pool of 200
    kept-alive connections the benchmark's own client, not the server, set the pace.
    """
    clients = [httpx.AsyncClient(base_url=base_url, timeout=120, verify=False)  # plain HTTP on loopback
               for _ in range(min(n, concurrency))]
    left = n

    async def user(client: httpx.AsyncClient) -> list:
        nonlocal left
        done = []
        while left > 0:
            left -= 1
            done.append(await stream_session(client, headers))
        return done

    try:
        started = time.perf_counter()
        per_user = await asyncio.gather(*(user(c) for c in clients))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return [r for results in per_user for r in results], elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def emit(result: dict) -> None:
    print(json.dumps(result, indent=2))


def now() -> float:
    return time.perf_counter()
