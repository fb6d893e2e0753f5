"""1,000 sequential sessions through one agent instance: RSS growth of the server and sessions/s.

Target: RSS growth under 5 MB after warm-up. Prints JSON.
Usage: .venv/bin/python bench/instance_memory.py [--sessions 1000] [--warmup 100]
"""

from __future__ import annotations

import argparse

import httpx
import psutil
from _harness import InstantLLM, emit, now, setup_database, start_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    key = setup_database()
    with InstantLLM() as llm:
        server = start_server(llm, POOL_PER_VERSION="1")
        try:
            proc = psutil.Process(server.proc.pid)
            body = {"model": "research_agent", "messages": [{"role": "user", "content": "q"}]}
            headers = {"Authorization": f"Bearer {key}"}
            instance_ids = set()
            rss_after_warmup = None
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                started = now()
                for n in range(args.sessions):
                    response = client.post("/v1/chat/completions", json=body)
                    response.raise_for_status()
                    if n + 1 == args.warmup:
                        rss_after_warmup = proc.memory_info().rss
                        measured_from = now()
                elapsed = now() - started
                measured = now() - measured_from
                rss_end = proc.memory_info().rss
                instances = client.get("/agents", headers=headers).json()
            from sessions_app.models import AgentInstance, InstanceStatus

            for inst in AgentInstance.objects.filter(pid=server.proc.pid).exclude(status=InstanceStatus.STOPPED):
                instance_ids.add(str(inst.pk))
            emit({
                "benchmark": "instance_memory",
                "sessions": args.sessions,
                "warmup_sessions": args.warmup,
                "instances_used": len(instance_ids),
                "rss_after_warmup_mb": round(rss_after_warmup / 2**20, 2),
                "rss_end_mb": round(rss_end / 2**20, 2),
                "rss_growth_after_warmup_mb": round((rss_end - rss_after_warmup) / 2**20, 2),
                "target_rss_growth_mb": 5,
                "sessions_per_s_overall": round(args.sessions / elapsed, 1),
                "sessions_per_s_after_warmup": round((args.sessions - args.warmup) / measured, 1),
                "llm_calls_per_session": 2,
                "active_sessions_left": len(instances.get("agents", [])),
            })
        finally:
            server.stop()


if __name__ == "__main__":
    main()
