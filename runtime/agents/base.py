"""BaseAgent: one step = prepare tools → prepare context → reason → select action → act.

With tool search, a kind that reasons in a call of its own prepares the tools again after
reasoning: the action's tools are found for the next step the model has just decided.

Subclasses (agent kinds) differ only in how they reason and select the action.
Limits are rules (``runtime.rules``) applied in ``_prepare_tools``; the hard
``max_iterations`` cap lives in the runner, not here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from platform_site import observability as obs
from runtime.agents.outcomes import (
    Action,
    Continue,
    Finish,
    OfferedTools,
    StepOutcome,
    WaitForUser,
)
from runtime.events import EventSink
from runtime.llm import LLMClient, LLMReply
from runtime.recorder import SessionRecorder
from runtime.rules import Rule, apply_rules
from runtime.tools.base import ToolContext, ToolError
from runtime.tools.executors import Executable
from templates_app.specs import TemplateSpec

logger = logging.getLogger("runtime.agent")
T = TypeVar("T")

REASONING_TOOL = "reasoning_tool"
SYSTEM_TOOL_NAMES = ("reasoning_tool", "final_answer_tool", "clarification_tool")


class InvalidOutput(Exception):
    """The model's reply cannot be used; ``feedback`` goes back to it before a retry."""

    def __init__(self, message: str, feedback: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.feedback = feedback


class ModelMisbehaved(Exception):
    """The model kept producing unusable output after the allowed retries."""


def feedback_for(reply: LLMReply, error: str, tool_names: list[str]) -> list[dict[str, Any]]:
    """Messages that tell the model what was wrong with ``reply`` (answering each tool call)."""
    hint = f"{error}. Respond by calling exactly one of the tools: {', '.join(tool_names)}."
    if reply.tool_calls:
        return [{"role": "tool", "tool_call_id": c.id, "content": f"Error: {hint}"} for c in reply.tool_calls]
    return [{"role": "user", "content": f"Your last reply could not be used: {hint}"}]


class BaseAgent:
    kind: ClassVar[str] = ""
    # Reasoning is a call of its own, before the action's: with tool search, the action's tools are
    # searched again for the step that reasoning has just decided (the first search, whose tools the
    # reasoning prompt lists, could only read the step before).
    searches_after_reasoning: ClassVar[bool] = False

    def __init__(
        self,
        *,
        spec: TemplateSpec,
        ctx: ToolContext,
        history: list[dict[str, Any]],
        tools: dict[str, Executable],
        rules: list[Rule],
        llm: LLMClient,
        recorder: SessionRecorder,
        events: EventSink,
        retriever: Callable[..., Awaitable[tuple[dict[str, Executable], dict[str, str]]]] | None = None,
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.history = history
        self.tools = tools
        self.rules = rules
        self.llm = llm
        self.recorder = recorder
        self.events = events
        self.retriever = retriever
        self.policy = spec.content.execution_policy
        self._forced: Finish | None = None
        self._required: str | None = None
        self._pending: dict[str, Any] | None = None  # the assistant's tool call, saved with its result

    # -- the step -----------------------------------------------------------------------------
    async def step(self) -> StepOutcome:
        again = self.retriever is not None and self.searches_after_reasoning
        offered = await self._prepare_tools(record=not again)
        if self._forced is not None:
            return self._forced
        messages = self._prepare_context(offered)
        reasoning = await self._reasoning_phase(messages, offered)
        if again:
            offered = await self._prepare_tools()
        action = await self._select_action_phase(reasoning, offered)
        return await self._action_phase(action)

    async def _prepare_tools(self, *, record: bool = True) -> OfferedTools:
        """Candidates (the template's tools, or tool search for this step) → rules (before and
        after retrieval) → cap at ``max_tools_in_prompt`` (system tools kept first). ``record``:
        count, log and keep (``last_offered``) the result as the step's tools."""
        candidates = [name for name in self.tools if name != REASONING_TOOL]
        facts = self.facts()
        removed_by_search: dict[str, str] = {}
        if self.retriever is not None:
            found, removed_by_search = await self.retriever(query=self.retrieval_query(), facts=facts)
            self.tools.update(found)
            candidates = [name for name in found if name != REASONING_TOOL]
        decision = apply_rules(self.rules, facts, candidates, phase="before_retrieval")
        decision.removed = {**removed_by_search, **decision.removed}
        after = apply_rules(self.rules, facts, decision.tools, phase="after_retrieval")
        decision.tools = after.tools
        decision.removed.update(after.removed)
        decision.required += after.required
        decision.stage = after.stage or decision.stage
        if after.finish is not None:
            decision.finish, decision.finish_rule = after.finish, after.finish_rule
        if decision.stage is not None:
            self.ctx.extra["stage"] = decision.stage
        if decision.finish is not None:
            status = decision.finish.status
            self._forced = Finish(answer=decision.finish.message, status=status,
                                  reason=f"finished by rule {decision.finish_rule!r}")
        required = next((t for t in decision.required if t in decision.tools), None)
        cap = self.spec.content.tool_policy.max_tools_in_prompt
        system = [n for n in decision.tools if n in SYSTEM_TOOL_NAMES]
        others = [n for n in decision.tools if n not in SYSTEM_TOOL_NAMES]
        if required in others:  # the cap keeps a required tool first
            others.insert(0, others.pop(others.index(required)))
        names = system + others[: max(cap - len(system), 0)]
        self._required = required if required in names else None
        for dropped in others[max(cap - len(system), 0):]:
            decision.removed[dropped] = f"max_tools_in_prompt={cap}"
        schemas = [self.tools[n].spec.openai_schema() for n in names]
        offered = OfferedTools(
            names=names, schemas=schemas, removed=decision.removed,
            schema_tokens=len(json.dumps(schemas)) // 4,
        )
        if record:
            self._record_offered(offered)
        return offered

    def _record_offered(self, offered: OfferedTools) -> None:
        """The step's tools: counted (metrics), logged and kept in the session (``last_offered``)."""
        obs.TOOLS_PER_PROMPT.labels(self.spec.name).observe(len(offered.names))
        obs.TOOL_SCHEMA_TOKENS.labels(self.spec.name).observe(offered.schema_tokens)
        for rule in offered.removed.values():
            obs.TOOLS_REMOVED.labels(rule).inc()
        logger.info(
            "step %d: %d tools offered, %d removed, ~%d schema tokens",
            self.ctx.iteration, len(offered.names), len(offered.removed), offered.schema_tokens,
            extra={"correlation_id": self.ctx.session_id, "iteration": self.ctx.iteration,
                   "tools_offered": offered.names, "tools_removed": offered.removed,
                   "tool_schema_tokens": offered.schema_tokens},
        )
        self.ctx.extra["last_offered"] = {"names": offered.names, "removed": offered.removed,
                                          "schema_tokens": offered.schema_tokens}

    def _prepare_context(self, offered: OfferedTools) -> list[dict[str, Any]]:
        """A fresh system prompt (today's date, this step's tools) + the conversation."""
        pack = self.spec.content.prompt_pack
        tool_lines = "\n".join(f"- {s['function']['name']}: {s['function']['description']}" for s in offered.schemas)
        system = pack.render(
            "system_prompt",
            current_date=self.ctx.clock().strftime("%Y-%m-%d"),
            template_name=self.spec.name,
            tools=tool_lines,
        )
        return [{"role": "system", "content": system}, *self.history]

    async def _reasoning_phase(self, messages: list[dict[str, Any]], offered: OfferedTools) -> Any:
        return None

    async def _select_action_phase(self, reasoning: Any, offered: OfferedTools) -> Action:
        raise NotImplementedError

    async def _action_phase(self, action: Action) -> StepOutcome:
        """Run the tool; a failure is recorded and returned to the model as the result."""
        ctx = self.ctx
        tool = self.tools[action.name]
        await self.events.action(ctx.iteration, action)
        await self.recorder.flush()  # a tool may read or refer to the session: what precedes it is in
        started = time.perf_counter()
        status, error = "ok", ""
        try:
            result = await asyncio.wait_for(tool.run(action.arguments, ctx), timeout=self.policy.tool_timeout_s)
        except ToolError as exc:
            status, error = "error", str(exc)
        except TimeoutError:
            status, error = "error", f"tool {action.name} timed out after {self.policy.tool_timeout_s:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a tool: the model hears about it, the run goes on
            logger.exception("tool %s raised", action.name, extra={"correlation_id": ctx.session_id})
            status, error = "error", f"tool {action.name} failed: {type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - started) * 1000
        obs.TOOL_CALLS.labels(action.name, status).inc()
        obs.TOOL_SECONDS.labels(action.name).observe(duration_ms / 1000)
        if status == "error":
            result = f"Error: {error}"
        ctx.tool_counts[action.name] = ctx.tool_counts.get(action.name, 0) + 1
        ctx.extra["last_tool"] = action.name
        tool_message = {"role": "tool", "tool_call_id": action.call_id, "content": result}
        self.history.append(tool_message)
        messages = [self._pending, tool_message] if self._pending else [tool_message]
        self._pending = None
        outcome = ctx.outcome
        if outcome is not None and outcome.kind == "ask_user":
            ctx.clarifications_used += 1
        await self.recorder.record_action(
            ctx, action=action, tool_id=tool.spec.id, messages=messages,
            status=status, error=error, result=result, duration_ms=duration_ms, last=outcome is not None,
        )
        await self.events.tool_result(ctx.iteration, action, result)
        ctx.outcome = None
        if outcome is None:
            return Continue()
        if outcome.kind == "ask_user":
            return WaitForUser(questions=outcome.questions, text=outcome.text)
        return Finish(answer=outcome.text, status=outcome.status)

    # -- helpers -----------------------------------------------------------------------------
    def retrieval_query(self) -> str:
        """Tool search query: the next step of the latest reasoning, then the task. In that order
        because the dense side's model reads only the query's start (``TOOL_SEARCH_QUERY_TOKENS``),
        and the step is what this iteration's tools are for; the keyword side reads both."""
        reasoning = self.ctx.current_reasoning or {}
        steps = reasoning.get("remaining_steps") or []
        next_step = steps[0] if steps and isinstance(steps[0], str) else ""
        return f"{next_step}\n{self.ctx.task}".strip()

    def on_transition(self, state: str) -> Finish | None:
        """Rules of the ``transition`` phase, as the session enters ``state``: a stage, or an ending."""
        decision = apply_rules(self.rules, self.facts(state=state), [], phase="transition")
        if decision.stage is not None:
            self.ctx.extra["stage"] = decision.stage
        if decision.finish is None:
            return None
        return Finish(answer=decision.finish.message, status=decision.finish.status,
                      reason=f"finished by rule {decision.finish_rule!r}")

    def facts(self, *, state: str = "researching") -> dict[str, Any]:
        ctx = self.ctx
        return {
            "iteration": ctx.iteration,
            "searches_used": ctx.searches_used,
            "clarifications_used": ctx.clarifications_used,
            "state": state,
            "stage": ctx.extra.get("stage", ""),
            "last_tool": ctx.extra.get("last_tool", ""),
            "tool_calls": dict(ctx.tool_counts),
        }

    async def _ask(
        self,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        response_format: dict[str, Any] | None = None,
        parse: Callable[[LLMReply], T],
        offered_names: list[str],
        context: Callable[[], list[dict[str, Any]]],
    ) -> T:
        """Call the LLM until ``parse`` accepts the reply, at most 1 + max_output_retries times.

        Every reply is remembered (persisted); unusable ones get feedback before a retry.
        """
        attempts = 1 + self.policy.max_output_retries
        last_error = ""
        for _ in range(attempts):
            started = time.perf_counter()
            try:
                reply = await self.llm.complete(
                    context(), tools=tools, tool_choice=tool_choice, response_format=response_format,
                    sampling=self.ctx.extra.get("sampling"),
                )
            except Exception:
                obs.LLM_CALLS.labels(self.spec.name, "error").inc()
                raise
            obs.LLM_SECONDS.labels(self.spec.name).observe(time.perf_counter() - started)
            obs.LLM_TOKENS.labels(self.spec.name, "prompt").inc(reply.prompt_tokens)
            obs.LLM_TOKENS.labels(self.spec.name, "completion").inc(reply.completion_tokens)
            self.ctx.extra["prompt_tokens"] = self.ctx.extra.get("prompt_tokens", 0) + reply.prompt_tokens
            self.ctx.extra["completion_tokens"] = self.ctx.extra.get("completion_tokens", 0) + reply.completion_tokens
            try:
                parsed = parse(reply)
            except InvalidOutput as exc:
                obs.LLM_CALLS.labels(self.spec.name, "invalid_output").inc()
                last_error = str(exc)
                logger.warning("invalid model output: %s", exc, extra={"correlation_id": self.ctx.session_id})
                await self.remember(reply.assistant_message(), *exc.feedback)
                continue
            obs.LLM_CALLS.labels(self.spec.name, "ok").inc()
            return parsed
        raise ModelMisbehaved(f"the model produced invalid output {attempts} times in a row; last error: {last_error}")

    async def remember(self, *messages: dict[str, Any]) -> None:
        self.history.extend(messages)
        await self.recorder.append_messages(self.ctx, list(messages))

    def stage_action_call(self, message: dict[str, Any]) -> None:
        """The assistant message that calls this step's action: saved together with the tool result."""
        self.history.append(message)
        self._pending = message

    def parse_tool_call(self, reply: LLMReply, allowed: list[str]) -> Action:
        """The single tool call of ``reply`` as an Action, or InvalidOutput."""
        if not reply.tool_calls:
            raise InvalidOutput("no tool call in the reply", feedback_for(reply, "You did not call a tool", allowed))
        call = reply.tool_calls[0]
        if call.name not in allowed:
            raise InvalidOutput(
                f"unknown or not offered tool {call.name!r}",
                feedback_for(reply, f"Tool {call.name!r} is not available now", allowed),
            )
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidOutput(
                f"arguments of {call.name} are not valid JSON ({exc.msg})",
                feedback_for(reply, f"The arguments of {call.name} are not valid JSON ({exc.msg})", allowed),
            ) from exc
        if not isinstance(arguments, dict):
            raise InvalidOutput(
                f"arguments of {call.name} are not a JSON object",
                feedback_for(reply, f"The arguments of {call.name} must be a JSON object", allowed),
            )
        return Action(call_id=call.id, name=call.name, arguments=arguments, raw_arguments=call.arguments)

    def tool_choice(self) -> Any:
        if self._required:
            return {"type": "function", "function": {"name": self._required}}
        return "required"
