"""Which templates search their tools: ``tool_policy.strategy``, with ``auto`` (the default) resolved."""

import pytest

from templates_app.specs import ToolPolicy

FOUR = ["a", "b", "c", "d"]


@pytest.mark.parametrize("policy,searches", [
    ({}, True),  # no allowlist: the whole catalog is the pool
    ({"allowlist": FOUR}, False),  # 4 named + 2 system tools fit in 10
    ({"allowlist": FOUR, "max_tools_in_prompt": 6}, False),  # exactly fit
    ({"allowlist": FOUR, "max_tools_in_prompt": 5}, True),  # one too many: search among them
    ({"allowlist": FOUR, "required_tools": ["e"], "max_tools_in_prompt": 6}, True),
    ({"allowlist": FOUR, "required_tools": ["a"], "max_tools_in_prompt": 6}, False),  # counted once
    ({"allowlist": [f"t{i}" for i in range(30)]}, True),
    ({"strategy": "static"}, False),
    ({"strategy": "static", "allowlist": [f"t{i}" for i in range(30)]}, False),
    ({"strategy": "retrieval", "allowlist": FOUR}, True),
])
def test_strategy_resolves(policy, searches):
    assert ToolPolicy(**policy).searches is searches


def test_auto_is_the_default_and_unknown_strategies_are_rejected():
    assert ToolPolicy().strategy == "auto"
    with pytest.raises(ValueError, match="strategy"):
        ToolPolicy(strategy="smart")
