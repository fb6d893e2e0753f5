"""Reads for tool search: every pgvector and full-text query of the platform.

Dense side: cosine distance on ``tools.embedding`` through the HNSW index
``tools_embedding_hnsw`` (pgvector iterative scan, so WHERE filters do not starve
the LIMIT). Keyword side: Okapi BM25 computed in SQL over the inverted index
``retrieval_tool_terms`` (lexemes from ``to_tsvector``; document frequencies are
read at query time, so they are never stale; the collection size and average
length are cached for up to 30 seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from pgvector import Vector

from catalog.models import RiskLevel, Tool
from platform_site.sql import fetch
from retrieval.models import ToolSearchDoc

TS_CONFIG = "english"  # text search configuration of documents and queries alike
BM25_K1 = 1.2  # the textbook Okapi defaults, not tuned on any data set
BM25_B = 0.75
RISK_ORDER = [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH]


@dataclass(frozen=True)
class ToolFilter:
    """Which tools a search may return (all conditions are SQL WHERE clauses).

    An empty ``allowlist`` means no restriction (as in a template's tool policy).
    """

    active_only: bool = True
    allowlist: tuple[str, ...] = ()
    denylist: tuple[str, ...] = ()
    max_risk: str | None = None
    exclude_system: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ToolFilter:
        data = dict(data or {})
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown tool filter keys: {', '.join(sorted(unknown))}")
        for key in ("allowlist", "denylist"):
            data[key] = tuple(data.get(key) or ())
        if data.get("max_risk") not in (None, *RISK_ORDER):
            raise ValueError(f"max_risk must be one of {[str(r) for r in RISK_ORDER]}")
        return cls(**data)

    def where(self, alias: str = "t") -> tuple[str, dict[str, Any]]:
        """SQL condition on the ``tools`` row ``alias``, with its named parameters."""
        clauses, params = ["TRUE"], {}
        if self.active_only:
            clauses.append(f"{alias}.is_active")
        if self.exclude_system:
            clauses.append(f"NOT {alias}.is_system")
        if self.allowlist:
            clauses.append(f"{alias}.name = ANY(%(allowlist)s)")
            params["allowlist"] = list(self.allowlist)
        if self.denylist:
            clauses.append(f"NOT ({alias}.name = ANY(%(denylist)s))")
            params["denylist"] = list(self.denylist)
        if self.max_risk:
            clauses.append(f"{alias}.risk = ANY(%(risks)s)")
            params["risks"] = [str(r) for r in RISK_ORDER[: RISK_ORDER.index(self.max_risk) + 1]]
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Candidate:
    tool_id: int
    name: str
    score: float  # cosine similarity (dense) or BM25 (keyword)
    embedded: bool = True  # has a vector of the current model (dense search could see it)


@dataclass(frozen=True)
class IndexRow:
    """What the indexer needs to know about one tool."""

    tool_id: int
    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)
    embedding_model: str
    has_embedding: bool
    text_hash: str | None  # of its keyword doc, None when it has none yet
    embedded_hash: str | None


def _nearest_sql(where: str, *, source: str, vector: str, model: str) -> str:
    return f"""
        SELECT q.qi, c.id, c.name, 1 - c.distance
        FROM unnest(%(vectors)s::vector[]) WITH ORDINALITY AS q(vec, qi)
        CROSS JOIN LATERAL (
            SELECT t.id, t.name, {vector} <=> q.vec AS distance
            FROM {source}
            WHERE {vector} IS NOT NULL AND {model} = %(model)s AND {where}
            ORDER BY {vector} <=> q.vec
            LIMIT %(limit)s
        ) AS c
    """


def _nearest(sql: str, *, vectors: Sequence[np.ndarray], model: str, limit: int, params: dict,
             explain: bool) -> list[list[Candidate]] | str:
    if not vectors:
        return []
    out: list[list[Candidate]] = [[] for _ in vectors]
    rows = fetch(("EXPLAIN " if explain else "") + sql,
                 {"vectors": [Vector(v).to_text() for v in vectors], "model": model, "limit": limit, **params},
                 prepare=not explain)
    if explain:
        return "\n".join(row[0] for row in rows)
    for qi, tool_id, name, similarity in rows:
        out[qi - 1].append(Candidate(tool_id, name, float(similarity)))
    for hits in out:  # relaxed_order iterative scans may return slightly out of order
        hits.sort(key=lambda c: -c.score)
    return out


def tool_dense_candidates(
    *, vectors: Sequence[np.ndarray], model: str, limit: int, tool_filter: ToolFilter, explain: bool = False
) -> list[list[Candidate]] | str:
    """For each query vector, the ``limit`` nearest tools embedded with ``model``.

    One statement: a LATERAL HNSW scan per vector. Call inside a transaction that
    ran :func:`hnsw_session_settings` (ef_search and iterative scan). With
    ``explain`` the query plan is returned instead (tests check the index is used).
    """
    where, params = tool_filter.where("t")
    sql = _nearest_sql(where, source="tools t", vector="t.embedding", model="t.embedding_model")
    return _nearest(sql, vectors=vectors, model=model, limit=limit, params=params, explain=explain)


def tool_sentence_candidates(
    *, vectors: Sequence[np.ndarray], model: str, limit: int, tool_filter: ToolFilter, explain: bool = False
) -> list[list[Candidate]] | str:
    """For each static sentence vector, the ``limit`` nearest tool docs (HNSW on the docs' own
    vectors; the same transaction settings as :func:`tool_dense_candidates`)."""
    where, params = tool_filter.where("t")
    sql = _nearest_sql(where, source="retrieval_tool_docs d JOIN tools t ON t.id = d.tool_id",
                       vector="d.sentence_vector", model="d.sentence_model")
    return _nearest(sql, vectors=vectors, model=model, limit=limit, params=params, explain=explain)


def hnsw_session_settings(*, ef_search: int) -> None:
    """SET LOCAL the HNSW search breadth and iterative scan (inside a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                       "set_config('hnsw.iterative_scan', 'relaxed_order', true)", [str(int(ef_search))])


_KEYWORD_SQL = """
    WITH q AS (
        SELECT DISTINCT u.lexeme FROM unnest(to_tsvector(%(config)s::regconfig, %(query)s)) AS u
    ), post AS NOT MATERIALIZED (  -- inlined in both uses: the planner sees real posting counts
        SELECT p.tool_id, p.lexeme, p.tf, p.doc_length
        FROM retrieval_tool_terms p WHERE p.lexeme IN (SELECT lexeme FROM q)
    ), df AS (
        SELECT lexeme, count(*)::float8 AS df FROM post GROUP BY lexeme
    ), stats AS (
        SELECT %(n)s::float8 AS n, %(avgdl)s::float8 AS avgdl
    ), weights AS (  -- per query term: idf, and BM25's length normalisation constants
        SELECT df.lexeme, ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) * (%(k1)s::float8 + 1) AS w,
               %(k1)s::float8 * (1 - %(b)s::float8) AS c0, %(k1)s::float8 * %(b)s::float8 / stats.avgdl AS c1
        FROM df CROSS JOIN stats
    ), scored AS (
        SELECT post.tool_id, sum(weights.w * post.tf / (post.tf + weights.c0 + weights.c1 * post.doc_length)) AS score
        FROM post JOIN weights USING (lexeme)
        GROUP BY post.tool_id
    ), ranked AS (
        SELECT tool_id, score, row_number() OVER (ORDER BY score DESC, tool_id) AS rn, count(*) OVER () AS total
        FROM scored
    )
    (SELECT t.id, t.name, r.score, (t.embedding IS NOT NULL AND t.embedding_model = %(model)s), r.total::float8,
            NULL::text
     FROM ranked r JOIN tools t ON t.id = r.tool_id
     WHERE r.rn <= %(window)s AND {where}
     ORDER BY r.score DESC, t.id
     LIMIT %(limit)s)
    UNION ALL  -- and each query term's weight, for scoring parts of the query later (same snapshot)
    (SELECT NULL, NULL, weights.w, NULL, weights.c1, weights.lexeme FROM weights)
"""


@dataclass(frozen=True)
class KeywordResult:
    """BM25 candidates of a query, and what scored them: each query term's weight
    (``idf * (k1 + 1)``) and the length normalisation ``tf / (tf + c0 + c1 * doc_length)``."""

    candidates: list[Candidate]
    weights: dict[str, float]
    c0: float = BM25_K1 * (1 - BM25_B)
    c1: float = 0.0


STATS_TTL_S = 30.0
_stats: tuple[float, float, float] | None = None  # (n, avgdl, read at monotonic time)
_stats_lock = threading.Lock()


def collection_stats() -> tuple[float, float]:
    """BM25's collection statistics (number of docs, average length), read at most every
    ``STATS_TTL_S`` seconds (a full pass over the docs costs milliseconds at 10,000 tools;
    a few seconds' drift in these two numbers moves no ranking). Index writes in this
    process forget them at once (:func:`collection_stats_forget`)."""
    global _stats
    now = time.monotonic()
    with _stats_lock:
        if _stats is not None and now - _stats[2] < STATS_TTL_S:
            return _stats[0], _stats[1]
    n, avgdl = collection_stats_read()
    with _stats_lock:
        _stats = (n, avgdl, now)
    return n, avgdl


def collection_stats_read() -> tuple[float, float]:
    """BM25's collection statistics, read now (in the caller's transaction): docs, average length."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*)::float8, greatest(coalesce(sum(length), 0)::float8 / greatest(count(*), 1), 1) "
                       "FROM retrieval_tool_docs")
        return cursor.fetchone()


def collection_stats_forget() -> None:
    global _stats
    with _stats_lock:
        _stats = None


def tool_keyword_search(*, query: str, model: str, limit: int, tool_filter: ToolFilter) -> KeywordResult:
    """The ``limit`` best tools for ``query`` by Okapi BM25 over the lexeme index
    (each marked with whether it has an embedding of ``model``), with the term weights.

    Every matching tool is scored, but only the best ``4 * limit`` are joined with
    ``tools`` for the filters; if the filters leave too few of them, the query runs
    again over all matching tools.
    """
    where, filter_params = tool_filter.where("t")
    sql = _KEYWORD_SQL.format(where=where)
    n, avgdl = collection_stats()
    params = {"config": TS_CONFIG, "query": query, "k1": BM25_K1, "b": BM25_B, "model": model, "limit": limit,
              "window": 4 * limit, "n": n, "avgdl": avgdl, **filter_params}
    rows = fetch(sql, params)
    tools = [row for row in rows if row[5] is None]
    if len(tools) < limit and (not tools or tools[0][4] > params["window"]):
        # The filters dropped too many of the best tools: consider every match.
        rows = fetch(sql, {**params, "window": 2**31 - 1})
        tools = [row for row in rows if row[5] is None]
    terms = [row for row in rows if row[5] is not None]
    return KeywordResult(
        candidates=[Candidate(tool_id, name, float(score), embedded) for tool_id, name, score, embedded, _, _ in tools],
        weights={row[5]: float(row[2]) for row in terms}, c1=float(terms[0][4]) if terms else 0.0,
    )


def tool_keyword_candidates(*, query: str, model: str, limit: int, tool_filter: ToolFilter) -> list[Candidate]:
    """:func:`tool_keyword_search`'s candidates alone."""
    return tool_keyword_search(query=query, model=model, limit=limit, tool_filter=tool_filter).candidates


_SENTENCE_KEYWORD_SQL = """
    WITH post AS MATERIALIZED (  -- the candidates' postings of the query's terms: primary key lookups
        SELECT p.tool_id, p.lexeme, p.tf, p.doc_length
        FROM unnest(%(ids)s::bigint[]) AS c(id)
        CROSS JOIN LATERAL unnest(%(lexemes)s::text[]) AS l(lexeme)
        JOIN retrieval_tool_terms p ON p.tool_id = c.id AND p.lexeme = l.lexeme
    ), q AS (
        SELECT DISTINCT s.qi, u.lexeme
        FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS s(txt, qi)
        CROSS JOIN LATERAL unnest(to_tsvector(%(config)s::regconfig, s.txt)) AS u
    ), weights AS (
        SELECT * FROM unnest(%(lexemes)s::text[], %(weights)s::float8[]) AS w(lexeme, w)
    )
    SELECT q.qi, post.tool_id, sum(weights.w * post.tf / (post.tf + %(c0)s::float8 + %(c1)s::float8 * post.doc_length))
    FROM q JOIN weights USING (lexeme) JOIN post USING (lexeme)
    GROUP BY q.qi, post.tool_id
"""


def tool_keyword_sentence_scores(*, texts: Sequence[str], tool_ids: Sequence[int],
                                 keyword: KeywordResult) -> np.ndarray:
    """Okapi BM25 of each text (the sentences of the query ``keyword`` was searched with) for the
    given tools only, with that search's term weights: one row per text, one column per tool in
    ``tool_ids``' order (0 where they share no term)."""
    out = np.zeros((len(texts), len(tool_ids)))
    if not texts or not tool_ids or not keyword.weights:
        return out
    column = {tool_id: j for j, tool_id in enumerate(tool_ids)}
    rows = fetch(_SENTENCE_KEYWORD_SQL, {
        "texts": list(texts), "ids": list(tool_ids), "config": TS_CONFIG, "lexemes": list(keyword.weights),
        "weights": list(keyword.weights.values()), "c0": keyword.c0, "c1": keyword.c1,
    })
    for qi, tool_id, score in rows:
        out[qi - 1, column[tool_id]] = score
    return out


def tool_index_rows(*, tool_ids: Sequence[int] | None = None, chunk_size: int = 1000) -> Iterator[IndexRow]:
    """Every tool (or the given ones) with the state of its search index, by id."""
    qs = Tool.objects.order_by("id")
    if tool_ids is not None:
        qs = qs.filter(id__in=list(tool_ids))
    has_embedding = ExpressionWrapper(Q(embedding__isnull=False), output_field=BooleanField())
    rows = qs.annotate(has_embedding=has_embedding).values_list(
        "id", "name", "description", "parameters", "embedding_model", "has_embedding"
    )
    batch: list[tuple] = []
    for row in rows.iterator(chunk_size=chunk_size):
        batch.append(row)
        if len(batch) >= chunk_size:
            yield from _with_docs(batch)
            batch = []
    if batch:
        yield from _with_docs(batch)


def _with_docs(batch: list[tuple]) -> Iterator[IndexRow]:
    docs = {
        tool_id: (text_hash, embedded_hash)
        for tool_id, text_hash, embedded_hash in ToolSearchDoc.objects.filter(
            tool_id__in=[row[0] for row in batch]
        ).values_list("tool_id", "text_hash", "embedded_hash")
    }
    for tool_id, name, description, parameters, model, has_embedding in batch:
        text_hash, embedded_hash = docs.get(tool_id, (None, None))
        yield IndexRow(tool_id, name, description, parameters or {}, model, has_embedding, text_hash, embedded_hash)


def directory_nearest(*, vector: list[float], model: str, limit: int = 400) -> list[dict]:
    """Directory entries of served templates (active template, its active version) nearest to ``vector``."""
    from pgvector.django import CosineDistance

    from retrieval.models import DirectoryEntry

    rows = (
        DirectoryEntry.objects.filter(
            embedding_model=model,
            version__template__is_active=True,
            version__template__active_version=F("version_id"),
        )
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .values("distance", "text", "version__template_id", "version__template__name", "version__version",
                "version__description")[:limit]
    )
    return [
        {"template_id": r["version__template_id"], "template": r["version__template__name"],
         "version": r["version__version"], "description": r["version__description"], "text": r["text"],
         "similarity": 1.0 - float(r["distance"])}
        for r in rows
    ]
