"""The local model on one agent step: valid-JSON rate, right-tool rate, seconds per step.

Ten scripted tasks, each one ``sgr`` step as the platform sends it on the local backend (the
default system prompt with this step's tools, the bounded next-step schema, the same
``LLMClient``), against the embedded llama.cpp server. A reply counts as valid when the
platform's own parser (``parse_next_step``) accepts it on the first attempt, and as right when
it is valid and picks the expected tool. The model is installed on first use (~93 MB).
Prints JSON.
Usage: .venv/bin/python bench/local_llm.py [--model smollm2-135m | --gguf FILE] [--threads N] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import time
from pathlib import Path

from _harness import ROOT, emit, percentile

from runtime.agents.base import InvalidOutput
from runtime.agents.outcomes import OfferedTools
from runtime.agents.sgr import next_step_schema, parse_next_step
from runtime.config import RuntimeSettings
from runtime.llm import LLMClient, LLMError, LLMReply
from runtime.local_llm import attach, server, weights
from runtime.local_llm.config import LocalLLMConfig
from runtime.tools.standard import STANDARD_TOOLS
from runtime.tools.system import SYSTEM_TOOLS, ReasoningTool
from templates_app.specs import TemplateContent, TemplateSpec

TOOLS = {t.tool_name: t for t in (*SYSTEM_TOOLS, *STANDARD_TOOLS)}
RESEARCH = ["final_answer_tool", "clarification_tool", "web_search_tool", "extract_page_content_tool",
            "create_report_tool", "generate_plan_tool"]
FOUND = "Search results:\n[1] Hamlet (play) - Hamlet is a tragedy written by William Shakespeare around 1600."

TASKS = [
    {"task": "What is 2 + 2?", "expect": "final_answer_tool"},
    {"task": "What is the capital of France?", "expect": "final_answer_tool"},
    {"task": "Search the web for the latest news about solid-state batteries.", "expect": "web_search_tool"},
    {"task": "Find today's price of Bitcoin online.", "expect": "web_search_tool"},
    {"task": "Read the page https://example.com/tea-history and tell me what it says.",
     "expect": "extract_page_content_tool"},
    {"task": "Help me with it.", "expect": "clarification_tool"},
    {"task": "Fix my thing.", "expect": "clarification_tool"},
    {"task": "Make a step-by-step research plan before studying the history of electric cars.",
     "expect": "generate_plan_tool"},
    {"task": "Who wrote Hamlet?", "expect": "final_answer_tool",
     "history": [("web_search_tool", {"reasoning": "Need the author", "query": "Hamlet author"}, FOUND)]},
    {"task": "Research the history of tea and save a written report.", "expect": "create_report_tool",
     "history": [("web_search_tool", {"reasoning": "Need sources", "query": "history of tea"},
                  "Search results:\n[1] Tea - Tea drinking began in China around 2700 BC and reached Europe in "
                  "the 1600s.")]},
]


def offered(names: list[str]) -> OfferedTools:
    schemas = [{"type": "function", "function": {"name": n, "description": (TOOLS[n].__doc__ or "").strip(),
                                                  "parameters": TOOLS[n].parameters_schema()}} for n in names]
    return OfferedTools(names=names, schemas=schemas, removed={}, schema_tokens=0)


def messages_for(spec: TemplateSpec, case: dict, tools: OfferedTools) -> list[dict]:
    """What BaseAgent._prepare_context sends: the system prompt with this step's tools, the conversation."""
    lines = "\n".join(f"- {s['function']['name']}: {s['function']['description']}" for s in tools.schemas)
    system = spec.content.prompt_pack.render("system_prompt", current_date=dt.date.today().isoformat(),
                                             template_name=spec.name, tools=lines)
    messages = [{"role": "system", "content": system}, {"role": "user", "content": case["task"]}]
    for i, (name, arguments, result) in enumerate(case.get("history", [])):
        call = {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        messages += [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": f"call_{i}", "content": result}]
    return messages


async def run(config: LocalLLMConfig, rounds: int) -> dict:
    spec = TemplateSpec(template_id=0, name="bench_agent", version_id=0, version=1, is_active_version=True,
                        content=TemplateContent(agent_kind="sgr", execution_policy={"llm_timeout_s": 600}))
    settings = RuntimeSettings(llm_base_url="", llm_api_key="", llm_model="", llm_timeout_s=600, llm_max_retries=0,
                               tavily_base_url="", tavily_api_key="", entrypoint_allowlist=(),
                               http_allow_private=False, llm_backend="local", local_llm=config)
    llm_settings = await attach(settings.llm_for(spec), config)
    endpoint = server.running()
    client = LLMClient(llm_settings)
    steps = []
    load_before = os.getloadavg()
    for _ in range(rounds):
        for case in TASKS:
            tools = offered(RESEARCH)
            schema = next_step_schema(tools, ReasoningTool.parameters_schema(), string_cap=llm_settings.string_cap)
            started = time.perf_counter()
            try:
                reply = await client.complete(messages_for(spec, case, tools), response_format={
                    "type": "json_schema", "json_schema": {"name": "next_step", "schema": schema}})
                _, tool, _ = parse_next_step(reply.content or "", tools.names)
                error = ""
            except InvalidOutput as exc:
                tool, error = None, str(exc)
            except LLMError as exc:  # e.g. a timeout: counted as an invalid step
                reply, tool, error = LLMReply(content=None), None, str(exc)
            seconds = time.perf_counter() - started
            steps.append({"task": case["task"], "expect": case["expect"], "chose": tool, "valid": tool is not None,
                          "error": error, "seconds": round(seconds, 2), "completion_tokens": reply.completion_tokens,
                          "prompt_tokens": reply.prompt_tokens})
    await client.aclose()
    seconds = [s["seconds"] for s in steps]
    tokens = sum(s["completion_tokens"] for s in steps)
    return {
        "benchmark": "local_llm",
        "model": endpoint.model, "gguf": endpoint.gguf.name,
        "gguf_mb": round(endpoint.gguf.stat().st_size / 1e6, 1),
        "threads": endpoint.threads, "ctx": endpoint.ctx, "cpus": os.cpu_count(),
        "string_cap": llm_settings.string_cap, "max_tokens": llm_settings.max_tokens,
        "temperature": llm_settings.temperature, "frequency_penalty": llm_settings.frequency_penalty,
        "start_s": round(endpoint.start_s, 2), "warmup_s": round(endpoint.warmup_s, 2),
        "steps": len(steps),
        "valid_json_rate": round(sum(s["valid"] for s in steps) / len(steps), 3),
        "right_tool_rate": round(sum(s["chose"] == s["expect"] for s in steps) / len(steps), 3),
        "seconds_per_step": {"mean": round(sum(seconds) / len(seconds), 2), "p50": percentile(seconds, 50),
                             "max": max(seconds)},
        "completion_tokens_per_s": round(tokens / sum(seconds), 1),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "per_step": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.environ.get("LOCAL_LLM_MODEL", "smollm2-135m"),
                        choices=sorted(weights.MODELS))
    parser.add_argument("--gguf", default=os.environ.get("LOCAL_LLM_GGUF", ""))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOCAL_LLM_THREADS", "0")))
    parser.add_argument("--string-cap", type=int, default=int(os.environ.get("LOCAL_LLM_MAX_STRING", "200")))
    parser.add_argument("--max-tokens", type=int, default=int(os.environ.get("LOCAL_LLM_MAX_TOKENS", "1536")))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    config = LocalLLMConfig(model=args.model, gguf=args.gguf, directory=Path(os.environ.get(
        "LOCAL_LLM_DIR", ROOT / "var" / "models")), threads=args.threads, max_string=args.string_cap,
        max_tokens=args.max_tokens)
    emit(asyncio.run(run(config, args.rounds)))


if __name__ == "__main__":
    main()
