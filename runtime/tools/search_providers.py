"""Which web search backend the search tools use (``WEB_SEARCH_PROVIDER``), and SearXNG.

- ``tavily`` (the default): Tavily's API at ``TAVILY_BASE_URL`` with ``TAVILY_API_KEY``
  (``runtime.tools.search``).
- ``searxng``: a self-hosted SearXNG at ``SEARXNG_BASE_URL``, through its JSON API (the
  instance must allow it: ``search.formats`` in its ``settings.yml`` lists ``json``); pages are
  fetched directly (``DirectFetchExtractor``).
- ``package.module:name``: any callable that takes the ``RuntimeSettings`` and returns a
  ``SearchProvider`` (or None: no web search), for another engine or an internal index.

A provider that cannot be built does not stop the server: its search tools fail with the reason,
which the model hears like any tool error, and the reason is logged once per instance.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
from django.utils.module_loading import import_string

from runtime.tools.base import ToolError
from runtime.tools.search import (
    DirectFetchExtractor,
    ExtractResult,
    SearchProvider,
    SearchResult,
    TavilySearchProvider,
)

if TYPE_CHECKING:
    from runtime.config import RuntimeSettings

logger = logging.getLogger(__name__)

BUILT_IN = ("tavily", "searxng")


class SearxngSearchProvider:
    """SearXNG's ``GET /search?q=…&format=json``: the engines' merged results, no key."""

    name = "SearXNG"

    def __init__(self, base_url: str, *, timeout: float = 30.0, fallback: DirectFetchExtractor | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.fallback = fallback or DirectFetchExtractor()

    def __repr__(self) -> str:
        return f"SearxngSearchProvider(base_url={self.base_url!r})"

    async def search(self, query: str, *, max_results: int, http: httpx.AsyncClient) -> list[SearchResult]:
        try:
            resp = await http.get(f"{self.base_url}/search", params={"q": query, "format": "json"},
                                  timeout=self.timeout, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise ToolError(f"{self.name} search timed out after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"{self.name} search request failed: {type(exc).__name__}") from None
        if resp.status_code == 403:
            raise ToolError(f"{self.name} search failed: HTTP 403 (is the json format enabled in its settings.yml, "
                            "search.formats?)")
        if resp.status_code >= 400:
            raise ToolError(f"{self.name} search failed: HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            raise ToolError(f"{self.name} search returned invalid JSON (HTTP {resp.status_code})") from None
        items = data.get("results") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ToolError(f"{self.name} search returned no 'results' list")
        found = [SearchResult(url=str(item["url"]), title=str(item.get("title") or ""),
                              snippet=str(item.get("content") or ""))
                 for item in items if isinstance(item, dict) and item.get("url")]
        return found[:max_results]

    async def extract(self, urls: list[str], *, http: httpx.AsyncClient) -> list[ExtractResult]:
        return await self.fallback.extract(urls, http=http)


class UnavailableSearchProvider:
    """Stands in for a provider that could not be built: every call says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def search(self, query: str, *, max_results: int, http: httpx.AsyncClient) -> list[SearchResult]:
        raise ToolError(self.reason)

    async def extract(self, urls: list[str], *, http: httpx.AsyncClient) -> list[ExtractResult]:
        return [(url, None, self.reason) for url in urls]


def web_search_provider(settings: RuntimeSettings) -> SearchProvider | None:
    """The provider ``settings.web_search_provider`` names (None: web search is off)."""
    choice = settings.web_search_provider
    fallback = DirectFetchExtractor(allow_private=settings.http_allow_private)
    if choice == "tavily":
        return (TavilySearchProvider(settings.tavily_base_url, settings.tavily_api_key, fallback=fallback)
                if settings.tavily_base_url else None)
    if choice == "searxng":
        return SearxngSearchProvider(settings.searxng_base_url, fallback=fallback) if settings.searxng_base_url else None
    try:
        return import_string(choice.replace(":", "."))(settings)
    except Exception as exc:  # a typo in the setting must not take the server down: the tools say so
        logger.exception("web search provider %r could not be built", choice)
        return UnavailableSearchProvider(f"web search provider {choice!r} could not be built: "
                                         f"{type(exc).__name__}: {exc}")
