"""Tool-schema tokens per prompt: tool search (top max_tools_in_prompt + pinned) vs every tool,
for a 1,000-tool catalog (BFCL functions), over BFCL dev queries. Target: >= 90% fewer tokens.

Tokens are estimated as JSON characters / 4 (the same estimate the runtime logs and exports).
Prints JSON. Usage: .venv/bin/python bench/context_tokens.py [--tools 1000] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["EMBEDDED_PG_DBNAME"] = "bench_context"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.base")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from tool_retrieval import DATA, catalog_name, fix_types, fresh_database, import_pool, jsonl  # noqa: E402


def tokens(schemas: list[dict]) -> int:
    return len(json.dumps(schemas)) // 4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    import tool_retrieval

    tool_retrieval.DBNAME = "bench_context"  # its own database, not the retrieval benchmark's
    os.environ["EMBEDDED_PG_DBNAME"] = "bench_context"
    fresh_database()
    import django

    django.setup()
    import io

    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("load_defaults", verbosity=0, stdout=io.StringIO())
    from catalog.selectors import tool_specs_active, tool_specs_by_name
    from retrieval.services import tool_embeddings_refresh, tool_search_doc_refresh
    from retrieval.toolsearch import tool_search_for_step
    from templates_app.selectors import template_spec_get
    from templates_app.services import template_create

    taken: set[str] = set()
    names, rows = {}, []
    for r in jsonl(DATA / "bfcl" / "tools.jsonl")[: args.tools]:
        names[r["name"]] = catalog_name(r["name"], taken)
        rows.append({"name": names[r["name"]], "description": r["description"] or r["name"],
                     "parameters": fix_types(r.get("parameters") or {})})
    import_pool(rows)
    from catalog.models import Tool

    tool_search_doc_refresh(tool_ids=list(Tool.objects.values_list("id", flat=True)))
    tool_embeddings_refresh()
    template_create(name="bench_retrieval_agent", content={
        "tool_policy": {"strategy": "retrieval", "allowlist": [], "max_tools_in_prompt": 10}})
    spec = template_spec_get(name="bench_retrieval_agent")
    every = [s.openai_schema() for s in tool_specs_active() if s.name != "reasoning_tool"]
    all_tokens = tokens(every)
    queries = [(q["query"], [names[n] for n in q["relevant"] if n in names])
               for q in jsonl(DATA / "bfcl" / "queries_dev.jsonl")]
    queries = [(q, rel) for q, rel in queries if rel][: args.queries]
    per_prompt, found = [], 0
    for query, relevant in queries:
        outcome = tool_search_for_step(query=query, template=spec, top_k=10)
        offered = [r.name for r in outcome.results]
        specs = tool_specs_by_name(names=offered)
        per_prompt.append(tokens([specs[n].openai_schema() for n in offered if n in specs]))
        found += any(n in offered for n in relevant)
    mean = sum(per_prompt) / len(per_prompt)
    print(json.dumps({
        "benchmark": "context_tokens",
        "catalog_tools": len(every),
        "queries": len(queries),
        "all_tools_schema_tokens": all_tokens,
        "retrieval_schema_tokens_mean": round(mean, 1),
        "retrieval_schema_tokens_max": max(per_prompt),
        "reduction_pct": round(100 * (1 - mean / all_tokens), 2),
        "target_reduction_pct": 90,
        "queries_with_a_relevant_tool_offered_pct": round(100 * found / len(queries), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
