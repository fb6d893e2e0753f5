"""ToolSearchService: the tools one agent step sees.

search → the template's allowlist/denylist and max risk (as SQL filters) → the
template's rules (before retrieval they narrow what may be searched, after
retrieval they post-filter the hits) → the pinned tools (system tools and the
template's required tools) always added → when nothing passes, the template's
allowlist as a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.models import Tool
from retrieval.services import tool_search
from templates_app.rules import apply_rules, parse_rules, policy_rules
from templates_app.specs import TemplateSpec

SYSTEM_TOOLS = ("reasoning_tool", "final_answer_tool", "clarification_tool")
DEFAULT_FACTS = {"iteration": 1, "searches_used": 0, "clarifications_used": 0, "state": "researching",
                 "stage": "", "last_tool": "", "tool_calls": {}}


@dataclass(frozen=True)
class ToolResult:
    name: str
    score: float
    source: str  # search | pinned | fallback
    dense_rank: int | None = None
    keyword_rank: int | None = None


@dataclass
class ToolSearchOutcome:
    results: list[ToolResult]
    removed: dict[str, str] = field(default_factory=dict)  # tool -> rule that removed it


def template_rules(template: TemplateSpec):
    policy = template.content.execution_policy
    return policy_rules(max_iterations=policy.max_iterations, max_searches=policy.max_searches,
                        max_clarifications=policy.max_clarifications) + parse_rules(template.content.rules)


def tool_search_for_step(
    *, query: str, template: TemplateSpec | None = None, facts: dict[str, Any] | None = None,
    top_k: int = 10, filters: dict[str, Any] | None = None,
) -> ToolSearchOutcome:
    """The tools for one step of a session on ``template`` (or the whole catalog without one)."""
    if template is None:
        hits = tool_search(query=query, top_k=top_k, candidate_filter={"exclude_system": True, **(filters or {})})
        return ToolSearchOutcome([ToolResult(h.name, h.score, "search", h.dense_rank, h.keyword_rank) for h in hits])
    facts = {**DEFAULT_FACTS, **(facts or {})}
    policy = template.content.tool_policy
    rules = template_rules(template)
    mentioned = {n for r in rules for a in r.then for n in getattr(a, "tools", ())}
    pinned = [n for n in dict.fromkeys([*SYSTEM_TOOLS[1:], *policy.required_tools]) if n not in policy.denylist]
    before = apply_rules(rules, facts, sorted(mentioned | set(pinned)), phase="before_retrieval")
    allow = set(policy.allowlist) if policy.allowlist else None
    if before.keep_only is not None:
        allow = before.keep_only if allow is None else allow & before.keep_only
    candidate_filter = {"denylist": [*policy.denylist, *before.removed], "max_risk": policy.max_risk,
                        "exclude_system": True, **(filters or {})}
    if allow is not None:
        candidate_filter["allowlist"] = sorted(allow)
    room = max(policy.max_tools_in_prompt - len(pinned), 1)
    hits = tool_search(query=query, top_k=min(top_k, room), candidate_filter=candidate_filter) if allow != set() else []
    names = [n for n in pinned if n not in before.removed] + [h.name for h in hits if h.name not in pinned]
    after = apply_rules(rules, facts, names, phase="after_retrieval")
    kept = set(after.tools)
    results = [ToolResult(n, 1.0, "pinned") for n in pinned if n in kept]
    results += [ToolResult(h.name, h.score, "search", h.dense_rank, h.keyword_rank)
                for h in hits if h.name in kept and h.name not in pinned]
    removed = {**before.removed, **after.removed}
    if not any(r.source == "search" for r in results) and policy.allowlist:
        active = set(Tool.objects.filter(name__in=policy.allowlist, is_active=True).values_list("name", flat=True))
        fallback = [n for n in policy.allowlist if n in active and n not in removed and n not in pinned]
        results += [ToolResult(n, 0.0, "fallback") for n in fallback[:room]]
    return ToolSearchOutcome(results, removed)
