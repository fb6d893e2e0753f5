"""200 concurrent streaming sessions: errors and platform time per agent step.

The scripted LLM answers at once (a raw call to it costs ~1-4 ms), so a session's wall
time divided by its LLM calls is the platform's time per step under this load
(persistence, pool, streaming, and queueing behind the other sessions on 2 cores).
Prints JSON. Target: 0 errors.
Usage: .venv/bin/python bench/concurrency.py [--sessions 200] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from _harness import TimedLLM, emit, percentile, setup_database, start_server


async def one_session(client: httpx.AsyncClient, key: str) -> tuple[float, float | None, str | None]:
    body = {"model": "research_agent", "stream": True, "messages": [{"role": "user", "content": "q"}]}
    started = time.perf_counter()
    first = None
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {key}"}) as response:
            if response.status_code != 200:
                return time.perf_counter() - started, None, f"HTTP {response.status_code}"
            done = False
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if first is None:
                    first = time.perf_counter() - started
                if line == "data: [DONE]":
                    done = True
                elif '"error"' in line[:20]:
                    return time.perf_counter() - started, first, json.loads(line[6:])["error"]["code"]
            if not done:
                return time.perf_counter() - started, first, "no [DONE]"
    except httpx.HTTPError as exc:
        return time.perf_counter() - started, first, type(exc).__name__
    return time.perf_counter() - started, first, None


async def run(base_url: str, key: str, sessions: int, concurrency: int):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        async def guarded():
            async with semaphore:
                return await one_session(client, key)
        started = time.perf_counter()
        results = await asyncio.gather(*(guarded() for _ in range(sessions)))
        return results, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    key = setup_database()
    with TimedLLM() as llm:
        server = start_server(llm, POOL_PER_VERSION=str(args.concurrency), POOL_GLOBAL=str(args.concurrency),
                              POOL_ACQUIRE_TIMEOUT_S="120")
        try:
            asyncio.run(run(server.base_url, key, 5, 5))  # warm-up
            calls_before = len(llm.requests)
            results, elapsed = asyncio.run(run(server.base_url, key, args.sessions, args.concurrency))
            llm_calls = len(llm.requests) - calls_before
        finally:
            server.stop()
    errors = [e for _, _, e in results if e]
    walls = [w for w, _, e in results if not e]
    firsts = [f for _, f, e in results if f is not None and not e]
    steps_per_session = llm_calls / max(len(results), 1)
    emit({
        "benchmark": "concurrency",
        "sessions": args.sessions,
        "concurrency": args.concurrency,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "target_errors": 0,
        "elapsed_s": round(elapsed, 2),
        "sessions_per_s": round(args.sessions / elapsed, 1),
        "llm_calls_per_session": round(steps_per_session, 2),
        "session_wall_ms_p50": round(percentile(walls, 50) * 1000, 1),
        "session_wall_ms_p99": round(percentile(walls, 99) * 1000, 1),
        "time_to_first_chunk_ms_p50": round(percentile(firsts, 50) * 1000, 1),
        "platform_ms_per_step_p50": round(percentile(walls, 50) * 1000 / steps_per_session, 1),
        "platform_ms_per_step_p99": round(percentile(walls, 99) * 1000 / steps_per_session, 1),
    })


if __name__ == "__main__":
    main()
