"""Security policies: SSRF guards, entrypoint injection, rate limits, environment allowlist, risk."""

from __future__ import annotations

import socket

import pytest

from access.ratelimit import RateLimit, api_key_admit, rate_limit_take
from catalog.entrypoints import EntrypointError, check_entrypoint_allowed, load_entrypoint
from catalog.netguard import UnsafeURL, check_url
from runtime.config import RuntimeSettings

ALLOW = ["runtime.tools.", "platform_tools."]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://10.0.0.5/x", "http://172.16.3.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/", "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/", "http://localhost:8000/", "http://db.internal/", "http://printer.local/",
    "http://api.localhost/", "http://2130706433/", "http://0x7f000001/", "http://100.64.0.1/",
    "http://user:pass@example.com/", "ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/",
])
def test_ssrf_destinations_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=False, require_resolvable=True)


def test_rebinding_style_names_are_checked_by_what_they_resolve_to(monkeypatch):
    # a public-looking name that resolves to a private address (DNS rebinding) is refused at call time
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.1.2.3", 80))])
    with pytest.raises(UnsafeURL, match="10.1.2.3"):
        check_url("http://totally-public.example.com/api", allow_private=False, require_resolvable=True)
    # an unresolvable name cannot be checked, so it is refused when the call is made
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror()))
    with pytest.raises(UnsafeURL, match="cannot resolve"):
        check_url("http://127.0.0.1.nip.io/", allow_private=False, require_resolvable=True)


class _Rebinding:
    """A resolver whose first answer is public and every later one private (DNS rebinding)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host, port, *args, **kwargs):
        self.calls += 1
        ip = "93.184.216.34" if self.calls == 1 else "127.0.0.1"
        return [(2, 1, 6, "", (ip, port or 80))]


async def test_http_tool_is_not_steered_to_a_private_address_between_check_and_connect(monkeypatch):
    from catalog.specs import ToolSpec
    from runtime.net import public_http_client
    from runtime.tools.base import ToolContext, ToolError
    from runtime.tools.http_tool import HttpExecutable

    resolver = _Rebinding()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    spec = ToolSpec(id=1, name="rebind", description="d", kind="http", parameters={"type": "object"},
                    endpoint={"url": "http://rebind.example.com/api"})
    async with public_http_client(timeout=2) as client:
        tool = HttpExecutable(spec, client=client, allow_private=False)
        with pytest.raises(ToolError, match="refused: .*127.0.0.1"):
            await tool.run({}, ToolContext(session_id="s", task="t", store=None))
    assert resolver.calls == 2  # the call-time check saw a public address; the connect-time one did not


async def test_page_fetch_is_not_steered_to_a_private_address_between_check_and_connect(monkeypatch):
    from runtime.tools.search import DirectFetchExtractor

    monkeypatch.setattr(socket, "getaddrinfo", _Rebinding())
    [(_, content, error)] = await DirectFetchExtractor(allow_private=False).extract(
        ["http://rebind.example.com/page"], http=None)
    assert content is None and error.startswith("refused:") and "127.0.0.1" in error


async def test_public_client_connects_to_the_address_it_checked(monkeypatch):
    import httpcore
    import httpx

    from runtime.net import public_http_client

    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [(2, 1, 6, "", ("93.184.216.34", port))])
    dialled = []

    async def connect_tcp(self, host, port, **kwargs):
        dialled.append((host, port))
        raise httpcore.ConnectError("not really dialling out in tests")

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    async with public_http_client(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://pinned.example.com:8080/x")
    assert dialled == [("93.184.216.34", 8080)]  # the checked address, not the name looked up again


def test_private_destinations_can_be_allowed_by_setting():
    assert check_url("http://127.0.0.1:9/x", allow_private=True) == ["127.0.0.1"]


@pytest.mark.parametrize("entrypoint", [
    "os:system", "builtins:eval", "subprocess:Popen", "runtime.tools.system:ReasoningTool; import os",
    "runtime.tools.system:ReasoningTool.__class__", "../runtime/tools/system:ReasoningTool",
    "runtime.toolsx.evil:Tool", "runtime:tools", "__import__('os'):system", "runtime.tools.system",
    "platform_toolsevil.x:Y",
])
def test_entrypoint_injection_is_refused(entrypoint):
    with pytest.raises(EntrypointError):
        check_entrypoint_allowed(entrypoint, ALLOW)


def test_an_allowlisted_module_must_hold_a_tool_class():
    with pytest.raises(EntrypointError, match="not a tool class"):
        load_entrypoint("runtime.tools.base:ToolError", ALLOW)
    assert load_entrypoint("runtime.tools.system:ReasoningTool", ALLOW).tool_name == "reasoning_tool"


@pytest.mark.django_db(transaction=True)
def test_token_bucket_is_shared_and_refills():
    limit = RateLimit.parse("60/min,burst=3")  # one token a second, three at once
    assert [rate_limit_take(key="t:a", limit=limit) for _ in range(3)] == [None, None, None]
    wait = rate_limit_take(key="t:a", limit=limit)
    assert wait is not None and 0 < wait <= 1.0
    assert rate_limit_take(key="t:b", limit=limit) is None  # buckets are per key


@pytest.mark.django_db(transaction=True)
def test_a_chat_requests_key_and_its_token_are_checked_together():
    """One statement: a valid key takes a token from its own bucket (429 with the wait when
    empty); a wrong or revoked key takes nothing (no bucket for it) and gets 401."""
    from access.models import RateBucket
    from access.services import api_key_create, api_key_revoke
    from platform_site.errors import AuthenticationRequired, RateLimited

    limit = RateLimit.parse("60/min,burst=2")
    issued = api_key_create(name="bucketed")
    header = f"Bearer {issued.raw}"
    assert [api_key_admit(header, limit=limit).key_id for _ in range(2)] == [issued.key.pk] * 2
    with pytest.raises(RateLimited) as refused:
        api_key_admit(header, limit=limit)
    assert 0 < refused.value.details["retry_after_s"] <= 1.0
    assert RateBucket.objects.get(key=f"api_key:{issued.key.pk}").tokens < 1
    revoked = api_key_create(name="revoked")
    api_key_revoke(key=revoked.key)
    for bad in ("Bearer not-a-key", "", "Basic abc", f"Bearer {revoked.raw}"):
        with pytest.raises(AuthenticationRequired):
            api_key_admit(bad, limit=limit)
    assert list(RateBucket.objects.values_list("key", flat=True)) == [f"api_key:{issued.key.pk}"]
    assert api_key_admit(header, limit=None).key_id == issued.key.pk  # no limit: the key alone


def test_rate_limit_syntax():
    assert RateLimit.parse("") is None and RateLimit.parse("0") is None
    assert RateLimit.parse("30/min") == RateLimit(per_minute=30, capacity=30)
    assert RateLimit.parse("2/s,burst=5") == RateLimit(per_minute=120, capacity=5)
    assert RateLimit.parse("600/hour") == RateLimit(per_minute=10, capacity=600)
    for bad in ("-1/min", "5/fortnight"):
        with pytest.raises(ValueError):
            RateLimit.parse(bad)


def test_environment_allowlist_by_name_and_tag():
    settings = RuntimeSettings(
        llm_base_url="", llm_api_key="", llm_model="m", llm_timeout_s=1, llm_max_retries=0,
        tavily_base_url="", tavily_api_key="", entrypoint_allowlist=(), http_allow_private=False,
        environment_allowlist=("web_search_tool", "tag:inventory"),
    )
    assert settings.tool_allowed_here("web_search_tool", (), False)
    assert settings.tool_allowed_here("stock_lookup", ("inventory",), False)
    assert not settings.tool_allowed_here("wire_money", ("finance",), False)
    assert settings.tool_allowed_here("final_answer_tool", (), True)  # system tools always


@pytest.mark.django_db
def test_oversized_admin_api_body_is_an_openai_413(client, admin_key, settings):
    settings.MAX_REQUEST_BYTES = 1000
    response = client.post("/admin/tools", data="x" * 2000, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
