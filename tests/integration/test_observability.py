"""/metrics (Prometheus text, admin key) and JSON logs carrying the session's correlation id."""

import json
import logging

import pytest
from django.test import override_settings

from platform_site.observability import CorrelationFilter, correlation_id


@pytest.mark.django_db
def test_metrics_need_an_admin_key(client, chat_key, admin_key):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {chat_key}").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert response.status_code == 200
    text = response.content.decode()
    for name in ("agent_step_duration_seconds", "llm_calls_total", "tool_calls_total", "tools_per_prompt",
                 "tool_schema_tokens", "pool_instances", "pool_wait_seconds", 'sessions{state="completed"}'):
        assert name in text


@pytest.mark.django_db
@override_settings(METRICS_PUBLIC=True)
def test_metrics_can_be_public(client):
    assert client.get("/metrics").status_code == 200


def test_json_log_lines_carry_the_correlation_id():
    from pythonjsonlogger.json import JsonFormatter

    record = logging.LogRecord("runtime.agent", logging.INFO, __file__, 1, "step %d", (1,), None)
    token = correlation_id.set("session-123")
    try:
        CorrelationFilter().filter(record)
    finally:
        correlation_id.reset(token)
    line = json.loads(JsonFormatter("%(levelname)s %(message)s %(correlation_id)s").format(record))
    assert line == {"levelname": "INFO", "message": "step 1", "correlation_id": "session-123"}


def test_process_rss_is_this_process_and_keeps_its_handle(monkeypatch):
    import os

    import psutil

    from platform_site import observability as obs

    monkeypatch.setattr(obs, "_process", None)  # restored after the test, whatever the test leaves
    first = obs.process_rss()
    handle = obs._process
    assert abs(first - psutil.Process().memory_info().rss) < 64 * 2**20
    obs.process_rss()
    assert obs._process is handle  # not rebuilt per call (it reads /proc to build one)
    monkeypatch.setattr(os, "getpid", lambda: handle.pid + 1)  # as in a forked child
    monkeypatch.setattr(psutil, "Process", lambda: "new handle")
    with pytest.raises(AttributeError):  # a new handle is made for the new pid ("new handle" has no memory_info)
        obs.process_rss()
    assert obs._process == "new handle"
