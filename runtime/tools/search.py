"""Web search providers: the ``SearchProvider`` protocol, Tavily over HTTP, and a direct page fetcher.

Providers receive the HTTP client per call (``ctx.http``) and own no global state. Every failure
surfaces as ``ToolError`` with the provider, the endpoint and the status code; the API key never
appears in a message or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Protocol

import httpx

from catalog.netguard import UnsafeURL, check_url
from runtime.net import public_http_client
from runtime.tools.base import ToolError

logger = logging.getLogger(__name__)

ExtractResult = tuple[str, str | None, str | None]
"""``(url, content, error)``: exactly one of ``content`` and ``error`` is set."""

_NO_ENDPOINT_STATUSES = frozenset({404, 405, 501})


@dataclass
class SearchResult:
    url: str
    title: str
    snippet: str
    raw_content: str = ""


class SearchProvider(Protocol):
    """A pluggable web search backend (Tavily, a self-hosted SearXNG adapter, a test double...)."""

    async def search(self, query: str, *, max_results: int, http: httpx.AsyncClient) -> list[SearchResult]: ...

    async def extract(self, urls: list[str], *, http: httpx.AsyncClient) -> list[ExtractResult]: ...


# -- HTML to text -----------------------------------------------------------------------------

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "footer",
    "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "td", "th", "title", "tr", "ul",
})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: scripts and styles dropped, one block per line."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (re.sub(r"\s+", " ", line).strip() for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


# -- direct fetch -----------------------------------------------------------------------------


class DirectFetchExtractor:
    """Fetch pages with a plain GET and convert HTML to text (no third-party extraction API).

    At most ``max_bytes`` of each body are read; each URL fails on its own (an error entry),
    never the whole batch.
    """

    name = "direct fetch"

    def __init__(self, *, timeout: float = 20.0, max_bytes: int = 2_000_000, allow_private: bool = False,
                 max_redirects: int = 5, public_client=public_http_client) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.max_redirects = max_redirects
        self.public_client = public_client  # (timeout=...) -> client; without allow_private, fetches use it

    def _checked(self, url: str) -> str | None:
        """Why ``url`` may not be fetched (private/loopback/link-local target), or None."""
        try:
            check_url(url, allow_private=self.allow_private, require_resolvable=not self.allow_private)
        except UnsafeURL as exc:
            return f"refused: {exc}"
        return None

    async def extract(self, urls: list[str], *, http: httpx.AsyncClient) -> list[ExtractResult]:
        if self.allow_private:
            return list(await asyncio.gather(*(self._fetch(url, http) for url in urls)))
        async with self.public_client(timeout=self.timeout) as guarded:  # connects only to checked addresses
            return list(await asyncio.gather(*(self._fetch(url, guarded) for url in urls)))

    async def _fetch(self, url: str, http: httpx.AsyncClient) -> ExtractResult:
        if not url.startswith(("http://", "https://")):
            return url, None, "only http(s) URLs can be fetched"
        target = url
        try:
            for _ in range(self.max_redirects + 1):  # every hop is checked: no redirect to a private address
                refused = self._checked(target)
                if refused:
                    return url, None, refused
                async with http.stream("GET", target, timeout=self.timeout, follow_redirects=False,
                                       headers={"Accept": "text/html, text/plain;q=0.9, */*;q=0.1"}) as resp:
                    if resp.is_redirect:
                        target = str(resp.url.join(resp.headers.get("location", "")))
                        continue
                    return url, *await self._read(resp)
            return url, None, f"more than {self.max_redirects} redirects"
        except UnsafeURL as exc:  # the name resolved elsewhere at connect time
            return url, None, f"refused: {exc}"
        except httpx.TimeoutException:
            return url, None, f"timed out after {self.timeout:g}s"
        except httpx.HTTPError as exc:
            return url, None, f"fetch failed ({type(exc).__name__})"

    async def _read(self, resp: httpx.Response) -> tuple[str | None, str | None]:
        """(text, None) or (None, why not) for a non-redirect response."""
        if resp.status_code >= 400:
            return None, f"HTTP {resp.status_code} from the page"
        ctype = resp.headers.get("content-type", "").lower()
        if ctype and not any(t in ctype for t in ("html", "text/", "json", "xml")):
            return None, f"unsupported content type {ctype.split(';')[0]}"
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body.extend(chunk)
            if len(body) >= self.max_bytes:
                del body[self.max_bytes:]
                break
        text = bytes(body).decode(resp.encoding or "utf-8", errors="replace")
        if not ctype or "html" in ctype:
            text = html_to_text(text)
        text = text.strip()
        return (text, None) if text else (None, "the page has no readable text")


# -- Tavily -----------------------------------------------------------------------------------


class TavilySearchProvider:
    """Tavily's HTTP API: ``POST /search`` and ``POST /extract`` with a Bearer key.

    When the deployment has no ``/extract`` (404/405/501), pages are fetched directly with
    ``fallback`` and that decision is remembered for the provider's lifetime.
    """

    name = "Tavily"

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0,
                 fallback: DirectFetchExtractor | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.fallback = fallback or DirectFetchExtractor()
        self._has_extract: bool | None = None

    def __repr__(self) -> str:
        return f"TavilySearchProvider(base_url={self.base_url!r})"

    async def search(self, query: str, *, max_results: int, http: httpx.AsyncClient) -> list[SearchResult]:
        body = {"query": query, "max_results": max_results, "include_raw_content": False,
                "search_depth": "basic"}
        data = await self._post(http, "search", body)
        items = data.get("results")
        if not isinstance(items, list):
            raise ToolError(f"{self.name} search returned no 'results' list")
        out: list[SearchResult] = []
        for item in items:
            if isinstance(item, dict) and item.get("url"):
                out.append(SearchResult(url=str(item["url"]), title=str(item.get("title") or ""),
                                        snippet=str(item.get("content") or ""),
                                        raw_content=str(item.get("raw_content") or "")))
        logger.debug("%s search %r: %d results", self.name, query, len(out))
        return out

    async def extract(self, urls: list[str], *, http: httpx.AsyncClient) -> list[ExtractResult]:
        if self._has_extract is False:
            return await self.fallback.extract(urls, http=http)
        try:
            data = await self._post(http, "extract", {"urls": urls}, missing_ok=True)
        except _EndpointMissing:
            logger.info("%s has no /extract endpoint at %s; fetching pages directly", self.name, self.base_url)
            self._has_extract = False
            return await self.fallback.extract(urls, http=http)
        self._has_extract = True
        found: dict[str, str] = {}
        for item in data.get("results") or []:
            if isinstance(item, dict) and item.get("url") and item.get("raw_content"):
                found[str(item["url"])] = str(item["raw_content"])
        failed: dict[str, str] = {}
        for item in data.get("failed_results") or []:
            if isinstance(item, dict) and item.get("url"):
                failed[str(item["url"])] = str(item.get("error") or "extraction failed")
            elif isinstance(item, str):
                failed[item] = "extraction failed"
        results: list[ExtractResult] = []
        for url in urls:
            if url in found:
                results.append((url, found[url], None))
            else:
                results.append((url, None, f"{self.name}: {failed.get(url, 'no content returned')}"))
        return results

    async def _post(self, http: httpx.AsyncClient, endpoint: str, body: dict[str, Any], *,
                    missing_ok: bool = False) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        where = f"{self.name} {endpoint}"
        try:
            resp = await http.post(f"{self.base_url}/{endpoint}", json=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            raise ToolError(f"{where} timed out after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"{where} request failed: {type(exc).__name__}: {self._redact(str(exc))}") from None
        if missing_ok and resp.status_code in _NO_ENDPOINT_STATUSES:
            raise _EndpointMissing
        if resp.status_code >= 400:
            hint = " (check the API key)" if resp.status_code in (401, 403) else ""
            detail = self._redact(resp.text[:200].strip())
            raise ToolError(f"{where} failed: HTTP {resp.status_code}{hint}" + (f": {detail}" if detail else ""))
        try:
            data = resp.json()
        except ValueError:
            raise ToolError(f"{where} returned invalid JSON (HTTP {resp.status_code})") from None
        if not isinstance(data, dict):
            raise ToolError(f"{where} returned unexpected JSON ({type(data).__name__})")
        return data

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


class _EndpointMissing(Exception):
    """The provider does not serve this endpoint (internal signal for the extract fallback)."""
