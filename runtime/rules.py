"""The rules engine: applies template rules (``templates_app.rules``) to a step's tools.

Evaluated before retrieval (filter), after retrieval (post-filter) and on state
transitions; the limits of the execution policy are generated rules too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from templates_app.rules import (  # noqa: F401  (re-exported for the runtime)
    Finish,
    KeepOnlyTools,
    RemoveTools,
    RequireTool,
    Rule,
    SetStage,
    parse_rules,
    policy_rules,
)


@dataclass
class RuleDecision:
    """What the rules decided for one evaluation: the tool names kept and why others went."""

    tools: list[str]
    removed: dict[str, str] = field(default_factory=dict)  # tool -> rule name
    required: list[str] = field(default_factory=list)
    stage: str | None = None
    finish: Finish | None = None
    fired: list[str] = field(default_factory=list)


def apply_rules(rules: list[Rule], facts: dict[str, Any], tools: list[str], *, phase: str = "before_retrieval") -> RuleDecision:
    """Apply every rule of ``phase`` whose condition holds, in order, to the candidate ``tools``."""
    decision = RuleDecision(tools=list(tools))
    for rule in rules:
        if phase not in rule.phases:
            continue
        if rule.when is not None and not rule.when.holds(facts):
            continue
        decision.fired.append(rule.name)
        for action in rule.then:
            match action:
                case RemoveTools(tools=names):
                    for name in names:
                        if name in decision.tools:
                            decision.tools.remove(name)
                            decision.removed[name] = rule.name
                case KeepOnlyTools(tools=names):
                    for name in [t for t in decision.tools if t not in names]:
                        decision.tools.remove(name)
                        decision.removed[name] = rule.name
                case RequireTool(tool=name):
                    decision.required.append(name)
                case SetStage(stage=stage):
                    decision.stage = stage
                    facts["stage"] = stage
                case Finish():
                    decision.finish = action
    return decision
