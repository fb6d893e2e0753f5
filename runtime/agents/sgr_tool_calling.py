"""``sgr_tool_calling``: a forced ``reasoning_tool`` call, then the action by function calling."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from runtime.agents.base import REASONING_TOOL, InvalidOutput, feedback_for
from runtime.agents.outcomes import OfferedTools
from runtime.agents.tool_calling import ToolCallingAgent
from runtime.tools.system import ReasoningTool


class SGRToolCallingAgent(ToolCallingAgent):
    kind = "sgr_tool_calling"
    searches_after_reasoning = True

    async def _reasoning_phase(self, messages: list[dict[str, Any]], offered: OfferedTools) -> dict[str, Any]:
        schema = self.tools[REASONING_TOOL].spec.openai_schema()

        def parse(reply):
            action = self.parse_tool_call(reply, [REASONING_TOOL])
            try:
                ReasoningTool.model_validate(action.arguments)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
                raise InvalidOutput(
                    f"invalid reasoning: {problems}",
                    feedback_for(reply, f"Invalid reasoning_tool arguments: {problems}", [REASONING_TOOL]),
                ) from exc
            reply.tool_calls = reply.tool_calls[:1]
            return action, reply

        action, reply = await self._ask(
            tools=[schema],
            tool_choice={"type": "function", "function": {"name": REASONING_TOOL}},
            parse=parse,
            offered_names=[REASONING_TOOL],
            context=lambda: self._prepare_context(offered),
        )
        result = await self.tools[REASONING_TOOL].run(action.arguments, self.ctx)
        self.ctx.current_reasoning = action.arguments
        await self.remember(reply.assistant_message(), {"role": "tool", "tool_call_id": action.call_id, "content": result})
        await self.events.reasoning(self.ctx.iteration, action)
        return action.arguments
