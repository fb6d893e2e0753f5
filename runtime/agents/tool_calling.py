"""``tool_calling``: pure function calling, one LLM call per step (``tool_choice="required"``)."""

from __future__ import annotations

from typing import Any

from runtime.agents.base import BaseAgent
from runtime.agents.outcomes import Action, OfferedTools


class ToolCallingAgent(BaseAgent):
    kind = "tool_calling"

    async def _select_action_phase(self, reasoning: Any, offered: OfferedTools) -> Action:
        def parse(reply):
            action = self.parse_tool_call(reply, offered.names)
            reply.tool_calls = reply.tool_calls[:1]  # one action per step
            return action, reply

        action, reply = await self._ask(
            tools=offered.schemas,
            tool_choice=self.tool_choice(),
            parse=parse,
            offered_names=offered.names,
            context=lambda: self._prepare_context(offered),
        )
        self.stage_action_call(reply.assistant_message())
        return action
