"""``AGENT_KINDS``: a template's ``agent_kind`` → its agent class; ``agent_class``: the one that runs."""

from __future__ import annotations

from runtime.agents.base import BaseAgent
from runtime.agents.sgr import SGRAgent
from runtime.agents.sgr_tool_calling import SGRToolCallingAgent
from runtime.agents.tool_calling import ToolCallingAgent
from runtime.llm import LLMSettings

AGENT_KINDS: dict[str, type[BaseAgent]] = {
    "tool_calling": ToolCallingAgent,
    "sgr_tool_calling": SGRToolCallingAgent,
    "sgr": SGRAgent,
}


def agent_class(kind: str, llm: LLMSettings) -> type[BaseAgent]:
    """The template's kind, except on a backend that only does structured output (the small
    local model): there every kind runs as ``sgr`` (one constrained JSON schema per step, one
    branch per tool, capped strings), since such models do not make native tool calls."""
    if llm.structured_output_only:
        return SGRAgent
    return AGENT_KINDS[kind]
