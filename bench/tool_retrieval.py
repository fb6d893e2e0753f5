"""Tool search quality and latency on the Seal-Tools and BFCL dev splits (full tool pools).

Imports both pools into the catalog of a fresh database (``bench_retrieval`` on the
embedded server, dropped and recreated; every tool checked as the admin API does), indexes them
(keyword docs + embeddings, timed; then VACUUM ANALYZE), then runs every dev query of a set against that
set's pool only (the other pool is deactivated) with dense-only, keyword-only and
hybrid search. Latency is the wall time of ``tool_search`` (query embedding included);
the 10k figure pads the catalog with copies of the real tools up to 10,000.
Prints JSON. Usage: .venv/bin/python bench/tool_retrieval.py [--queries N] [--latency-queries N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tool-retrieval"
DBNAME = "bench_retrieval"
sys.path.insert(0, str(ROOT))
os.environ["EMBEDDED_PG_DBNAME"] = DBNAME
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.base")
os.environ.setdefault("LOG_LEVEL", "WARNING")

SEAL_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array",
              "dict": "object"}
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
MODES = ("dense", "keyword", "hybrid")
PADDING_NAME = r"-copy[0-9]+$"  # the copies pad_and_time adds


def _maintenance_connection():
    """An autocommit connection to the embedded server's ``postgres`` database."""
    import psycopg

    from platform_site.embedded_db import ensure_running
    from platform_site.env import EMBEDDED_PG_DIR

    params = ensure_running(EMBEDDED_PG_DIR, "postgres")
    return psycopg.connect(host=params["HOST"], port=params["PORT"], user=params["USER"], dbname="postgres",
                           autocommit=True)


def fresh_database() -> None:
    """Drop and recreate the bench database on the embedded server (never a DATABASE_URL one)."""
    if os.environ.get("DATABASE_URL"):
        sys.exit("bench/tool_retrieval.py drops its database: run it on the embedded server (unset DATABASE_URL)")
    from psycopg import sql

    with _maintenance_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DBNAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)))


def bench_database_exists() -> bool:
    with _maintenance_connection() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DBNAME]).fetchone() is not None


def catalog_name(name: str, taken: set[str]) -> str:
    """A valid, unused catalog name: dots become '-', other invalid characters '_'."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name.replace(".", "-"))[:60]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def fix_types(schema):
    """BFCL uses Python type names ('dict', 'float', 'tuple', 'any'); make it JSON Schema."""
    if isinstance(schema, list):
        return [fix_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: fix_types(v) for k, v in schema.items() if k != "type"}
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "any":
        out["type"] = BFCL_TYPES.get(kind, kind)
    if "properties" in schema:
        out["properties"] = {k: fix_types(v) for k, v in schema["properties"].items()}
    return out


def jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_sets(limit: int | None) -> dict[str, dict]:
    taken: set[str] = set()
    sets = {}
    rows, names = [], {}
    for r in jsonl(DATA / "seal-tools" / "tools.jsonl"):
        props = {k: {"description": v.get("description", ""), **({"type": SEAL_TYPES[v["type"]]} if v.get("type")
                                                                  in SEAL_TYPES else {})}
                 for k, v in (r.get("parameters") or {}).items()}
        names[r["api_name"]] = catalog_name(r["api_name"], taken)
        rows.append({"name": names[r["api_name"]], "description": r["api_description"] or r["api_name"],
                     "parameters": {"type": "object", "properties": props,
                                    "required": [p for p in r.get("required") or [] if p in props]}})
    queries = [(q["query"], [names[c["api"]] for c in q["calling"]])
               for q in jsonl(DATA / "seal-tools" / "queries_dev.jsonl")]
    sets["seal_tools"] = {"tools": rows, "queries": queries[:limit]}
    rows, names = [], {}
    for r in jsonl(DATA / "bfcl" / "tools.jsonl"):
        names[r["name"]] = catalog_name(r["name"], taken)
        rows.append({"name": names[r["name"]], "description": r["description"] or r["name"],
                     "parameters": fix_types(r.get("parameters") or {})})
    queries = [(q["query"], [names[n] for n in q["relevant"]])
               for q in jsonl(DATA / "bfcl" / "queries_dev.jsonl")]
    sets["bfcl"] = {"tools": rows, "queries": queries[:limit]}
    return sets


def import_pool(rows: list[dict]) -> None:
    """Every tool checked like the admin API and ``import_tools`` do, then inserted in bulk."""
    from django.conf import settings

    from catalog.errors import ToolInvalid
    from catalog.models import Tool
    from catalog.schemas import tool_definition_check

    tools = []
    for row in rows:
        try:
            data = tool_definition_check(row, entrypoint_allowlist=settings.TOOL_ENTRYPOINT_ALLOWLIST,
                                         allow_private=False)
        except ToolInvalid as exc:
            raise SystemExit(f"{row['name']}: {exc.message}") from exc
        tools.append(Tool(**{k: v for k, v in data.items() if k in ("name", "description", "parameters")}))
    Tool.objects.bulk_create(tools, batch_size=1000)


def analyze() -> None:
    """Fresh statistics for the planner (autovacuum would get there, a benchmark should not wait)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("tools", "retrieval_tool_docs", "retrieval_tool_terms"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def scores(ranked: list[str], relevant: list[str]) -> tuple[float, float, float]:
    rel = set(relevant)
    dcg = sum(1 / math.log2(i + 2) for i, name in enumerate(ranked[:10]) if name in rel)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), 10)))
    return len(rel & set(ranked[:5])) / len(rel), len(rel & set(ranked[:10])) / len(rel), dcg / idcg


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency(samples_s: list[float]) -> dict:
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(max(ms), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=None, help="first N dev queries per set (default: all)")
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--pad-to", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the bench database of an earlier run (skips import and indexing)")
    args = parser.parse_args()

    if not (args.reuse and bench_database_exists()):
        fresh_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from catalog.models import Tool
    from retrieval import memindex
    from retrieval.embedders import get_embedder
    from retrieval.services import (
        query_cache_clear,
        tool_embeddings_refresh,
        tool_search,
    )

    sets = load_sets(args.queries)
    from django.conf import settings

    from retrieval.embedders import get_sentence_embedder

    result: dict = {"embedding_model": get_embedder().name, "query_tokens": settings.TOOL_SEARCH_QUERY_TOKENS,
                    "query_int8": settings.TOOL_SEARCH_QUERY_INT8, "sentence_model": get_sentence_embedder().name,
                    "sets": {}}
    started = time.perf_counter()
    pools = {key: [row["name"] for row in data["tools"]] for key, data in sets.items()}
    Tool.objects.filter(name__regex=PADDING_NAME).delete()  # padding left by an earlier run
    if not Tool.objects.exists():
        for data in sets.values():
            import_pool(data["tools"])
    imported = time.perf_counter()
    get_embedder().embed(["warm up"])
    refresh = tool_embeddings_refresh()
    indexed = time.perf_counter()
    analyze()
    result["indexing"] = {"reused": True, "tools": refresh.scanned} if not refresh.embedded else {
        "tools": refresh.scanned, "import_s": round(imported - started, 1),
        "index_s": round(indexed - imported, 1), "embedded": refresh.embedded,
        "tools_per_s": round(refresh.embedded / max(indexed - imported, 1e-9), 1),
    }

    for key, data in sets.items():
        Tool.objects.update(is_active=False)
        Tool.objects.filter(name__in=pools[key]).update(is_active=True)
        memindex.refresh(get_embedder().name)  # (else the first searches run in SQL while it builds)
        sums = {mode: [0.0, 0.0, 0.0] for mode in MODES}
        took: list[float] = []
        for query, relevant in data["queries"]:
            for mode in MODES:
                query_cache_clear()
                t0 = time.perf_counter()
                hits = tool_search(query=query, top_k=10, mode=mode)
                if mode == "hybrid":
                    took.append(time.perf_counter() - t0)
                for i, value in enumerate(scores([h.name for h in hits], relevant)):
                    sums[mode][i] += value
        n = len(data["queries"])
        result["sets"][key] = {
            "tools": len(pools[key]), "queries": n,
            **{mode: {"recall@5": round(100 * s[0] / n, 1), "recall@10": round(100 * s[1] / n, 1),
                      "ndcg@10": round(100 * s[2] / n, 1)} for mode, s in sums.items()},
            "hybrid_latency": latency(took),
        }

    Tool.objects.update(is_active=True)
    result["latency_at_scale"] = pad_and_time(args.pad_to, args.latency_queries, sets, tool_search,
                                              query_cache_clear)
    result["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


def pad_and_time(pad_to: int, n_queries: int, sets: dict, tool_search, query_cache_clear) -> dict:
    """Copies of the real tools (vectors copied, keyword docs built) up to ``pad_to``; then time searches."""
    from catalog.models import Tool
    from retrieval.services import tool_search_doc_refresh

    originals = list(Tool.objects.order_by("id"))
    copies, round_no = [], 2
    while len(originals) + len(copies) < pad_to:
        for tool in originals[: pad_to - len(originals) - len(copies)]:
            copies.append(Tool(name=f"{tool.name[:56]}-copy{round_no}", description=tool.description,
                               parameters=tool.parameters, embedding=tool.embedding,
                               embedding_model=tool.embedding_model))
        round_no += 1
    created = Tool.objects.bulk_create(copies, batch_size=1000)
    tool_search_doc_refresh(tool_ids=[t.pk for t in created])
    analyze()
    queries = [q for data in sets.values() for q, _ in data["queries"]]
    sample = random.Random(7).sample(queries, min(n_queries, len(queries)))
    from retrieval import memindex
    from retrieval.embedders import get_embedder

    memindex.refresh(get_embedder().name)
    for query in sample[:20]:  # warm caches and the connection
        tool_search(query=query, top_k=10)
    took = []
    for query in sample:
        query_cache_clear()
        t0 = time.perf_counter()
        tool_search(query=query, top_k=10)
        took.append(time.perf_counter() - t0)
    return {"tools": Tool.objects.count(), **latency(took)}


if __name__ == "__main__":
    main()
