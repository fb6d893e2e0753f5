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

from _harness import (
    InstantLLM,
    emit,
    percentile,
    run_concurrent,
    setup_database,
    start_server,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    key = setup_database()
    with InstantLLM() as llm:
        server = start_server(llm, POOL_PER_VERSION=str(args.concurrency), POOL_GLOBAL=str(args.concurrency),
                              POOL_ACQUIRE_TIMEOUT_S="120")
        try:
            headers = {"Authorization": f"Bearer {key}"}
            asyncio.run(run_concurrent(server.base_url, headers, 5, 5))  # warm-up
            calls_before = len(llm.requests)
            results, elapsed = asyncio.run(run_concurrent(server.base_url, headers, args.sessions, args.concurrency))
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
