"""This platform vs sgr-agent-core 0.7.1: same zero-latency scripted LLM, same task, same client.

Each server gets its own scripted LLM (reasoning tool call for the reasoning phase, final answer for
the action: two LLM calls per session). Both servers run at once and are measured in interleaved
rounds (n sequential streaming sessions, then n at concurrency C) so load swings hit both alike.
Ours persists every session and message in PostgreSQL (counted); sgr-agent-core keeps its agents in
memory and writes one JSON log per session (its default `execution.logs_dir`; counted). It is
installed once into var/bench-sgr-venv (Python 3.11) and reused. Each scripted LLM runs in a process
of its own (``_llm_process.py``), apart from this client. Overhead per step = (session wall - LLM
service time timed inside the LLM server) / LLM calls, sequential sessions.
Prints one JSON object; exits 1 if sgr-agent-core cannot be installed/started or a session fails.
Usage: .venv/bin/python bench/vs_sgr_agent_core.py [--sessions 300] [--warmup 20] [--concurrency 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx
import psutil
from _harness import (
    ROOT,
    emit,
    percentile,
    run_concurrent,
    setup_database,
    start_server,
    stream_session,
)

from tests.e2e.conftest import _free_port

SGR_VERSION = "0.7.1"
VENV = ROOT / "var" / "bench-sgr-venv"
SGR_DIR = ROOT / "var" / "bench-sgr-run"  # config.yaml, server log, per-session JSON logs
TARGETS = {"sessions_per_s_ratio_min": 3.0, "platform_ms_per_step_p50_max": 5.0, "rss_growth_mb_max": 5.0}


class LLMProcess:
    """A scripted LLM (``_llm_process.py``) in a process of its own, for one system under test;
    ``service_times()``: ``(wall-clock start, seconds)`` of each request it served."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("_llm_process.py"))],
                                     stdout=subprocess.PIPE, text=True)
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url:
            raise RuntimeError(f"the scripted LLM did not start ({self.proc.wait(10)})")

    def service_times(self) -> list[tuple[float, float]]:
        root = self.base_url.removesuffix("/v1")
        return [tuple(t) for t in httpx.get(root + "/_service_times", timeout=30).json()]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def ensure_sgr_venv() -> None:
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('sgr-agent-core'))"]
    if python.exists() and subprocess.run(check, check=False, capture_output=True, text=True).stdout.strip() == SGR_VERSION:
        return
    base = shutil.which("python3.11") or shutil.which("python3")
    steps = [[base, "-m", "venv", str(VENV)],
             [str(python), "-m", "pip", "install", "-q", f"sgr-agent-core=={SGR_VERSION}"]]
    for cmd in steps:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")


class SgrServer:
    """`sgr` (uvicorn + FastAPI) on a free loopback port with an sgr_tool_calling research_agent."""

    def __init__(self, llm_base_url: str) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        shutil.rmtree(SGR_DIR, ignore_errors=True)
        SGR_DIR.mkdir(parents=True)
        (SGR_DIR / "config.yaml").write_text(
            "llm:\n  api_key: bench\n  base_url: " + llm_base_url + "\n  model: scripted\n"
            "execution:\n  logs_dir: logs\n"
            "agents:\n  research_agent:\n    base_class: sgr_tool_calling_agent\n    tools:\n"
            "      - web_search_tool:\n          api_key: unused\n          api_base_url: http://127.0.0.1:9\n"
            "      - final_answer_tool\n")
        self.log = SGR_DIR / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> SgrServer:
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(VENV / "bin" / "sgr"), "-c", "config.yaml", "--host", "127.0.0.1",
                                      "-p", str(self.port)], cwd=SGR_DIR, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sgr exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"sgr did not answer /health within 60 s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()

    def persisted(self) -> int:
        logs = SGR_DIR / "logs"
        return len(list(logs.glob("*.json"))) if logs.exists() else 0


async def run_sequential(base_url: str, headers: dict, n: int):
    """n sessions one after another: each one's result and wall-clock window (for its LLM calls)."""
    out = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        started = time.perf_counter()
        for _ in range(n):
            opened = time.time()
            wall, first, err = await stream_session(client, headers)
            out.append((wall, first, err, opened, time.time()))
        return out, time.perf_counter() - started


def with_llm_calls(results: list, service: list[tuple[float, float]]) -> list:
    """Each sequential session's result with the number and the total service time of the LLM
    calls that started inside its window (the sessions ran one at a time)."""
    starts = sorted(service)
    out, i = [], 0
    for wall, first, err, opened, closed in results:
        while i < len(starts) and starts[i][0] < opened:
            i += 1
        calls = []
        while i < len(starts) and starts[i][0] <= closed:
            calls.append(starts[i][1])
            i += 1
        out.append((wall, first, err, len(calls), sum(calls)))
    return out


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class System:
    """One server under test: its client headers, its scripted LLM, its pid and the collected results."""

    def __init__(self, name: str, base_url: str, headers: dict, llm: LLMProcess, pid: int) -> None:
        self.name, self.base_url, self.headers, self.llm = name, base_url, headers, llm
        self.proc = psutil.Process(pid)
        self.seq: list = []
        self.con: list = []
        self.seq_s = self.con_s = 0.0

    def warm_up(self, args) -> None:
        asyncio.run(run_sequential(self.base_url, self.headers, args.warmup))
        asyncio.run(run_concurrent(self.base_url, self.headers, args.concurrency, args.concurrency))
        self.rss_before = self.proc.memory_info().rss
        self.calls_before = len(self.llm.service_times())

    def round(self, n: int, args) -> None:
        results, elapsed = asyncio.run(run_sequential(self.base_url, self.headers, n))
        self.seq += with_llm_calls(results, self.llm.service_times())
        self.seq_s += elapsed
        results, elapsed = asyncio.run(run_concurrent(self.base_url, self.headers, n, args.concurrency))
        self.con += results
        self.con_s += elapsed

    def report(self) -> dict:
        rss_after = self.proc.memory_info().rss
        ok = [r for r in self.seq if not r[2]]
        steps = [(wall - llm_s) / calls for wall, _, _, calls, llm_s in ok if calls]
        llm_per_call = [llm_s / calls for _, _, _, calls, llm_s in ok if calls]
        con_ok = [r for r in self.con if not r[2]]
        errors = [r[2] for r in self.seq + self.con if r[2]]
        n = len(self.seq)
        return {
            "system": self.name,
            "errors": len(errors), "error_kinds": sorted(set(errors)),
            "llm_calls_per_session": round((len(self.llm.service_times()) - self.calls_before) / (2 * n), 2),
            "sequential": {
                "sessions_per_s": round(n / self.seq_s, 1),
                "ttfc_ms_p50": ms(percentile([r[1] for r in ok if r[1] is not None], 50)),
                "session_wall_ms_p50": ms(percentile([r[0] for r in ok], 50)),
                "session_wall_ms_p99": ms(percentile([r[0] for r in ok], 99)),
                "llm_service_ms_per_call_p50": ms(percentile(llm_per_call, 50)),
                "overhead_ms_per_step_p50": ms(percentile(steps, 50)),
                "overhead_ms_per_step_p99": ms(percentile(steps, 99)),
            },
            "concurrent": {
                "sessions_per_s": round(len(self.con) / self.con_s, 1),
                "ttfc_ms_p50": ms(percentile([r[1] for r in con_ok if r[1] is not None], 50)),
                "session_wall_ms_p50": ms(percentile([r[0] for r in con_ok], 50)),
                "session_wall_ms_p99": ms(percentile([r[0] for r in con_ok], 99)),
            },
            "rss_before_mb": round(self.rss_before / 2**20, 1),
            "rss_after_mb": round(rss_after / 2**20, 1),
            "rss_growth_kb_per_session": round((rss_after - self.rss_before) / 1024 / (2 * n), 1),
        }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result: dict = {"benchmark": "vs_sgr_agent_core", "sgr_agent_core_version": SGR_VERSION,
                    "sessions": args.sessions, "warmup_sessions": args.warmup, "concurrency": args.concurrency,
                    "rounds": args.rounds, "cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()],
                    "targets": TARGETS}
    with contextlib.redirect_stdout(sys.stderr):  # load_defaults prints its counts; stdout is the JSON
        key = setup_database()
    from django.utils import timezone

    from sessions_app.models import Session, SessionMessage, SessionState

    since = timezone.now()
    sgr = server = None
    their_llm, our_llm = LLMProcess(), LLMProcess()
    try:
        try:
            try:  # reported in the JSON with a non-zero exit, never skipped
                ensure_sgr_venv()
                sgr = SgrServer(their_llm.base_url)
                sgr.start()  # stopped in `finally` even if it never answers
            except Exception as exc:  # noqa: BLE001
                result["error"] = f"sgr-agent-core: {type(exc).__name__}: {exc}"
                result["traceback"] = traceback.format_exc()[-3000:]
                emit(result)
                return 1
            server = start_server(our_llm, POOL_PER_VERSION=str(max(args.concurrency, 4)),
                                  POOL_GLOBAL=str(max(args.concurrency, 64)), POOL_ACQUIRE_TIMEOUT_S="120",
                                  API_KEY_RATE_LIMIT="100000000/min,burst=100000000")  # checked, never limiting
            systems = [System("sgr-agent-core", sgr.base_url, {}, their_llm, sgr.proc.pid),
                       System("platform", server.base_url, {"Authorization": f"Bearer {key}"}, our_llm,
                              server.proc.pid)]
            for system in systems:
                system.warm_up(args)
            # interleaved rounds (sequential, then concurrent), so load swings on a shared machine hit both
            per_round = [args.sessions // args.rounds + (i < args.sessions % args.rounds) for i in range(args.rounds)]
            for n in per_round:
                for system in systems:
                    system.round(n, args)
            theirs, ours = (system.report() for system in systems)
            theirs["persisted_session_logs"] = sgr.persisted()
        finally:
            for running in (server, sgr):
                if running is not None:
                    running.stop()
    finally:
        their_llm.stop()
        our_llm.stop()
    sessions = Session.objects.filter(created_at__gte=since)
    ours["persisted_sessions"] = sessions.count()
    ours["persisted_sessions_completed"] = sessions.filter(state=SessionState.COMPLETED).count()
    ours["persisted_messages"] = SessionMessage.objects.filter(session__in=sessions).count()

    result["ours"], result["theirs"] = ours, theirs
    result["ratios_ours_over_theirs"] = {
        "sessions_per_s_sequential": ratio(ours["sequential"]["sessions_per_s"], theirs["sequential"]["sessions_per_s"]),
        "sessions_per_s_concurrent": ratio(ours["concurrent"]["sessions_per_s"], theirs["concurrent"]["sessions_per_s"]),
        "ttfc_p50_sequential (lower is better)": ratio(ours["sequential"]["ttfc_ms_p50"],
                                                       theirs["sequential"]["ttfc_ms_p50"]),
        "ttfc_p50_concurrent (lower is better)": ratio(ours["concurrent"]["ttfc_ms_p50"],
                                                       theirs["concurrent"]["ttfc_ms_p50"]),
    }
    ratios = result["ratios_ours_over_theirs"]
    result["targets_met"] = {
        "sessions_per_s_3x_sequential": (ratios["sessions_per_s_sequential"] or 0) >= TARGETS["sessions_per_s_ratio_min"],
        "sessions_per_s_3x_concurrent": (ratios["sessions_per_s_concurrent"] or 0) >= TARGETS["sessions_per_s_ratio_min"],
        "overhead_p50_under_5ms": ours["sequential"]["overhead_ms_per_step_p50"] < TARGETS["platform_ms_per_step_p50_max"],
        "memory_flat": (ours["rss_after_mb"] - ours["rss_before_mb"]) < TARGETS["rss_growth_mb_max"],
        "everything_persisted": ours["persisted_sessions_completed"] == ours["persisted_sessions"]
        == 2 * args.sessions + args.warmup + args.concurrency,
    }
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)
    return 1 if ours["errors"] or theirs["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
