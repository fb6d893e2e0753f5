"""The rule language of templates (validated on save); evaluated by ``runtime.rules``.

A rule is JSON on the template::

    {"name": "one search only",
     "when": {"all": [{"field": "searches_used", "op": ">=", "value": 1}]},
     "then": [{"action": "remove_tools", "tools": ["web_search_tool"]}]}

Conditions: ``{"field", "op", "value"}`` over the session facts (``iteration``,
``searches_used``, ``clarifications_used``, ``state``, ``stage``, ``last_tool``,
``tool_calls.<name>``), combined with ``all`` / ``any`` / ``not``. Actions:
``remove_tools``, ``keep_only_tools``, ``require_tool``, ``set_stage``, ``finish``.
``phases`` says when a rule is evaluated: ``before_retrieval`` (filters the
candidates), ``after_retrieval`` (post-filters what search returned) and
``transition`` (when the session changes state; ``set_stage``/``finish`` only).
The execution-policy limits are rules too (``policy_rules``), so agent classes
hold no limit logic.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    model_validator,
)

_OPS = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge, ">": operator.gt,
    "<=": operator.le, "<": operator.lt,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
}
FACT_FIELDS = ("iteration", "searches_used", "clarifications_used", "state", "stage", "last_tool")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Compare(_M):
    field: str
    op: Literal["==", "!=", ">=", ">", "<=", "<", "in", "not_in"] = "=="
    value: Any

    @model_validator(mode="after")
    def _known_field(self) -> Compare:
        if self.field not in FACT_FIELDS and not self.field.startswith("tool_calls."):
            raise ValueError(f"unknown field {self.field!r}; use one of {list(FACT_FIELDS)} or tool_calls.<tool>")
        return self

    def holds(self, facts: dict[str, Any]) -> bool:
        if self.field.startswith("tool_calls."):
            actual = facts["tool_calls"].get(self.field.removeprefix("tool_calls."), 0)
        else:
            actual = facts.get(self.field)
        try:
            return bool(_OPS[self.op](actual, self.value))
        except TypeError:
            return False


class All(_M):
    all: list[Condition]

    def holds(self, facts: dict[str, Any]) -> bool:
        return all(c.holds(facts) for c in self.all)


class Any_(_M):
    any: list[Condition]

    def holds(self, facts: dict[str, Any]) -> bool:
        return any(c.holds(facts) for c in self.any)


class Not(_M):
    not_: Condition = Field(alias="not")

    def holds(self, facts: dict[str, Any]) -> bool:
        return not self.not_.holds(facts)


def _condition_kind(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        return {Compare: "field", All: "all", Any_: "any", Not: "not"}.get(type(data))
    if isinstance(data, dict):
        return next((k for k in ("field", "all", "any", "not") if k in data), None)
    return None


Condition = Annotated[
    Union[
        Annotated[Compare, Tag("field")],
        Annotated[All, Tag("all")],
        Annotated[Any_, Tag("any")],
        Annotated[Not, Tag("not")],
    ],
    Discriminator(
        _condition_kind,
        custom_error_type="invalid_condition",
        custom_error_message='a condition is {"field", "op", "value"}, {"all": [...]}, {"any": [...]} or {"not": {...}}',
    ),
]


class RemoveTools(_M):
    action: Literal["remove_tools"]
    tools: list[str] = Field(min_length=1)


class KeepOnlyTools(_M):
    action: Literal["keep_only_tools"]
    tools: list[str] = Field(min_length=1)


class RequireTool(_M):
    action: Literal["require_tool"]
    tool: str


class SetStage(_M):
    action: Literal["set_stage"]
    stage: str = Field(min_length=1, max_length=64)


class Finish(_M):
    action: Literal["finish"]
    status: Literal["completed", "failed"] = "completed"
    message: str = "Finished by rule"


Action = Annotated[Union[RemoveTools, KeepOnlyTools, RequireTool, SetStage, Finish], Field(discriminator="action")]


Phase = Literal["before_retrieval", "after_retrieval", "transition"]


class Rule(_M):
    name: str = Field(min_length=1, max_length=200)
    when: Condition | None = None
    then: list[Action] = Field(min_length=1)
    phases: list[Phase] = Field(default_factory=lambda: ["before_retrieval", "after_retrieval"], min_length=1)


for _model in (All, Any_, Not, Rule):
    _model.model_rebuild()

_RULES = TypeAdapter(list[Rule])


def parse_rules(data: list[dict[str, Any]]) -> list[Rule]:
    """Validate a rule list (raises pydantic.ValidationError with the reasons)."""
    return _RULES.validate_python(data)


def policy_rules(*, max_iterations: int, max_searches: int, max_clarifications: int) -> list[Rule]:
    """The execution-policy limits expressed as rules."""
    return parse_rules([
        {"name": f"max_searches={max_searches}",
         "when": {"field": "searches_used", "op": ">=", "value": max_searches},
         "then": [{"action": "remove_tools", "tools": ["web_search_tool"]}]},
        {"name": f"max_clarifications={max_clarifications}",
         "when": {"field": "clarifications_used", "op": ">=", "value": max_clarifications},
         "then": [{"action": "remove_tools", "tools": ["clarification_tool"]}]},
        {"name": f"max_iterations={max_iterations}: last step must answer",
         "when": {"field": "iteration", "op": ">=", "value": max_iterations},
         "then": [{"action": "keep_only_tools", "tools": ["final_answer_tool"]}]},
    ])


@dataclass
class RuleDecision:
    """What the rules decided for one evaluation: the tool names kept and why others went."""

    tools: list[str]
    removed: dict[str, str] = field(default_factory=dict)  # tool -> rule name
    required: list[str] = field(default_factory=list)
    stage: str | None = None
    finish: Finish | None = None
    finish_rule: str = ""
    keep_only: set[str] | None = None  # what keep_only_tools actions left allowed (None: no such action)
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
                    decision.keep_only = set(names) if decision.keep_only is None else decision.keep_only & set(names)
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
                    decision.finish_rule = rule.name
    return decision
