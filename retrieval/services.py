"""Tool search: keeping the index fresh, and hybrid search over it.

Indexing: a tool's keyword doc (text + BM25 postings + static sentence vector,
``retrieval.models``) is written in the caller's transaction, its embedding
(``Tool.embedding``) after commit in one background thread, or in bulk by
``tool_embeddings_refresh`` (``manage.py reindex_embeddings``), which only touches what
is missing or stale.

Search: dense (the start of the query, ``TOOL_SEARCH_QUERY_TOKENS`` model tokens, embedded
on a worker thread while the database scores the keyword side, against the HNSW index) and
keyword (BM25 over the postings of the whole query), each cut to its top candidates and
fused (``retrieval.fusion``). A request of several sentences is also fused sentence by
sentence: each sentence's static vector (``StaticEmbedder``, microseconds) against the
docs' own, with that sentence's BM25, so every ask of a long request is searched without
the model reading it all. Everything runs on the process's in-memory copy of the index
while it is current (``retrieval.memindex``), in SQL otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.db import connection, connections, transaction

from catalog.models import Tool
from retrieval import fusion, memindex, selectors
from retrieval.embedders import get_embedder, get_sentence_embedder, mean_vectors
from retrieval.models import ToolSearchDoc
from retrieval.selectors import Candidate, ToolFilter
from retrieval.text import (
    DESCRIPTION_WEIGHT,
    NAME_WEIGHT,
    PARAMETERS_PREFIX,
    PARAMETERS_WEIGHT,
    embedding_digest,
    keyword_text,
    query_parts,
    text_hash,
    tool_views,
)

logger = logging.getLogger(__name__)

CANDIDATES = 50  # per retriever, before fusion
SearchMode = Literal["hybrid", "dense", "keyword"]


@dataclass(frozen=True)
class ToolHit:
    tool_id: int
    name: str
    score: float
    dense_rank: int | None  # 1-based rank in the dense candidates, None if not among them
    keyword_rank: int | None


@dataclass
class RefreshReport:
    scanned: int = 0
    docs_refreshed: int = 0
    embedded: int = 0


# -- indexing -------------------------------------------------------------------------------

# BM25F: each line's lexemes counted with its field's weight (``retrieval.text``), summed per lexeme.
_TERMS_SQL = f"""
    WITH line AS (
        SELECT d.tool_id, l.text, CASE WHEN l.n = 1 THEN {NAME_WEIGHT}
            WHEN starts_with(l.text, %(parameters)s) THEN {PARAMETERS_WEIGHT} ELSE {DESCRIPTION_WEIGHT} END AS weight
        FROM retrieval_tool_docs d
        CROSS JOIN LATERAL unnest(string_to_array(d.text, E'\n')) WITH ORDINALITY AS l(text, n)
        WHERE d.tool_id = ANY(%(ids)s)
    ), lex AS (
        SELECT line.tool_id, u.lexeme, sum(line.weight * coalesce(array_length(u.positions, 1), 1)) AS tf
        FROM line CROSS JOIN LATERAL unnest(to_tsvector('{selectors.TS_CONFIG}'::regconfig, line.text)) AS u
        GROUP BY line.tool_id, u.lexeme
    ), len AS (
        SELECT tool_id, sum(tf) AS n FROM lex GROUP BY tool_id
    ), upd AS (
        UPDATE retrieval_tool_docs d SET length = len.n FROM len WHERE d.tool_id = len.tool_id
    )
    INSERT INTO retrieval_tool_terms (tool_id, lexeme, tf, doc_length)
    SELECT lex.tool_id, lex.lexeme, lex.tf, len.n FROM lex JOIN len USING (tool_id)
"""


@transaction.atomic
def _docs_write(views: dict[int, list[str]]) -> None:
    """Upsert the keyword docs of these tools (each tool's ``tool_views``: the first is its doc)
    with their static sentence vectors (the mean of the views', as for the model's vectors), and
    rebuild their postings (one SQL pass)."""
    ids = list(views)
    static = get_sentence_embedder()
    vectors = mean_vectors(static, list(views.values()))
    docs = [ToolSearchDoc(tool_id=tool_id, text=texts[0], text_hash=text_hash(texts[0]), length=0,
                          sentence_vector=vector, sentence_model=static.name)
            for (tool_id, texts), vector in zip(views.items(), vectors, strict=True)]
    ToolSearchDoc.objects.bulk_create(  # upsert: concurrent writers of one tool serialise on its row
        docs, update_conflicts=True, unique_fields=["tool"],
        update_fields=["text", "text_hash", "length", "sentence_vector", "sentence_model", "updated_at"],
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM retrieval_tool_terms WHERE tool_id = ANY(%s)", [ids])
        cursor.execute(_TERMS_SQL, {"ids": ids, "parameters": PARAMETERS_PREFIX})
    selectors.collection_stats_forget()  # now (this transaction reads its own writes) and after commit
    transaction.on_commit(selectors.collection_stats_forget)


def tool_search_doc_refresh(*, tool_ids: Iterable[int]) -> int:
    """Bring the keyword docs of these tools up to date; returns how many changed.

    Cheap (no model): runs in the caller's transaction, so a tool is findable by
    keywords as soon as its write commits.
    """
    stale = {}
    for row in selectors.tool_index_rows(tool_ids=list(tool_ids)):
        views = tool_views(name=row.name, description=row.description, parameters=row.parameters)
        if row.text_hash != text_hash(views[0]):
            stale[row.tool_id] = views
    if stale:
        _docs_write(stale)
    return len(stale)


def _embeddings_write(*, model: str, vectors: dict[int, np.ndarray], hashes: dict[int, str]) -> int:
    """Store vectors computed from the docs whose text hashes are ``hashes``; skips tools whose
    text changed meanwhile."""
    with transaction.atomic():
        current = set(
            ToolSearchDoc.objects.select_for_update()
            .filter(tool_id__in=list(vectors))
            .values_list("tool_id", "text_hash")
        )
        fresh = [tool_id for tool_id in vectors if (tool_id, hashes[tool_id]) in current]
        tools = [Tool(id=tool_id, embedding=vectors[tool_id], embedding_model=model) for tool_id in fresh]
        Tool.objects.bulk_update(tools, ["embedding", "embedding_model"])
        docs = [ToolSearchDoc(tool_id=tool_id, embedded_hash=embedding_digest(hashes[tool_id])) for tool_id in fresh]
        ToolSearchDoc.objects.bulk_update(docs, ["embedded_hash"])
    return len(fresh)


def tool_embeddings_refresh(
    *,
    tool_ids: Iterable[int] | None = None,
    model: str | None = None,
    batch_size: int = 64,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RefreshReport:
    """Refresh keyword docs, then embed every tool whose embedding is missing, was made by
    another model, from an older text or by an older ``EMBEDDING_RECIPE`` (all of them with
    ``force``). A tool's vector is the normalised mean of its ``tool_views``.

    Resumable: each batch commits on its own, and a second run finds nothing to do.
    ``on_start(total)`` and ``on_progress(done_in_batch)`` feed a progress bar.
    """
    embedder = get_embedder(model)
    report = RefreshReport()
    todo: list[tuple[int, list[str], str]] = []  # (tool id, its views, its doc's hash)
    stale_docs: dict[int, list[str]] = {}
    rows = list(selectors.tool_index_rows(tool_ids=None if tool_ids is None else list(tool_ids)))
    for row in rows:
        report.scanned += 1
        views = tool_views(name=row.name, description=row.description, parameters=row.parameters)
        digest = text_hash(views[0])
        if row.text_hash != digest:
            stale_docs[row.tool_id] = views
        if (force or not row.has_embedding or row.embedding_model != embedder.name
                or row.embedded_hash != embedding_digest(digest)):
            todo.append((row.tool_id, views, digest))
        if len(stale_docs) >= 500:
            _docs_write(stale_docs)
            report.docs_refreshed += len(stale_docs)
            stale_docs = {}
    if stale_docs:
        _docs_write(stale_docs)
        report.docs_refreshed += len(stale_docs)
    if on_start:
        on_start(len(todo))
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        report.embedded += _embeddings_write(
            model=embedder.name,
            vectors=dict(zip([tool_id for tool_id, _, _ in batch],
                             mean_vectors(embedder, [views for _, views, _ in batch]), strict=True)),
            hashes={tool_id: digest for tool_id, _, digest in batch},
        )
        if on_progress:
            on_progress(len(batch))
    return report


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_pending: set[Future] = set()


def _background_embed(tool_id: int) -> None:
    try:
        tool_embeddings_refresh(tool_ids=[tool_id])
    except Exception:  # logged, never lost: reindex_embeddings picks the tool up later
        logger.exception("embedding tool %s failed", tool_id)
    finally:
        connections.close_all()  # this thread's connections only


def _submit(tool_id: int) -> None:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tool-embedding")
        future = _executor.submit(_background_embed, tool_id)
    _pending.add(future)
    future.add_done_callback(_pending.discard)


def tool_embedding_schedule(*, tool_id: int) -> None:
    """Index a created or changed tool without making the request wait for the model.

    The keyword doc is refreshed now, in the caller's transaction (milliseconds);
    the embedding is computed after that transaction commits, by a single
    background worker thread. Until then the tool is found by keywords.
    """
    tool_search_doc_refresh(tool_ids=[tool_id])
    transaction.on_commit(lambda: _submit(tool_id))


def tool_embeddings_wait(timeout: float | None = None) -> None:
    """Block until scheduled embeddings are done (tests, orderly shutdown)."""
    for future in list(_pending):
        future.result(timeout=timeout)


# -- search ---------------------------------------------------------------------------------


_QUERY_CACHE_SIZE = 2048
_query_cache: OrderedDict[tuple[str, str, int | None], np.ndarray] = OrderedDict()
_query_cache_lock = threading.Lock()


def _query_vectors(embedder, texts: list[str], max_tokens: int | None = None) -> list[np.ndarray]:
    """Query vectors through a small LRU cache: the same search recurs (an agent repeating a step,
    several sessions on one task)."""
    keys = [(embedder.name, t, max_tokens) for t in texts]
    with _query_cache_lock:
        found = {k: _query_cache.get(k) for k in keys}
    missing = [k for k, v in found.items() if v is None]
    if missing:
        texts_missing = [k[1] for k in missing]
        vectors = (embedder.embed_queries(texts_missing, max_tokens=max_tokens) if max_tokens
                   else embedder.embed_queries(texts_missing))
        for key, vector in zip(missing, vectors, strict=True):
            found[key] = vector
    with _query_cache_lock:
        for key, vector in found.items():
            _query_cache[key] = vector
            _query_cache.move_to_end(key)
        while len(_query_cache) > _QUERY_CACHE_SIZE:
            _query_cache.popitem(last=False)
    return [found[k] for k in keys]


def search_warm_up() -> threading.Thread:
    """When a served template searches its tools (``ToolPolicy.searches``), load the
    embedding model and build the in-memory index on a background thread, so a server's first
    searches are not the slow ones (``manage.py serve`` calls it). Otherwise nothing is loaded:
    the model alone takes ~200 MB of a process's memory."""
    def warm() -> None:
        from templates_app.selectors import template_specs_served

        try:
            if not any(spec.content.tool_policy.searches for spec in template_specs_served()):
                return
            embedder = get_embedder()
            embedder.embed_queries(["warm up"])
            if _memory_index_enabled():
                memindex.refresh(embedder.name)
        except Exception:  # search still works: the model loads, the index builds, on first use
            logger.exception("tool search warm-up failed")
        finally:
            connections.close_all()  # this thread's connection only

    thread = threading.Thread(target=warm, name="tool-search-warm-up", daemon=True)
    thread.start()
    return thread


def query_cache_clear() -> None:
    """Forget cached query vectors (benchmarks time the model, not the cache)."""
    with _query_cache_lock:
        _query_cache.clear()


def _query_tokens() -> int | None:
    """How many model tokens of a query the dense side reads (``TOOL_SEARCH_QUERY_TOKENS``).

    The model's time grows with the tokens it reads (~0.2 ms each on two cores), so it
    reads the start of the request; the keyword side reads all of it, and each sentence
    of a longer request gets its own static vector (``tool_search``) at almost no cost.
    """
    from django.conf import settings

    return getattr(settings, "TOOL_SEARCH_QUERY_TOKENS", 0) or None


def _memory_index_enabled() -> bool:
    from django.conf import settings

    return getattr(settings, "TOOL_SEARCH_MEMORY_INDEX", True)


_embedding_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="query-embedding")


def tool_search(
    *, query: str, top_k: int = 10, candidate_filter: dict[str, Any] | None = None, mode: SearchMode = "hybrid"
) -> list[ToolHit]:
    """The ``top_k`` tools for ``query`` among those ``candidate_filter`` lets through.

    ``candidate_filter`` keys (all optional): ``active_only`` (default true),
    ``allowlist`` / ``denylist`` (tool names; an empty allowlist restricts
    nothing), ``max_risk`` (``low`` < ``medium`` < ``high``), ``exclude_system``.
    ``mode`` picks one retriever alone (benchmarks, diagnostics).
    """
    query = (query or "").strip()
    if not query or top_k <= 0:
        return []
    tool_filter = ToolFilter.from_dict(candidate_filter)
    limit = max(CANDIDATES, 2 * top_k)
    embedder = get_embedder()
    dense: list[Candidate] = []
    searched = selectors.KeywordResult(candidates=[], weights={})
    per_sentence: list[list[Candidate]] = []
    sentences = query_parts(query) if mode == "hybrid" else []
    keyword_texts = [keyword_text(q) for q in (query, *sentences)]  # what the keyword side reads
    embedding = None
    if mode in ("hybrid", "dense"):  # the model runs while the database works
        embedding = _embedding_pool.submit(_query_vectors, embedder, [query], _query_tokens())
    index, lexemes = None, []
    if _memory_index_enabled():
        generation, lexemes = memindex.query_lexemes(keyword_texts)
        index = memindex.current(generation, embedder.name)
    # SQL search takes a transaction (its HNSW settings are SET LOCAL); memory needs none
    with transaction.atomic() if index is None else contextlib.nullcontext():
        if index is None and mode != "keyword":
            selectors.hnsw_session_settings(ef_search=2 * limit)
        if mode in ("hybrid", "keyword"):
            searched = (index.keyword(lexemes[0], limit=limit, tool_filter=tool_filter) if index is not None
                        else selectors.tool_keyword_search(query=keyword_texts[0], model=embedder.name, limit=limit,
                                                           tool_filter=tool_filter))
        keyword = searched.candidates
        if sentences:
            static = get_sentence_embedder()
            sentence_vectors = list(static.embed_queries(sentences))
            per_sentence = (
                index.sentence_dense(sentence_vectors, limit=limit, tool_filter=tool_filter) if index is not None
                else selectors.tool_sentence_candidates(vectors=sentence_vectors, model=static.name, limit=limit,
                                                        tool_filter=tool_filter))
        if embedding is not None:
            query_vectors = embedding.result()
            dense = (index.dense(query_vectors, limit=limit, tool_filter=tool_filter) if index is not None
                     else selectors.tool_dense_candidates(vectors=query_vectors, model=embedder.name, limit=limit,
                                                          tool_filter=tool_filter))[0]
        names = {c.tool_id: c.name for hits in (dense, *per_sentence, keyword) for c in hits}
        # A tool not embedded yet is scored by the keyword side alone (dense could not see it).
        unseen_by_dense = {c.tool_id for c in keyword if not c.embedded} if dense else set()
        picks = None  # (tool ids, per-sentence scores, ask weights) of a request in several sentences
        if mode == "hybrid":
            scores = fusion.fuse(dense, keyword, keyword_only=unseen_by_dense)
            if sentences:
                ids = np.array(sorted(names), dtype=np.int64)
                sentence_keyword = (
                    index.sentence_scores(lexemes[1:], ids, searched) if index is not None
                    else selectors.tool_keyword_sentence_scores(texts=keyword_texts[1:], tool_ids=ids.tolist(),
                                                                keyword=searched))
                rows = fusion.sentence_scores(ids, per_sentence, sentence_keyword, limit=limit)
                scores = fusion.with_sentences(scores, ids, rows.max(axis=0))
                picks = (ids, rows, fusion.ask_weights(per_sentence))
        else:
            scores = fusion.normalised(dense if mode == "dense" else keyword)
    dense_rank = {c.tool_id: i for i, c in enumerate(dense, 1)}
    keyword_rank = {c.tool_id: i for i, c in enumerate(keyword, 1)}
    return [
        ToolHit(tool_id, names[tool_id], round(score, 6), dense_rank.get(tool_id), keyword_rank.get(tool_id))
        for tool_id, score in (fusion.diversified(scores, *picks, top_k) if picks else fusion.ranked(scores, top_k))
    ]
