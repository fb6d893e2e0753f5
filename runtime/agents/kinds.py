"""``AGENT_KINDS``: a template's ``agent_kind`` → its agent class."""

from runtime.agents.sgr import SGRAgent
from runtime.agents.sgr_tool_calling import SGRToolCallingAgent
from runtime.agents.tool_calling import ToolCallingAgent

AGENT_KINDS = {
    "tool_calling": ToolCallingAgent,
    "sgr_tool_calling": SGRToolCallingAgent,
    "sgr": SGRAgent,
}
