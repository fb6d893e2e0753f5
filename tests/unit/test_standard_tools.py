"""Standard research tools against the scripted Tavily-compatible server (no database)."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from runtime.tools.base import SourceRef, ToolContext, ToolError
from runtime.tools.search import DirectFetchExtractor, TavilySearchProvider, html_to_text
from runtime.tools.standard import (
    STANDARD_TOOLS, AdaptPlanTool, CreateReportTool, ExtractPageContentTool, GeneratePlanTool, WebSearchTool,
)
from tests.fakes.search_server import ScriptedSearch, result

API_KEY = "tvly-secret-key-123"


class RecordingStore:
    """In-memory SessionStore that records every call."""

    def __init__(self) -> None:
        self.saved_sources: list[tuple[str, list[SourceRef]]] = []
        self.artifacts: list[dict[str, Any]] = []

    async def save_sources(self, session_id: str, sources: list[SourceRef]) -> None:
        self.saved_sources.append((session_id, [dataclasses.replace(s) for s in sources]))

    async def save_artifact(self, session_id: str, *, name: str, kind: str, content: str, metadata: dict) -> int:
        self.artifacts.append({"session_id": session_id, "name": name, "kind": kind, "content": content,
                               "metadata": metadata})
        return len(self.artifacts)

    @property
    def all_sources(self) -> list[SourceRef]:
        return [ref for _, refs in self.saved_sources for ref in refs]


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def ctx(scripted_search: ScriptedSearch, http: httpx.AsyncClient, store: RecordingStore) -> ToolContext:
    # the scripted server is on 127.0.0.1: these tests allow private pages explicitly
    provider = TavilySearchProvider(scripted_search.base_url, API_KEY, timeout=2.0,
                                    fallback=DirectFetchExtractor(allow_private=True))
    return ToolContext(session_id="s-1", task="research", store=store, http=http, search=provider)


def search(query: str = "python asyncio", **kw: Any) -> WebSearchTool:
    return WebSearchTool(reasoning="need facts", query=query, **kw)


async def test_search_numbers_and_dedupes_sources(ctx, scripted_search, store):
    a, b, c = (f"https://example.com/{x}" for x in "abc")
    scripted_search.enqueue([result("A page", a, "about A " * 100), result("B page", b, "about B")])
    scripted_search.enqueue([result("B again", b, "about B"), result("C page", c, "about C")])

    first = await search(max_results=3)(ctx)
    second = await search("more")(ctx)

    assert "[1] A page — https://example.com/a" in first
    assert "[2] B page — https://example.com/b" in first
    assert len(first) < 1000  # snippets are capped
    assert "[2] B again — https://example.com/b (seen before)" in second
    assert "[3] C page — https://example.com/c" in second
    assert [r.number for r in ctx.sources.values()] == [1, 2, 3]
    assert ctx.searches_used == 2
    assert ctx.tool_counts == {}  # maintained by the loop, not the tool
    assert [[r.url for r in refs] for _, refs in store.saved_sources] == [[a, b], [c]]
    assert {sid for sid, _ in store.saved_sources} == {"s-1"}
    body = scripted_search.requests[0]
    assert body == {"query": "python asyncio", "max_results": 3, "include_raw_content": False,
                    "search_depth": "basic"}
    assert scripted_search.headers[0]["authorization"] == f"Bearer {API_KEY}"


async def test_search_caps_max_results_by_context(ctx, scripted_search):
    ctx.max_search_results = 2
    scripted_search.enqueue([result(f"R{i}", f"https://r.example/{i}", "x") for i in range(5)])
    out = await search(max_results=10)(ctx)
    assert scripted_search.requests[0]["max_results"] == 2
    assert "[2] R1" in out and "[3]" not in out


async def test_search_without_provider_is_a_tool_error(store):
    ctx = ToolContext(session_id="s", task="t", store=store)
    with pytest.raises(ToolError, match="web search is not configured"):
        await search()(ctx)


async def test_provider_http_error_is_clear_and_hides_key(ctx, scripted_search, store):
    scripted_search.enqueue([], status=500)
    with pytest.raises(ToolError) as err:
        await search()(ctx)
    msg = str(err.value)
    assert "Tavily" in msg and "500" in msg
    assert API_KEY not in msg
    assert ctx.searches_used == 0
    assert store.saved_sources == []


async def test_provider_unauthorized_hints_at_key(ctx, scripted_search):
    scripted_search.enqueue([], status=401)
    with pytest.raises(ToolError, match=r"HTTP 401 \(check the API key\)") as err:
        await search()(ctx)
    assert API_KEY not in str(err.value)


async def test_provider_timeout_is_a_tool_error(scripted_search, http, store):
    provider = TavilySearchProvider(scripted_search.base_url, API_KEY, timeout=0.2)
    ctx = ToolContext(session_id="s", task="t", store=store, http=http, search=provider)
    scripted_search.enqueue([result("late", "https://late.example", "x")], delay=1.0)
    with pytest.raises(ToolError, match="Tavily search timed out") as err:
        await search()(ctx)
    assert API_KEY not in str(err.value)


async def test_unreachable_provider_is_a_tool_error(http, store):
    provider = TavilySearchProvider("http://127.0.0.1:9", API_KEY, timeout=2.0)
    ctx = ToolContext(session_id="s", task="t", store=store, http=http, search=provider)
    with pytest.raises(ToolError, match="Tavily search request failed") as err:
        await search()(ctx)
    assert API_KEY not in str(err.value)


async def test_extract_one_good_page_and_one_404(ctx, scripted_search, store):
    good = scripted_search.add_page("good", (
        "<html><head><title>Good page</title><style>body{color:red}</style>"
        "<script>var secret = 1;</script></head><body><h1>Header</h1>"
        "<p>First   paragraph &amp; more.</p><p>Second.</p></body></html>"))
    missing = scripted_search.page_url("missing")
    ctx.add_source(good, "Good page", "snippet")  # already known from a search: keeps number 1

    out = await ExtractPageContentTool(reasoning="read", urls=[good, missing])(ctx)

    assert "[1] Good page — " + good in out
    assert "First paragraph & more." in out
    assert "secret" not in out and "color:red" not in out
    assert missing in out and "HTTP 404" in out
    ref = ctx.sources[good]
    assert "Header\nFirst paragraph & more.\nSecond." in ref.full_content
    assert missing not in ctx.sources
    assert [r.url for r in store.all_sources] == [good]
    assert store.all_sources[0].full_content == ref.full_content
    assert sorted(scripted_search.page_hits) == ["good", "missing"]  # fetched concurrently


async def test_extract_truncates_and_registers_new_source(ctx, scripted_search, store):
    ctx.max_page_chars = 50
    url = scripted_search.add_page("long", "<p>" + "word " * 500 + "</p>")
    out = await ExtractPageContentTool(reasoning="read", urls=[url])(ctx)
    ref = ctx.sources[url]
    assert ref.number == 1 and len(ref.full_content) == 50
    assert "truncated" in out
    assert store.all_sources[0].url == url


async def test_extract_all_failing_is_a_tool_error(ctx, scripted_search, store):
    urls = [scripted_search.page_url("nope1"), scripted_search.page_url("nope2")]
    with pytest.raises(ToolError, match="could not extract any page") as err:
        await ExtractPageContentTool(reasoning="read", urls=urls)(ctx)
    assert "nope1" in str(err.value) and "nope2" in str(err.value)
    assert store.saved_sources == [] and ctx.sources == {}


async def test_extract_without_search_provider_fetches_directly(scripted_search, http, store):
    url = scripted_search.add_page("plain", "just text", content_type="text/plain")
    ctx = ToolContext(session_id="s", task="t", store=store, http=http, allow_private_fetch=True)
    out = await ExtractPageContentTool(reasoning="read", urls=[url])(ctx)
    assert "just text" in out


async def test_direct_fetch_caps_body_size(scripted_search, http):
    url = scripted_search.add_page("big", "<p>" + "a" * 10_000 + "</p>")
    [(_, content, error)] = await DirectFetchExtractor(max_bytes=100, allow_private=True).extract([url], http=http)
    assert error is None and content is not None and len(content) < 100


async def test_tavily_extract_endpoint_is_used_when_present(store):
    # The scripted server has no /extract; a transport-level stub answers in Tavily's shape.
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append({"path": request.url.path, "auth": request.headers.get("authorization"),
                     "body": json.loads(request.content)})
        return httpx.Response(200, json={"results": [{"url": "https://ok.example", "raw_content": "page text"}],
                                         "failed_results": [{"url": "https://bad.example", "error": "blocked"}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        ctx = ToolContext(session_id="s", task="t", store=store, http=client,
                          search=TavilySearchProvider("https://tavily.test", API_KEY))
        out = await ExtractPageContentTool(reasoning="r", urls=["https://ok.example", "https://bad.example"])(ctx)
    assert seen == [{"path": "/extract", "auth": f"Bearer {API_KEY}",
                     "body": {"urls": ["https://ok.example", "https://bad.example"]}}]
    assert "page text" in out and "blocked" in out
    assert ctx.sources["https://ok.example"].full_content == "page text"


def test_html_to_text_strips_scripts_and_styles():
    html = "<div>a<script>x()</script><style>.b{}</style> b</div><noscript>n</noscript><li>c</li>"
    assert html_to_text(html) == "a b\nc"


async def test_report_saved_as_artifact_with_sources_and_no_files(ctx, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx.add_source("https://a.example", "Alpha", "")
    ctx.add_source("https://b.example", "Beta", "")
    ctx.add_source("https://c.example", "Gamma", "")
    content = "# Findings\n\nAlpha says yes [1]. Gamma agrees [3, 1]. Unknown claim [9]."

    out = await CreateReportTool(reasoning="done", title="Findings report", user_request_language_reference="q",
                                 content=content, confidence="medium")(ctx)

    assert list(tmp_path.iterdir()) == []
    [art] = store.artifacts
    assert art["session_id"] == "s-1" and art["name"] == "Findings report" and art["kind"] == "report"
    assert art["content"].startswith(content)
    sources_section = art["content"].split("## Sources", 1)[1]
    assert "[1] Alpha — https://a.example" in sources_section
    assert "[3] Gamma — https://c.example" in sources_section
    assert "Beta" not in sources_section
    assert art["metadata"]["confidence"] == "medium"
    assert art["metadata"]["sources"] == [
        {"number": 1, "url": "https://a.example", "title": "Alpha"},
        {"number": 3, "url": "https://c.example", "title": "Gamma"},
    ]
    assert "id 1" in out and "Findings report" in out and f"{len(content.split())} words" in out
    assert "[9]" in out.split("\n", 1)[0]  # warned about the unknown citation
    assert art["content"] in out


async def test_generate_and_adapt_plan_set_ctx_plan(ctx):
    out = await GeneratePlanTool(reasoning="r", research_goal="Compare X and Y",
                                 planned_steps=["search X", "search Y", "compare"],
                                 search_strategies=["official docs", "benchmarks"])(ctx)
    assert ctx.plan == json.loads(out)
    assert ctx.plan["research_goal"] == "Compare X and Y" and "reasoning" not in ctx.plan

    out = await AdaptPlanTool(reasoning="r", original_goal="Compare X and Y", new_goal="Compare X, Y and Z",
                              plan_changes=["add Z"], next_steps=["search Z", "compare all"])(ctx)
    assert ctx.plan == json.loads(out)
    assert ctx.plan["research_goal"] == "Compare X, Y and Z"
    assert ctx.plan["planned_steps"] == ["search Z", "compare all"]
    assert ctx.plan["search_strategies"] == ["official docs", "benchmarks"]


@pytest.mark.parametrize("build", [
    lambda: WebSearchTool(reasoning="r", query="q", max_results=50),
    lambda: WebSearchTool(reasoning="r", query="q", max_results=0),
    lambda: WebSearchTool(reasoning="r", query="q", unexpected=1),
    lambda: ExtractPageContentTool(reasoning="r", urls=[]),
    lambda: ExtractPageContentTool(reasoning="r", urls=[f"https://e.example/{i}" for i in range(6)]),
    lambda: ExtractPageContentTool(reasoning="r", urls=["ftp://e.example/x"]),
    lambda: CreateReportTool(reasoning="r", title="t", user_request_language_reference="q", content="c",
                             confidence="certain"),
    lambda: GeneratePlanTool(reasoning="r", research_goal="g", planned_steps=["a", "b"],
                             search_strategies=["x", "y"]),
    lambda: AdaptPlanTool(reasoning="r", original_goal="g", new_goal="h", plan_changes=[], next_steps=["a", "b"]),
])
def test_invalid_arguments_raise_validation_error(build):
    with pytest.raises(ValidationError):
        build()


def test_tool_names_descriptions_and_schemas():
    names = [t.tool_name for t in STANDARD_TOOLS]
    assert names == ["web_search_tool", "extract_page_content_tool", "create_report_tool",
                     "generate_plan_tool", "adapt_plan_tool"]
    for tool in STANDARD_TOOLS:
        assert tool.description and not tool.is_system
        schema = tool.parameters_schema()
        assert schema["type"] == "object" and "reasoning" in schema["required"]
    assert WebSearchTool.parameters_schema()["properties"]["max_results"]["maximum"] == 10


async def test_pages_on_private_addresses_are_refused_by_default(scripted_search, http, store):
    url = scripted_search.add_page("secret", "internal data")
    ctx = ToolContext(session_id="s", task="t", store=store, http=http)
    with pytest.raises(ToolError) as caught:
        await ExtractPageContentTool(reasoning="read", urls=[url])(ctx)
    assert "refused" in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert scripted_search.page_hits == []  # nothing was fetched


async def test_redirect_to_a_private_address_is_refused():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data/"})

    extractor = DirectFetchExtractor(public_client=lambda timeout: httpx.AsyncClient(
        transport=httpx.MockTransport(handler), timeout=timeout))
    [(_, content, error)] = await extractor.extract(["https://93.184.216.34/page"], http=None)
    assert content is None and "169.254.169.254" in error and "refused" in error
    assert seen == ["https://93.184.216.34/page"]  # the metadata address was never requested
