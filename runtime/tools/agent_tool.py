"""agent tools: delegate a task to another template (agent-as-tool).

Calling one creates a child session on the target template (linked to the
parent), runs it to the end on a pooled instance and returns its final answer.
Delegation is bounded (``max_depth``) and acyclic: a template already in the
chain of delegating sessions is refused with a clear tool error. A child that
asks for clarification does not wait: it is cancelled and its questions go back
to the parent's model as the tool result, so the parent can answer them in a
new delegation (with more context) or ask its own user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from catalog.specs import ToolSpec
from runtime.tools.base import ToolContext, ToolError
from runtime.tools.executors import check_arguments


@dataclass(frozen=True)
class ChildResult:
    session_id: str
    state: str
    text: str
    iterations: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    questions: tuple[str, ...] = ()


class Delegator(Protocol):
    async def run_child(self, *, parent: ToolContext, template: str, task: str, lineage: tuple[str, ...],
                        depth: int) -> ChildResult: ...


class AgentExecutable:
    def __init__(self, spec: ToolSpec, *, max_depth: int) -> None:
        self.spec = spec
        self.max_depth = max_depth

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        check_arguments(self.spec, arguments)
        target = self.spec.target_template
        lineage: tuple[str, ...] = tuple(ctx.extra.get("lineage", ()))
        depth = int(ctx.extra.get("depth", 0)) + 1
        if target in lineage:
            chain = " → ".join((*lineage, target))
            raise ToolError(f"delegation refused: {chain} would be a cycle")
        if depth > self.max_depth:
            raise ToolError(f"delegation refused: depth {depth} is over the limit of {self.max_depth}")
        delegator: Delegator | None = ctx.extra.get("delegator")
        if delegator is None:
            raise ToolError("delegation is not available in this runtime")
        task = arguments["task"]
        if arguments.get("context"):
            task = f"{task}\n\nContext:\n{arguments['context']}"
        child = await delegator.run_child(parent=ctx, template=target, task=task,
                                          lineage=(*lineage, target), depth=depth)
        cost = {"session_id": child.session_id, "template": target, "state": child.state,
                "iterations": child.iterations, "tool_calls": child.tool_calls,
                "prompt_tokens": child.prompt_tokens, "completion_tokens": child.completion_tokens}
        ctx.extra.setdefault("delegations", []).append(cost)
        if child.questions:
            questions = "\n".join(f"- {q}" for q in child.questions)
            return (f"The agent {target} needs clarification before it can do this task:\n{questions}\n"
                    "Delegate again with the missing facts in `context`, or ask the user.")
        if child.state != "completed":
            raise ToolError(f"the agent {target} did not complete the task ({child.state}): {child.text}")
        return child.text
