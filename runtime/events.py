"""Events of a run, as OpenAI chunks put on a queue the consumer streams from."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from runtime import streaming
from runtime.agents.outcomes import Action


class EventSink:
    """Turns run events into ``chat.completion.chunk`` dicts on ``queue`` (None: dropped)."""

    def __init__(self, session_id: str, queue: asyncio.Queue | None = None) -> None:
        self.session_id = session_id
        self.queue = queue
        self._tool_index = 0
        self._result_index = 0

    async def _put(self, item: Any) -> None:
        if self.queue is not None:
            await self.queue.put(item)

    def _call_delta(self, action: Action) -> dict[str, Any]:
        index = self._tool_index
        self._tool_index += 1
        arguments = action.raw_arguments or json.dumps(action.arguments, ensure_ascii=False)
        return {"tool_calls": [{"index": index, "id": action.call_id, "type": "function",
                                "function": {"name": action.name, "arguments": arguments}}]}

    async def start(self) -> None:
        await self._put(streaming.chunk(self.session_id, "0-start", {"role": "assistant", "content": ""}))
        # One turn of the loop for the consumer, so the first chunk is written now: otherwise the
        # run's first LLM request is built first (~0.8 ms of the loop) and the chunk waits for it.
        await asyncio.sleep(0)

    async def reasoning(self, n: int, action: Action) -> None:
        await self._put(streaming.chunk(self.session_id, f"{n}-reasoning", self._call_delta(action)))

    async def action(self, n: int, action: Action) -> None:
        await self._put(streaming.chunk(self.session_id, f"{n}-action", self._call_delta(action)))

    async def tool_result(self, n: int, action: Action, result: str) -> None:
        # Not ``{"role": "tool", "content": ...}``: clients accumulate every delta into the one
        # assistant message, so a tool result there would be glued to the answer (LangChain,
        # openai-python's ``.stream()``) and ``role`` overwritten ("assistanttool" in Python, "tool"
        # in the Node client, whose stream helper then fails). A key of its own is carried along
        # untouched; indexed like ``tool_calls`` so accumulators build a clean list.
        index = self._result_index
        self._result_index += 1
        delta = {"tool_results": [{"index": index, "tool_call_id": action.call_id, "name": action.name,
                                   "content": result}]}
        await self._put(streaming.chunk(self.session_id, f"{n}-action", delta))
