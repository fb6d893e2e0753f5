"""A deployment on a self-hosted SearXNG (``WEB_SEARCH_PROVIDER=searxng``): the agent's web search
goes to it (no Tavily request), and its results are the session's numbered sources."""

from __future__ import annotations

from sessions_app.models import Source, ToolExecution
from tests.e2e.helpers import final, sync_client, think
from tests.fakes.llm_server import tool_call
from tests.fakes.search_server import ScriptedSearch, result


def test_web_search_through_searxng(platform_server, scripted_llm, scripted_search, chat_key):
    with ScriptedSearch() as searx:
        server = platform_server(WEB_SEARCH_PROVIDER="searxng", SEARXNG_BASE_URL=searx.base_url)
        searx.enqueue([result("Fusion news", "https://news.example/fusion", "A reactor milestone"),
                       result("Lab notes", "https://lab.example/notes", "Plasma held for 20 minutes")])
        scripted_llm.enqueue(
            think(), tool_call("web_search_tool", {"reasoning": "Need news", "query": "fusion energy news",
                                                   "max_results": 2}),
            think(), tool_call("final_answer_tool", final("A reactor milestone [1].")),
        )
        completion = sync_client(server, chat_key).chat.completions.create(
            model="research_agent", messages=[{"role": "user", "content": "What is new in fusion energy?"}])
    assert completion.choices[0].message.content == "A reactor milestone [1]."
    assert searx.requests == [{"query": "fusion energy news", "format": "json"}]
    assert scripted_search.requests == []  # the Tavily one is configured too, and not asked
    assert list(Source.objects.filter(session_id=completion.model).values_list("number", "url")) == [
        (1, "https://news.example/fusion"), (2, "https://lab.example/notes")]
    tool_result = scripted_llm.requests[2]["messages"][-1]["content"]
    assert "[1] Fusion news — https://news.example/fusion" in tool_result
    search = ToolExecution.objects.get(session_id=completion.model, tool_name="web_search_tool")
    assert search.status == "ok"
