"""Tool retrieval in the loop: each step sees only the retrieved tools (plus pinned ones), limits
as rules still apply (scenario C), and a 300-tool catalog solves what a 5-tool one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.services import tool_create
from retrieval.services import tool_embeddings_refresh
from sessions_app.models import Session, ToolExecution
from templates_app.services import template_create
from tests.e2e.helpers import REASONING, final, offered, sync_client, think
from tests.fakes.llm_server import tool_call
from tests.fakes.search_server import result

BFCL = Path("/work/shared/data/tool-retrieval/bfcl/tools.jsonl")
if not BFCL.exists():  # CI keeps shared/ beside the clone
    BFCL = Path(__file__).resolve().parents[3] / "shared" / "data" / "tool-retrieval" / "bfcl" / "tools.jsonl"
ENV = {"TOOL_ENTRYPOINT_ALLOWLIST": "runtime.tools.,tests.hot_load_tools"}


@pytest.fixture(autouse=True)
def allow_test_tools(settings):
    settings.TOOL_ENTRYPOINT_ALLOWLIST = ["runtime.tools.", "tests.hot_load_tools"]


def _stock_tool() -> None:
    from tests.hot_load_tools import EchoTool

    tool_create(name="stock_level_lookup", description="Looks up how many units of an item (by SKU) are in stock "
                "in the warehouse.", kind="python", entrypoint="tests.hot_load_tools:EchoTool",
                parameters=EchoTool.parameters_schema(), tags=["inventory"])


def _distractors(count: int) -> int:
    rows = [json.loads(line) for line in BFCL.read_text().splitlines()[:count]]
    made = 0
    for row in rows:
        name = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in row["name"])[:64]
        try:
            tool_create(name=name, description=row["description"][:2000] or name, parameters=row["parameters"]
                        if row.get("parameters", {}).get("type") == "object" else None)
            made += 1
        except Exception:  # a duplicate or an odd schema in the public data: skip it
            continue
    return made


def _template(name: str, *, strategy: str | None, allowlist: list[str], max_searches: int = 4) -> None:
    """``strategy=None``: the default, ``auto``."""
    template_create(name=name, content={
        "agent_kind": "sgr_tool_calling",
        "execution_policy": {"max_searches": max_searches},
        "tool_policy": {"allowlist": allowlist, "max_tools_in_prompt": 8,
                        **({"strategy": strategy} if strategy else {})},
    })


def _stock_script(llm) -> None:
    llm.enqueue(think(), tool_call("stock_level_lookup", {"text": "W-1"}),
                think(), tool_call("final_answer_tool", final("12 units of W-1")))


def test_a_large_catalog_solves_what_a_small_one_does(platform_server, scripted_llm, chat_key):
    _stock_tool()
    assert _distractors(300) >= 250
    tool_embeddings_refresh()
    # the default strategy (auto): the four named tools fit in a prompt, so they are offered as they
    # are; with no allowlist the whole catalog is the pool, and each step searches it
    _template("small_catalog", strategy=None,
              allowlist=["stock_level_lookup", "web_search_tool", "generate_plan_tool", "create_report_tool"])
    _template("large_catalog", strategy=None, allowlist=[])
    server = platform_server(**ENV)
    client = sync_client(server, chat_key)
    answers = {}
    for template in ("small_catalog", "large_catalog"):
        _stock_script(scripted_llm)
        start = len(scripted_llm.requests)
        completion = client.chat.completions.create(
            model=template, messages=[{"role": "user", "content": "How many units of SKU W-1 are in stock?"}]
        )
        answers[template] = completion.choices[0].message.content
        action_request = scripted_llm.requests[start + 1]
        assert "stock_level_lookup" in offered(action_request)
        assert len(offered(action_request)) <= 8
        if template == "small_catalog":  # exactly its own tools, unsearched
            assert set(offered(action_request)) == {"final_answer_tool", "clarification_tool", "stock_level_lookup",
                                                    "web_search_tool", "generate_plan_tool", "create_report_tool"}
        assert ToolExecution.objects.get(session_id=completion.model, tool_name="stock_level_lookup").status == "ok"
    assert answers["small_catalog"] == answers["large_catalog"] == "12 units of W-1"
    state = Session.objects.get(pk=completion.model).context["last_offered"]
    assert state["schema_tokens"] > 0


def test_scenario_c_max_searches_with_retrieval(platform_server, scripted_llm, scripted_search, chat_key):
    assert _distractors(100) >= 80
    tool_embeddings_refresh()
    _template("one_search", strategy="retrieval", allowlist=[], max_searches=1)
    server = platform_server()
    scripted_search.enqueue([result("Fusion news", "https://example.com/fusion", "A reactor milestone")])
    scripted_llm.enqueue(
        think(), tool_call("web_search_tool", {"reasoning": "need news", "query": "fusion energy news"}),
        think(), tool_call("final_answer_tool", final("Fusion reached a milestone [1].")),
    )
    completion = sync_client(server, chat_key).chat.completions.create(
        model="one_search", messages=[{"role": "user", "content": "search the web for fusion energy news"}]
    )
    assert completion.choices[0].message.content == "Fusion reached a milestone [1]."
    first_action, second_action = scripted_llm.requests[1], scripted_llm.requests[3]
    assert "web_search_tool" in offered(first_action)
    assert "web_search_tool" not in offered(second_action)  # removed by the max_searches rule
    session = Session.objects.get(pk=completion.model)
    assert session.searches_used == 1 and session.state == "completed"
    assert session.context["last_offered"]["removed"]["web_search_tool"] == "max_searches=1"


def test_the_action_gets_the_tools_of_the_step_just_reasoned(platform_server, scripted_llm, chat_key):
    """``sgr_tool_calling`` searches again after its reasoning call: the task names the stock, the
    reasoning decides to quote shipping, and the action is offered the shipping tool."""
    from tests.hot_load_tools import EchoTool

    _stock_tool()
    tool_create(name="parcel_shipping_quote", description="Quotes the price of sending a parcel by courier to "
                "a destination city.", kind="python", entrypoint="tests.hot_load_tools:EchoTool",
                parameters=EchoTool.parameters_schema())
    assert _distractors(100) >= 80
    tool_embeddings_refresh()
    template_create(name="quotes", content={
        "agent_kind": "sgr_tool_calling", "prompt_pack": {"system_prompt": "Use these tools:\n{tools}"},
        "tool_policy": {"strategy": "retrieval", "allowlist": [], "max_tools_in_prompt": 4},
    })
    step = {**REASONING, "remaining_steps": ["Get a courier quote for sending the parcel to Berlin"]}
    scripted_llm.enqueue(tool_call("reasoning_tool", step), tool_call("parcel_shipping_quote", {"text": "Berlin"}),
                         think(), tool_call("final_answer_tool", final("Sending W-1 to Berlin costs 12 EUR")))
    completion = sync_client(platform_server(**ENV), chat_key).chat.completions.create(
        model="quotes", messages=[{"role": "user", "content": "How many units of SKU W-1 are in stock?"}]
    )
    assert completion.choices[0].message.content == "Sending W-1 to Berlin costs 12 EUR"
    reasoning_request, action_request = scripted_llm.requests[0], scripted_llm.requests[1]
    # the reasoning prompt lists what the task alone finds; the action gets what the step needs
    assert "parcel_shipping_quote" not in reasoning_request["messages"][0]["content"]
    assert "stock_level_lookup" in reasoning_request["messages"][0]["content"]
    assert "parcel_shipping_quote" in offered(action_request)
    assert len(offered(action_request)) <= 4
    run = ToolExecution.objects.get(session_id=completion.model, tool_name="parcel_shipping_quote")
    assert run.status == "ok"
    last = Session.objects.get(pk=completion.model).context["last_offered"]
    assert "final_answer_tool" in last["names"] and last["schema_tokens"] > 0
