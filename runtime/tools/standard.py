"""Standard research tools (ported from sgr-agent-core): web search, page extraction, report, plans.

Search and extraction go through ``ctx.search`` with ``ctx.http``; sources are numbered once per
URL by ``ctx.add_source`` and persisted through ``ctx.store``. Reports are saved as session
artifacts, never as files. Limits (``max_searches``...) are enforced by rules, not here.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import httpx
from pydantic import Field, StringConstraints

from runtime.tools.base import BaseTool, SourceRef, ToolContext, ToolError
from runtime.tools.search import DirectFetchExtractor

SNIPPET_CHARS = 300
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2048,
                                       pattern=r"^https?://\S+$")]  # anchored: grammars (llama.cpp) enforce it
Step = Annotated[str, StringConstraints(min_length=1, max_length=300)]


@asynccontextmanager
async def _http_client(ctx: ToolContext) -> AsyncIterator[httpx.AsyncClient]:
    """The run's HTTP client, or a short-lived one when the context has none."""
    if ctx.http is not None:
        yield ctx.http
    else:
        async with httpx.AsyncClient(timeout=30.0) as client:
            yield client


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class WebSearchTool(BaseTool):
    """Search the web for up-to-date information: news, current facts, products, documentation.
    Returns numbered results (title, URL, short snippet); cite them in answers as [1], [2]...
    Use specific terms and context in the query, in the SAME LANGUAGE as the user's request;
    for dates or numbers include the year. Snippets often answer factual questions directly;
    call extract_page_content_tool on promising URLs when you need the full page."""

    tool_name = "web_search_tool"

    reasoning: str = Field(description="Why this search is needed and what you expect to find", max_length=1000)
    query: str = Field(description="Search query in the same language as the user request", min_length=1,
                       max_length=400)
    max_results: int = Field(default=5, ge=1, le=10, description="How many results to return (1-10)")

    async def __call__(self, ctx: ToolContext) -> str:
        if ctx.search is None:
            raise ToolError("web search is not configured")
        limit = max(1, min(self.max_results, ctx.max_search_results))
        async with _http_client(ctx) as http:
            results = await ctx.search.search(self.query, max_results=limit, http=http)
        ctx.searches_used += 1

        new_refs: list[SourceRef] = []
        lines = [f"Search query: {self.query}", ""]
        shown: set[str] = set()
        for res in results:
            if not res.url or res.url in shown:
                continue
            shown.add(res.url)
            is_new = res.url not in ctx.sources
            ref = ctx.add_source(res.url, res.title, res.snippet)
            if is_new:
                new_refs.append(ref)
            seen = "" if is_new else " (seen before)"
            lines.append(f"[{ref.number}] {res.title or ref.title or res.url} — {res.url}{seen}")
            lines.append(f"    {_clip(res.snippet, SNIPPET_CHARS)}")
        if new_refs:
            await ctx.store.save_sources(ctx.session_id, new_refs)
        if not shown:
            return f"Search query: {self.query}\n\nNo results. Try different or broader terms."
        lines += ["", "Cite these sources as [n]."]
        return "\n".join(lines)


class ExtractPageContentTool(BaseTool):
    """Extract the full readable text of specific web pages (usually URLs found by web_search_tool).
    Use for deep analysis of a page or exact data. Check that the page is about the right
    time period: pages may show data for other years than the question asks. If a page
    contradicts a search snippet on a date or number, cross-check before trusting it."""

    tool_name = "extract_page_content_tool"

    reasoning: str = Field(description="Why these pages are needed", max_length=1000)
    urls: list[Url] = Field(description="1-5 http(s) URLs to read", min_length=1, max_length=5)

    async def __call__(self, ctx: ToolContext) -> str:
        urls = list(dict.fromkeys(self.urls))
        extractor = ctx.search if ctx.search is not None else DirectFetchExtractor(allow_private=ctx.allow_private_fetch)
        async with _http_client(ctx) as http:
            results = await extractor.extract(urls, http=http)

        changed: list[SourceRef] = []
        blocks: list[str] = []
        errors: list[str] = []
        for url, content, error in results:
            if not content:
                errors.append(f"{url}: {error or 'no content'}")
                blocks.append(f"{url}\nFailed to extract: {error or 'no content'}\n---")
                continue
            ref = ctx.add_source(url)
            ref.full_content = content[: ctx.max_page_chars]
            changed.append(ref)
            cut = len(content) > ctx.max_page_chars
            note = f"{len(ref.full_content)} of {len(content)} chars, truncated" if cut else f"{len(content)} chars"
            blocks.append(f"[{ref.number}] {ref.title or url} — {url}\nContent ({note}):\n{ref.full_content}\n---")
        if changed:
            await ctx.store.save_sources(ctx.session_id, changed)
        if not changed:
            raise ToolError("could not extract any page: " + "; ".join(errors))
        return "Extracted page content (cite as [n]):\n\n" + "\n\n".join(blocks)


class CreateReportTool(BaseTool):
    """Write the final research report with citations, as the last research step.
    Every factual claim in content MUST carry an inline citation to a source number, e.g.
    "The system uses Vue.js [1] and Python [2]." Write in the SAME LANGUAGE as the user's
    request. A Sources section is appended automatically from the citations."""

    tool_name = "create_report_tool"

    reasoning: str = Field(description="Why you are ready to write the report now", max_length=1000)
    title: str = Field(description="Report title", min_length=1, max_length=200)
    user_request_language_reference: str = Field(
        description="Copy of the original user request, to keep the report in its language", max_length=2000)
    content: str = Field(
        description="The full report in markdown, in the language of the user request, with inline "
                    "citations [1], [2] after every factual claim",
        min_length=1, max_length=60_000)
    confidence: Literal["high", "medium", "low"] = Field(description="Confidence in the findings")

    async def __call__(self, ctx: ToolContext) -> str:
        by_number = {ref.number: ref for ref in ctx.sources.values()}
        cited: list[int] = []
        for match in _CITATION.finditer(self.content):
            for part in match.group(1).split(","):
                n = int(part)
                if n not in cited:
                    cited.append(n)
        known = sorted(n for n in cited if n in by_number)
        unknown = [n for n in cited if n not in by_number]

        full = self.content.rstrip()
        if known:
            full += "\n\n## Sources\n\n" + "\n".join(
                f"[{n}] {by_number[n].title or by_number[n].url} — {by_number[n].url}" for n in known)
        word_count = len(self.content.split())
        metadata = {
            "confidence": self.confidence,
            "sources": [{"number": n, "url": by_number[n].url, "title": by_number[n].title} for n in known],
            "word_count": word_count,
            "created_at": ctx.clock().isoformat(),
        }
        report_id = await ctx.store.save_artifact(ctx.session_id, name=self.title, kind="report",
                                                  content=full, metadata=metadata)
        head = (f"Report saved (id {report_id}): {self.title!r} — {word_count} words, "
                f"confidence {self.confidence}, {len(known)} sources cited.")
        if unknown:
            head += " Warning: citations without a matching source: " + ", ".join(f"[{n}]" for n in unknown) + "."
        return f"{head}\n\n{full}"


class GeneratePlanTool(BaseTool):
    """Make a research plan: split a complex request into 3-4 concrete steps and
    2-3 search strategies. Use at the start of a multi-step research task."""

    tool_name = "generate_plan_tool"

    reasoning: str = Field(description="Why this research approach", max_length=1000)
    research_goal: str = Field(description="The main research objective", min_length=1, max_length=500)
    planned_steps: list[Step] = Field(description="3-4 planned steps", min_length=3, max_length=4)
    search_strategies: list[Step] = Field(description="2-3 information search strategies", min_length=2,
                                          max_length=3)

    async def __call__(self, ctx: ToolContext) -> str:
        ctx.plan = self.model_dump(exclude={"reasoning"})
        return json.dumps(ctx.plan, ensure_ascii=False, indent=2)


class AdaptPlanTool(BaseTool):
    """Adapt the research plan to new findings: state the changes and the updated next steps.
    Use when results show the original goal or steps no longer fit."""

    tool_name = "adapt_plan_tool"

    reasoning: str = Field(description="Why the plan must change, based on the new data", max_length=1000)
    original_goal: str = Field(description="The original research goal", min_length=1, max_length=500)
    new_goal: str = Field(description="The updated research goal", min_length=1, max_length=500)
    plan_changes: list[Step] = Field(description="1-3 specific changes to the plan", min_length=1, max_length=3)
    next_steps: list[Step] = Field(description="2-4 updated remaining steps", min_length=2, max_length=4)

    async def __call__(self, ctx: ToolContext) -> str:
        plan = dict(ctx.plan or {})
        plan.update(research_goal=self.new_goal, original_goal=self.original_goal,
                    planned_steps=list(self.next_steps), plan_changes=list(self.plan_changes))
        ctx.plan = plan
        return json.dumps(plan, ensure_ascii=False, indent=2)


STANDARD_TOOLS: tuple[type[BaseTool], ...] = (
    WebSearchTool,
    ExtractPageContentTool,
    CreateReportTool,
    GeneratePlanTool,
    AdaptPlanTool,
)
