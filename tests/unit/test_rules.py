"""The rules engine: every condition and action, phases, validation, Letta-style rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runtime.rules import apply_rules, parse_rules, policy_rules

TOOLS = ["final_answer_tool", "clarification_tool", "web_search_tool", "create_report_tool", "generate_plan_tool"]


def facts(**overrides):
    base = {"iteration": 1, "searches_used": 0, "clarifications_used": 0, "state": "researching",
            "stage": "", "last_tool": "", "tool_calls": {}}
    return {**base, **overrides}


def rule(when, *then, phases=None, name="r"):
    data = {"name": name, "when": when, "then": list(then)}
    if phases:
        data["phases"] = phases
    return parse_rules([data])


@pytest.mark.parametrize("when, holds", [
    ({"field": "iteration", "op": ">=", "value": 3}, True),
    ({"field": "iteration", "op": "<", "value": 3}, False),
    ({"field": "searches_used", "op": "==", "value": 2}, True),
    ({"field": "clarifications_used", "op": ">", "value": 0}, False),
    ({"field": "state", "value": "researching"}, True),
    ({"field": "stage", "op": "in", "value": ["draft", "review"]}, True),
    ({"field": "last_tool", "op": "!=", "value": "web_search_tool"}, False),
    ({"field": "tool_calls.web_search_tool", "op": ">=", "value": 2}, True),
    ({"field": "tool_calls.never_called", "op": "==", "value": 0}, True),
    ({"all": [{"field": "iteration", "op": ">=", "value": 3}, {"field": "stage", "value": "draft"}]}, True),
    ({"any": [{"field": "iteration", "op": ">", "value": 9}, {"field": "stage", "value": "x"}]}, False),
    ({"not": {"field": "stage", "value": "draft"}}, False),
    ({"field": "stage", "op": "not_in", "value": ["x"]}, True),
])
def test_conditions(when, holds):
    f = facts(iteration=3, searches_used=2, stage="draft", last_tool="web_search_tool",
              tool_calls={"web_search_tool": 2})
    decision = apply_rules(rule(when, {"action": "remove_tools", "tools": ["web_search_tool"]}), f, TOOLS)
    assert ("web_search_tool" not in decision.tools) is holds


def test_actions():
    rules = parse_rules([
        {"name": "only answer", "then": [{"action": "keep_only_tools", "tools": ["final_answer_tool",
                                                                                    "create_report_tool"]}]},
        {"name": "must report", "then": [{"action": "require_tool", "tool": "create_report_tool"}]},
        {"name": "stage", "then": [{"action": "set_stage", "stage": "writing"}]},
        {"name": "stop", "when": {"field": "stage", "value": "writing"},
         "then": [{"action": "finish", "status": "failed", "message": "no"}]},
    ])
    decision = apply_rules(rules, facts(), TOOLS)
    assert decision.tools == ["final_answer_tool", "create_report_tool"]
    assert decision.removed["web_search_tool"] == "only answer"
    assert decision.required == ["create_report_tool"]
    assert decision.stage == "writing"
    assert (decision.finish.status, decision.finish_rule) == ("failed", "stop")  # set_stage is seen by later rules


def test_phases():
    rules = rule(None, {"action": "remove_tools", "tools": ["web_search_tool"]}, phases=["after_retrieval"])
    assert "web_search_tool" in apply_rules(rules, facts(), TOOLS, phase="before_retrieval").tools
    assert "web_search_tool" not in apply_rules(rules, facts(), TOOLS, phase="after_retrieval").tools
    on_wait = rule({"field": "state", "value": "waiting_for_clarification"},
                   {"action": "finish", "message": "no questions here"}, phases=["transition"])
    assert apply_rules(on_wait, facts(state="waiting_for_clarification"), [], phase="transition").finish
    assert apply_rules(on_wait, facts(), [], phase="transition").finish is None


def test_policy_limits_are_rules():
    rules = policy_rules(max_iterations=5, max_searches=1, max_clarifications=1)
    assert "web_search_tool" in apply_rules(rules, facts(), TOOLS).tools
    decision = apply_rules(rules, facts(searches_used=1, clarifications_used=1), TOOLS)
    assert decision.removed == {"web_search_tool": "max_searches=1", "clarification_tool": "max_clarifications=1"}
    assert apply_rules(rules, facts(iteration=5), TOOLS).tools == ["final_answer_tool"]


def test_letta_style_rules():
    rules = parse_rules([
        # init: the first step must plan
        {"name": "init", "when": {"field": "iteration", "value": 1},
         "then": [{"action": "require_tool", "tool": "generate_plan_tool"}]},
        # child/after: after a search only reading or answering
        {"name": "after search", "when": {"field": "last_tool", "value": "web_search_tool"},
         "then": [{"action": "keep_only_tools", "tools": ["create_report_tool", "final_answer_tool"]}]},
        # max count: three searches at most
        {"name": "max 3 searches", "when": {"field": "tool_calls.web_search_tool", "op": ">=", "value": 3},
         "then": [{"action": "remove_tools", "tools": ["web_search_tool"]}]},
        # required before exit: no final answer before a report
        {"name": "report first", "when": {"not": {"field": "tool_calls.create_report_tool", "op": ">=", "value": 1}},
         "then": [{"action": "remove_tools", "tools": ["final_answer_tool"]}]},
        # terminal: a report ends the run (counters persist across turns, which Letta's rules cannot use)
        {"name": "terminal", "when": {"field": "last_tool", "value": "create_report_tool"},
         "then": [{"action": "finish", "message": "report delivered"}]},
    ])
    first = apply_rules(rules, facts(iteration=1), TOOLS)
    assert first.required == ["generate_plan_tool"] and "final_answer_tool" not in first.tools
    after = apply_rules(rules, facts(iteration=2, last_tool="web_search_tool", tool_calls={"web_search_tool": 3}), TOOLS)
    assert after.tools == ["create_report_tool"]
    assert apply_rules(rules, facts(last_tool="create_report_tool", tool_calls={"create_report_tool": 1}),
                       TOOLS).finish.message == "report delivered"


@pytest.mark.parametrize("bad", [
    {"name": "x", "then": []},
    {"name": "x", "then": [{"action": "explode"}]},
    {"name": "x", "when": {"field": "bogus", "value": 1}, "then": [{"action": "finish"}]},
    {"name": "x", "when": {"field": "iteration", "op": "~", "value": 1}, "then": [{"action": "finish"}]},
    {"name": "x", "when": {"foo": 1}, "then": [{"action": "finish"}]},
    {"name": "x", "then": [{"action": "remove_tools", "tools": []}]},
    {"name": "x", "then": [{"action": "finish"}], "phases": ["sometimes"]},
    {"name": "", "then": [{"action": "finish"}]},
])
def test_invalid_rules_are_rejected(bad):
    with pytest.raises(ValidationError):
        parse_rules([bad])
