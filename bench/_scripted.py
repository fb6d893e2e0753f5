"""What the benchmarks' scripted LLM answers (no Django: also loaded by ``_llm_process.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.llm_server import tool_call

REASONING = {"reasoning_steps": ["read", "answer"], "current_situation": "clear", "plan_status": "done",
             "enough_data": True, "remaining_steps": ["answer"], "task_completed": True}
FINAL = {"reasoning": "done", "completed_steps": ["answered"], "answer": "ok", "status": "completed"}


def respond(body: dict):
    """At once: the reasoning when it is forced (ours) or the only tool offered (sgr-agent-core's
    reasoning phase), else the final answer, under each system's tool names."""
    names = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    if names == ["reasoningtool"]:
        return tool_call("reasoningtool", REASONING)
    if "finalanswertool" in names:
        return tool_call("finalanswertool", FINAL)
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("function", {}).get("name") == "reasoning_tool":
        return tool_call("reasoning_tool", REASONING)
    return tool_call("final_answer_tool", FINAL)
