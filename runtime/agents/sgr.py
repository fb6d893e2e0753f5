"""``sgr``: one structured-output call per step: the reasoning and the next action together.

The response schema has the ``reasoning_tool`` fields and ``action``: a union
with one branch per offered tool, ``{"tool": <const name>, "arguments": <its
schema>}``. Small models follow such schemas reliably when strings are capped.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import ValidationError

from runtime.agents.base import REASONING_TOOL, BaseAgent, InvalidOutput
from runtime.agents.outcomes import Action, OfferedTools
from runtime.tools.system import ReasoningTool

ITEMS_CAP = 3  # maxItems of every array when strings are capped


def next_step_schema(offered: OfferedTools, reasoning_schema: dict[str, Any], *,
                     string_cap: int | None = None) -> dict[str, Any]:
    """The step's response schema; with ``string_cap``, bounded throughout (``cap_lengths``)."""
    branches = [
        {
            "type": "object",
            "properties": {
                "tool": {"type": "string", "const": s["function"]["name"]},
                "arguments": s["function"]["parameters"],
            },
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for s in offered.schemas
    ]
    properties = dict(reasoning_schema.get("properties", {}))
    properties["action"] = {"anyOf": branches}
    schema = {
        "type": "object",
        "properties": properties,
        "required": [*reasoning_schema.get("required", []), "action"],
        "$defs": reasoning_schema.get("$defs", {}),
    }
    return schema if string_cap is None else cap_lengths(schema, max_string=string_cap)


def cap_lengths(schema: Any, *, max_string: int, max_items: int = ITEMS_CAP) -> Any:
    """A copy of ``schema`` where every free-text string has ``maxLength <= max_string``, every
    array ``maxItems <= max_items`` and every object with declared properties no others (never
    below a declared minimum). A small model under constrained decoding follows a bounded schema;
    an unbounded string or list lets it repeat itself until ``max_tokens``."""
    if isinstance(schema, list):
        return [cap_lengths(s, max_string=max_string, max_items=max_items) for s in schema]
    if not isinstance(schema, dict):
        return schema
    node = {k: cap_lengths(v, max_string=max_string, max_items=max_items) if isinstance(v, (dict, list)) else v
            for k, v in schema.items()}
    types = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
    if "string" in types and "enum" not in node and "const" not in node:
        node["maxLength"] = max(min(node.get("maxLength", max_string), max_string), node.get("minLength", 0))
    if "array" in types:
        node["maxItems"] = max(min(node.get("maxItems", max_items), max_items), node.get("minItems", 0))
    if "object" in types and "properties" in node:
        node.setdefault("additionalProperties", False)
    return node


def parse_next_step(text: str, offered_names: list[str]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """A structured-output reply → (reasoning fields, tool name, arguments), or ``InvalidOutput``
    with the feedback the model gets before a retry."""

    def feedback(error: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": f"Your last reply could not be used: {error}. Reply with one JSON "
                 f"object with the reasoning fields and an action using one of: {', '.join(offered_names)}."}]

    try:
        data = json.loads(text.strip())
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"reply is not valid JSON ({exc.msg})", feedback(f"not valid JSON ({exc.msg})")) from exc
    if not isinstance(data, dict) or not isinstance(data.get("action"), dict):
        raise InvalidOutput("reply has no action object", feedback("the JSON has no `action` object"))
    step = data.pop("action")
    name, arguments = step.get("tool"), step.get("arguments", {})
    if name not in offered_names:
        raise InvalidOutput(f"unknown or not offered tool {name!r}", feedback(f"tool {name!r} is not available now"))
    if not isinstance(arguments, dict):
        raise InvalidOutput("action arguments are not an object", feedback("`action.arguments` must be an object"))
    try:
        ReasoningTool.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidOutput(f"invalid reasoning: {problems}", feedback(f"invalid reasoning fields: {problems}")) from exc
    return data, name, arguments


class SGRAgent(BaseAgent):
    kind = "sgr"

    async def _reasoning_phase(self, messages: list[dict[str, Any]], offered: OfferedTools) -> Action:
        if self._required:  # a require_tool rule: the action's union has that one branch (tool_choice's equivalent)
            offered = offered.only(self._required)
        reasoning_schema = self.tools[REASONING_TOOL].spec.parameters
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "next_step", "schema": next_step_schema(
                offered, reasoning_schema, string_cap=self.llm.settings.string_cap)},
        }

        def parse(reply):
            reasoning, name, arguments = parse_next_step(reply.content or "", offered.names)
            return reasoning, Action(call_id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=arguments,
                                     raw_arguments=json.dumps(arguments, ensure_ascii=False)), reply

        reasoning, action, reply = await self._ask(
            response_format=response_format,
            parse=parse,
            offered_names=offered.names,
            context=lambda: self._prepare_context(offered),
        )
        self.ctx.current_reasoning = reasoning
        await self.events.reasoning(self.ctx.iteration, Action(call_id=action.call_id + "r", name=REASONING_TOOL,
                                                               arguments=reasoning))
        self.stage_action_call({
            "role": "assistant",
            "content": reply.content,
            "tool_calls": [{"id": action.call_id, "type": "function",
                            "function": {"name": action.name, "arguments": action.raw_arguments}}],
        })
        return action

    async def _select_action_phase(self, reasoning: Action, offered: OfferedTools) -> Action:
        return reasoning
