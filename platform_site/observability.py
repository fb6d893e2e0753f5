"""Structured logs with a correlation id, and Prometheus metrics.

``correlation_id`` (the session id) lives in a context variable set when a run
starts; asyncio tasks and the worker threads of ``sync_to_async`` inherit it, so
every log line of a session carries it. Logs are JSON (python-json-logger)
unless LOG_FORMAT=plain.
"""

from __future__ import annotations

import contextvars
import logging
import os

import psutil
from prometheus_client import Counter, Gauge, Histogram

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


class CorrelationFilter(logging.Filter):
    """Adds ``correlation_id`` to every record (from the record's extra, else the context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = correlation_id.get()
        return True


STEP_SECONDS = Histogram(
    "agent_step_duration_seconds", "Duration of one agent step (reasoning, action, tool).",
    ["template", "agent_kind"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LLM_CALLS = Counter("llm_calls_total", "LLM calls by outcome.", ["template", "outcome"])
LLM_SECONDS = Histogram(
    "llm_call_duration_seconds", "Latency of LLM calls.", ["template"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LLM_TOKENS = Counter("llm_tokens_total", "Tokens reported by the LLM.", ["template", "kind"])
TOOL_CALLS = Counter("tool_calls_total", "Tool executions by status.", ["tool", "status"])
TOOL_SECONDS = Histogram("tool_duration_seconds", "Tool execution time.", ["tool"],
                         buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60))
TOOLS_PER_PROMPT = Histogram("tools_per_prompt", "Tools offered to the LLM in one step.", ["template"],
                             buckets=(1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 100, 200))
TOOL_SCHEMA_TOKENS = Histogram("tool_schema_tokens", "Estimated tokens of tool schemas in one prompt.", ["template"],
                               buckets=(100, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000))
TOOLS_REMOVED = Counter("tools_removed_total", "Tools left out of a step, by rule.", ["rule"])
POOL_INSTANCES = Gauge("pool_instances", "Agent instances of this process by status.", ["status"])
POOL_WAIT_SECONDS = Histogram("pool_wait_seconds", "Time a request waited for an agent instance.",
                              buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30))
POOL_EXHAUSTED = Counter("pool_exhausted_total", "Requests refused with 503 because the pool was full.")
SESSIONS_FINISHED = Counter("sessions_finished_total", "Runs ended, by resulting state.", ["template", "state"])


class SessionStateCollector:
    """``sessions`` gauge by state, read from the database at scrape time."""

    def collect(self):
        from django.db.models import Count
        from prometheus_client.core import GaugeMetricFamily

        from sessions_app.models import Session, SessionState

        family = GaugeMetricFamily("sessions", "Sessions in the database by state.", labels=["state"])
        counts = dict(Session.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
        for state in SessionState.values:
            family.add_metric([state], counts.get(state, 0))
        yield family


_process: psutil.Process | None = None


def process_rss() -> int:
    """This process's resident memory in bytes (recorded on its instances when a session ends).
    The ``psutil.Process`` handle is kept: building one reads /proc each time (~0.2 ms); a
    forked child makes its own."""
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = psutil.Process()
    return _process.memory_info().rss
