"""System tools: reasoning, final answer, clarification (always offered unless a rule removes them)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from runtime.tools.base import BaseTool, ToolContext


class ReasoningTool(BaseTool):
    """Think before acting: assess the situation, the plan and what to do next.
    Call this before every other action. Keep every field short and concrete."""

    tool_name = "reasoning_tool"
    is_system = True

    reasoning_steps: list[str] = Field(description="Step-by-step reasoning (2-3 short steps)", min_length=1, max_length=5)
    current_situation: str = Field(description="Current research situation, 1-2 sentences", max_length=1000)
    plan_status: str = Field(description="Status of the current plan", max_length=500)
    enough_data: bool = Field(default=False, description="Enough data gathered to answer the task?")
    remaining_steps: list[str] = Field(description="1-3 next steps, the first one is what you do now", min_length=1, max_length=5)
    task_completed: bool = Field(description="Is the task completed?")

    async def __call__(self, ctx: ToolContext) -> str:
        ctx.current_reasoning = self.model_dump()
        return json.dumps(self.model_dump(), ensure_ascii=False)


class FinalAnswerTool(BaseTool):
    """Give the final answer to the user and end the task. Use when the task is done
    (or cannot be done: status "failed" and say why). Answer in the user's language."""

    tool_name = "final_answer_tool"
    is_system = True

    reasoning: str = Field(description="Why the task is finished", max_length=2000)
    completed_steps: list[str] = Field(default_factory=list, description="Steps that were completed", max_length=10)
    # An empty answer is invalid output (fed back, retried), never an empty reply to the user.
    answer: str = Field(description="The complete final answer for the user", min_length=1)
    status: Literal["completed", "failed"] = Field(default="completed", description="Task outcome")

    async def __call__(self, ctx: ToolContext) -> str:
        ctx.finish(self.answer, status=self.status)
        return self.answer


class ClarificationTool(BaseTool):
    """Ask the user clarifying questions when the request is ambiguous or lacks details.
    The run pauses until the user answers."""

    tool_name = "clarification_tool"
    is_system = True

    reasoning: str = Field(description="Why clarification is needed", max_length=1000)
    unclear_terms: list[str] = Field(default_factory=list, description="Unclear terms or concepts", max_length=5)
    assumptions: list[str] = Field(default_factory=list, description="Possible interpretations", max_length=5)
    questions: list[str] = Field(description="1-3 specific questions for the user", min_length=1, max_length=3)

    async def __call__(self, ctx: ToolContext) -> str:
        text = "\n".join(self.questions)
        ctx.ask_user(self.questions, text)
        return text


SYSTEM_TOOLS: tuple[type[BaseTool], ...] = (ReasoningTool, FinalAnswerTool, ClarificationTool)
