"""WEB_SEARCH_PROVIDER: Tavily (the default), a self-hosted SearXNG, or an operator's own factory;
SearXNG's JSON search against a local fake, its failures as clear tool errors, and a provider
that cannot be built failing its tools with the reason instead of the server."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from runtime.config import RuntimeSettings
from runtime.tools.base import ToolError
from runtime.tools.search import TavilySearchProvider
from runtime.tools.search_providers import (
    SearxngSearchProvider,
    UnavailableSearchProvider,
    web_search_provider,
)
from tests.fakes.search_server import ScriptedSearch, SearchReply, result

BASE = RuntimeSettings(llm_base_url="", llm_api_key="", llm_model="m", llm_timeout_s=5, llm_max_retries=0,
                       tavily_base_url="https://api.tavily.com", tavily_api_key="k", entrypoint_allowlist=(),
                       http_allow_private=True)


class OwnProvider:
    """What an operator's factory may return (``tests.integration.test_search_providers:own``)."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings


def own(settings: RuntimeSettings) -> OwnProvider:
    return OwnProvider(settings)


def test_the_setting_picks_the_provider():
    assert isinstance(web_search_provider(BASE), TavilySearchProvider)
    assert web_search_provider(dataclasses.replace(BASE, tavily_base_url="")) is None  # web search off
    searxng = dataclasses.replace(BASE, web_search_provider="searxng", searxng_base_url="http://searx.local/")
    assert isinstance(web_search_provider(searxng), SearxngSearchProvider)
    assert web_search_provider(searxng).base_url == "http://searx.local"
    assert web_search_provider(dataclasses.replace(searxng, searxng_base_url="")) is None
    mine = web_search_provider(dataclasses.replace(BASE, web_search_provider=f"{__name__}:own"))
    assert isinstance(mine, OwnProvider) and mine.settings.tavily_api_key == "k"


async def test_a_provider_that_cannot_be_built_fails_its_tools_with_the_reason():
    broken = web_search_provider(dataclasses.replace(BASE, web_search_provider="no_such_module:factory"))
    assert isinstance(broken, UnavailableSearchProvider)
    with pytest.raises(ToolError, match="'no_such_module:factory' could not be built: ModuleNotFoundError"):
        await broken.search("q", max_results=3, http=None)
    [(_, content, error)] = await broken.extract(["https://example.com"], http=None)
    assert content is None and "could not be built" in error


@pytest.fixture
def searx():
    with ScriptedSearch() as server:
        yield server


async def test_searxng_search_reads_its_json_results(searx):
    searx.enqueue([result(f"Doc {i}", f"https://example.com/{i}", f"snippet {i}") for i in range(4)])
    async with httpx.AsyncClient() as http:
        found = await SearxngSearchProvider(searx.base_url).search("fusion news", max_results=3, http=http)
    assert [(r.url, r.title, r.snippet) for r in found] == [
        (f"https://example.com/{i}", f"Doc {i}", f"snippet {i}") for i in range(3)]
    assert searx.requests == [{"query": "fusion news", "format": "json"}]


@pytest.mark.parametrize("reply,message", [
    (SearchReply(status=500), "SearXNG search failed: HTTP 500"),
    (SearchReply(status=429), "SearXNG search failed: HTTP 429"),
])
async def test_searxng_failures_are_tool_errors(searx, reply, message):
    searx.enqueue(reply.results, status=reply.status)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ToolError, match=message):
            await SearxngSearchProvider(searx.base_url).search("q", max_results=3, http=http)


async def test_searxng_without_its_json_format_says_how_to_enable_it(searx, monkeypatch):
    # SearXNG answers 403 when ``json`` is not among its search formats; the fake does when asked
    # for another format, so the provider's request is bent to ask for html here
    provider = SearxngSearchProvider(searx.base_url)
    real_get = httpx.AsyncClient.get

    async def html_format(self, url, *, params=None, **kwargs):
        return await real_get(self, url, params={**(params or {}), "format": "html"}, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "get", html_format)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ToolError, match="HTTP 403 .*json format"):
            await provider.search("q", max_results=3, http=http)


async def test_searxng_unreachable_is_a_tool_error():
    async with httpx.AsyncClient() as http:
        with pytest.raises(ToolError, match="SearXNG search request failed: ConnectError"):
            await SearxngSearchProvider("http://127.0.0.1:9").search("q", max_results=3, http=http)
