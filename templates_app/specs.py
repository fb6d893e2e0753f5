"""Typed template content and the immutable spec the runtime executes.

The JSON columns of ``AgentTemplateVersion`` are validated through these
pydantic models on every write; the runtime never sees ORM rows, only
``TemplateSpec`` (frozen).
"""

from __future__ import annotations

import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

RiskName = Literal["low", "medium", "high"]

DEFAULT_SYSTEM_PROMPT = """You are an expert assistant that solves the user's task step by step with the tools offered.
Current date: {current_date}.
Work in the user's language. Reason before every action, keep each step short and concrete.
When the request is ambiguous, ask for clarification with the clarification tool.
When you have enough information, give the final answer with the final answer tool; cite sources as [1], [2] where you used them.
"""

PLACEHOLDERS = {
    "system_prompt": {"current_date", "template_name", "tools"},
    "initial_user_request": {"task", "current_date"},
    "clarification_response": {"clarifications", "current_date"},
}


def _placeholders(text: str) -> set[str]:
    names = set()
    for _, field_name, _, _ in string.Formatter().parse(text):
        if field_name is not None:
            names.add(field_name)
    return names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptPack(_Strict):
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    initial_user_request: str = "{task}"
    clarification_response: str = "Clarifications from the user:\n{clarifications}"

    @model_validator(mode="after")
    def _check_placeholders(self) -> PromptPack:
        for field, allowed in PLACEHOLDERS.items():
            text = getattr(self, field)
            try:
                used = _placeholders(text)
            except ValueError as exc:
                raise ValueError(f"{field}: malformed placeholder ({exc}); write literal braces as {{{{ }}}}")
            unknown = used - allowed
            if unknown:
                raise ValueError(
                    f"{field}: unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
                )
        return self

    def render(self, field: str, **values: Any) -> str:
        return getattr(self, field).format(**values)


class LLMConfig(_Strict):
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the key (never the key)."
    )
    temperature: float | None = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    max_retries: int | None = Field(default=None, ge=0, le=10)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError("api_key_env must be an environment variable name, not a key")
        return value


class ExecutionPolicy(_Strict):
    max_iterations: int = Field(default=10, ge=1, le=200)
    max_searches: int = Field(default=4, ge=0, le=100)
    max_clarifications: int = Field(default=3, ge=0, le=20)
    max_output_retries: int = Field(default=2, ge=0, le=10, description="Retries of invalid model output.")
    llm_timeout_s: float = Field(default=120, gt=0, le=3600)
    tool_timeout_s: float = Field(default=60, gt=0, le=3600)


class ToolPolicy(_Strict):
    required_tools: list[str] = Field(default_factory=list)
    allowlist: list[str] = Field(default_factory=list)
    denylist: list[str] = Field(default_factory=list)
    max_tools_in_prompt: int = Field(default=10, ge=1, le=200)
    max_risk: RiskName = "medium"
    strategy: Literal["auto", "static", "retrieval"] = Field(
        default="auto",
        description="static: system + required + allowlisted tools; retrieval: top-k from tool search; "
                    "auto: static when those fit in max_tools_in_prompt, tool search when they do not or "
                    "when the allowlist is empty (the whole catalog is the pool).",
    )

    @property
    def searches(self) -> bool:
        """Whether each step's tools come from tool search (``strategy``, ``auto`` resolved)."""
        if self.strategy != "auto":
            return self.strategy == "retrieval"
        named = set(self.allowlist) | set(self.required_tools)
        # + final_answer_tool and clarification_tool, offered on every step
        return not self.allowlist or len(named) + 2 > self.max_tools_in_prompt

    @model_validator(mode="after")
    def _no_overlap(self) -> ToolPolicy:
        clash = (set(self.required_tools) | set(self.allowlist)) & set(self.denylist)
        if clash:
            raise ValueError(f"tools both allowed/required and denied: {sorted(clash)}")
        return self


class TemplateContent(_Strict):
    """Everything a version holds; validated on every write."""

    agent_kind: Literal["tool_calling", "sgr_tool_calling", "sgr"] = "sgr_tool_calling"
    prompt_pack: PromptPack = Field(default_factory=PromptPack)
    llm_config: LLMConfig = Field(default_factory=LLMConfig)
    execution_policy: ExecutionPolicy = Field(default_factory=ExecutionPolicy)
    tool_policy: ToolPolicy = Field(default_factory=ToolPolicy)
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _rules_valid(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from templates_app.rules import parse_rules

        try:
            parse_rules(rules)
        except ValidationError as exc:
            problems = "; ".join(f"rules.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise ValueError(problems) from None
        return rules

    def merged(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Copy-on-write: this content (as JSON data) with top-level fields replaced by ``changes``.

        Nested objects are merged one level deep, so ``{"execution_policy":
        {"max_searches": 1}}`` keeps the other limits of the current version.
        """
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return data


class TemplateSpec(_Strict):
    """An immutable, resolved template version: what an agent instance runs."""

    template_id: int
    name: str
    version_id: int
    version: int
    is_active_version: bool
    content: TemplateContent

    @property
    def agent_kind(self) -> str:
        return self.content.agent_kind
