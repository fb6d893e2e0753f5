"""http tools against a real local endpoint: the arguments POSTed as JSON with the configured
headers, and each way a call can go wrong (timeout, oversized or redirecting or failing answer,
missing secret, private address, bad arguments) a clear ``ToolError`` that names no secret; a
declared tool fails as cleanly."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from catalog.specs import ToolSpec
from runtime.tools.base import ToolContext, ToolError
from runtime.tools.executors import build_executable
from runtime.tools.http_tool import HttpExecutable
from tests.fakes.http_endpoint import QuietHandler, serving

PARAMETERS = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
SECRET = "s3cr3t-value"


@pytest.fixture
def endpoint():
    """``/ok`` echoes what it got; ``/slow`` answers after 2 s; ``/big`` sends 5,000 bytes;
    ``/moved`` redirects to ``/ok``; ``/fail`` is a 500."""
    seen: list[dict[str, Any]] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append({"path": self.path, "body": json.loads(body), "headers": dict(self.headers)})
            status, payload, extra = 200, json.dumps({"got": json.loads(body)}).encode(), {}
            if self.path == "/slow":
                time.sleep(2)
            elif self.path == "/big":
                payload = b"x" * 5000
            elif self.path == "/moved":
                status, payload, extra = 302, b"", {"location": "/ok"}
            elif self.path == "/fail":
                status, payload = 500, b"boom: the inventory is down"
            self.reply(status, payload, extra)

    with serving(Handler) as server:
        server.seen = seen  # type: ignore[attr-defined]
        yield server


async def _call(url: str, arguments: dict[str, Any], *, allow_private: bool = True, **endpoint: Any) -> str:
    spec = ToolSpec(id=1, name="stock_lookup", description="d", kind="http", parameters=PARAMETERS,
                    endpoint={"url": url, **endpoint})
    async with httpx.AsyncClient() as client:
        tool = HttpExecutable(spec, client=client, allow_private=allow_private)
        return await tool.run(arguments, ToolContext(session_id="s", task="t", store=None))


async def test_the_arguments_are_posted_as_json_with_headers_from_the_environment(endpoint, monkeypatch):
    monkeypatch.setenv("STOCK_API_KEY", SECRET)
    result = await _call(endpoint.base + "/ok", {"sku": "W-1"}, headers_from_env={"x-api-key": "STOCK_API_KEY"})
    assert json.loads(result) == {"got": {"sku": "W-1"}}
    [request] = endpoint.seen
    assert request["headers"]["x-api-key"] == SECRET
    assert request["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("path,endpoint_options,message", [
    ("/slow", {"timeout_s": 0.3}, "timed out after 0.3s"),
    ("/big", {"max_response_bytes": 1000}, "response larger than 1000 bytes"),
    ("/moved", {}, r"redirect \(HTTP 302\), which is not followed"),
    ("/fail", {}, "endpoint answered HTTP 500: boom: the inventory is down"),
])
async def test_a_failing_endpoint_is_a_clear_tool_error(endpoint, path, endpoint_options, message):
    started = time.perf_counter()
    with pytest.raises(ToolError, match=message):
        await _call(endpoint.base + path, {"sku": "W-1"}, **endpoint_options)
    assert time.perf_counter() - started < 1.9  # the slow answer is not waited for
    assert [r["path"] for r in endpoint.seen] == [path]  # a redirect is not followed


async def test_a_missing_secret_or_bad_arguments_never_reach_the_endpoint(endpoint, monkeypatch):
    monkeypatch.delenv("STOCK_API_KEY", raising=False)
    with pytest.raises(ToolError, match="environment variable STOCK_API_KEY is not set"):
        await _call(endpoint.base + "/ok", {"sku": "W-1"}, headers_from_env={"x-api-key": "STOCK_API_KEY"})
    with pytest.raises(ToolError, match="sku"):
        await _call(endpoint.base + "/ok", {"quantity": 3})
    assert endpoint.seen == []


async def test_a_private_address_is_refused_unless_allowed(endpoint):
    with pytest.raises(ToolError, match="refused: .*127.0.0.1"):
        await _call(endpoint.base + "/ok", {"sku": "W-1"}, allow_private=False)
    assert endpoint.seen == []


async def test_a_declared_tool_fails_cleanly():
    spec = ToolSpec(id=2, name="warehouse_move", description="Moves stock", kind="declared", parameters=PARAMETERS)
    tool = build_executable(spec, entrypoint_allowlist=[])
    ctx = ToolContext(session_id="s", task="t", store=None)
    with pytest.raises(ToolError, match="warehouse_move cannot be executed: it is declared in the catalog without"):
        await tool.run({"sku": "W-1"}, ctx)
    with pytest.raises(ToolError, match="sku"):  # its arguments are still checked first
        await tool.run({}, ctx)
