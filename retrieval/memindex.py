"""The tool search index held in memory, per process, and used only while it is current.

PostgreSQL stays the index of record (``retrieval.selectors`` searches it in SQL).
This module keeps a copy of what search reads — each tool's filter columns and
vectors (the model's and the static sentence one), each lexeme's postings, BM25's
collection statistics — as numpy arrays, so a search costs one short statement (the
query's lexemes, analysed by PostgreSQL's own ``to_tsvector``, and the index
generation) plus array arithmetic, instead of posting scans and HNSW walks.

The copy is exact when used: every committed change to the tools, docs or terms
gives ``retrieval_index_state`` a new generation (deferred triggers, migration
0004), and a transaction that changed them itself sees a pending mark instead (a
transaction-local setting, set by statement triggers). A search whose generation
differs from the copy's, or that runs in such a transaction, goes to SQL, and a
rebuild starts on a background thread (one at a time, at most every
``REBUILD_INTERVAL_S``). Dense scores are exact cosines here (the SQL side walks HNSW).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg
from django.db import connection, connections, transaction
from psycopg.adapt import Loader
from psycopg.pq import Format

from platform_site.sql import fetch
from retrieval.embedders import get_sentence_embedder
from retrieval.models import SENTENCE_DIMENSIONS
from retrieval.selectors import (
    BM25_B,
    BM25_K1,
    RISK_ORDER,
    TS_CONFIG,
    Candidate,
    KeywordResult,
    ToolFilter,
    collection_stats_read,
)

logger = logging.getLogger(__name__)

REBUILD_INTERVAL_S = 2.0
_MASK_CACHE = 64

_LEXEMES_SQL = """
    SELECT s.qi, u.lexeme
    FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS s(txt, qi)
    CROSS JOIN LATERAL unnest(to_tsvector(%(config)s::regconfig, s.txt)) AS u
    UNION ALL
    SELECT 0, CASE WHEN current_setting('retrieval.pending', true) = '1' THEN NULL ELSE generation::text END
    FROM retrieval_index_state WHERE id = 1
"""


def query_lexemes(texts: Sequence[str]) -> tuple[int | None, list[set[str]]]:
    """The index generation this transaction sees (None: unknown, or changed by this very
    transaction) and each text's lexemes, in one statement."""
    lexemes: list[set[str]] = [set() for _ in texts]
    generation = None
    for qi, lexeme in fetch(_LEXEMES_SQL, {"texts": list(texts), "config": TS_CONFIG}):
        if qi == 0:
            generation = int(lexeme) if lexeme is not None else None
        else:
            lexemes[qi - 1].add(lexeme)
    return generation, lexemes


class _RawBytes(Loader):
    format = Format.BINARY

    def load(self, data) -> bytes:
        return bytes(data)


@dataclass
class ToolIndex:
    generation: int
    model: str
    ids: np.ndarray  # int64, ascending
    names: list[str]
    active: np.ndarray
    system: np.ndarray
    risk: np.ndarray  # index into RISK_ORDER
    embedded: np.ndarray  # has a vector of ``model``
    vectors: np.ndarray  # (n, dim) float32, zero rows where not embedded
    has_sentence_vector: np.ndarray
    sentence_vectors: np.ndarray  # (n, SENTENCE_DIMENSIONS) float32, the docs' static vectors
    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # lexeme → (rows, tf / (tf + c0 + c1 * doc_length))
    n_docs: float
    avgdl: float
    by_name: dict[str, int] = field(init=False)
    _masks: dict[ToolFilter, np.ndarray] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {name: row for row, name in enumerate(self.names)}

    @property
    def c0(self) -> float:
        return BM25_K1 * (1 - BM25_B)

    @property
    def c1(self) -> float:
        return BM25_K1 * BM25_B / self.avgdl

    def mask(self, tool_filter: ToolFilter) -> np.ndarray:
        """Rows the filter lets through (what ``ToolFilter.where`` says in SQL)."""
        found = self._masks.get(tool_filter)
        if found is not None:
            return found
        mask = np.ones(len(self.ids), dtype=bool)
        if tool_filter.active_only:
            mask &= self.active
        if tool_filter.exclude_system:
            mask &= ~self.system
        if tool_filter.allowlist:
            allowed = np.zeros_like(mask)
            allowed[[self.by_name[n] for n in tool_filter.allowlist if n in self.by_name]] = True
            mask &= allowed
        if tool_filter.denylist:
            mask[[self.by_name[n] for n in tool_filter.denylist if n in self.by_name]] = False
        if tool_filter.max_risk:
            mask &= self.risk <= RISK_ORDER.index(tool_filter.max_risk)
        if len(self._masks) >= _MASK_CACHE:
            self._masks.clear()
        self._masks[tool_filter] = mask
        return mask

    def _candidates(self, scores: np.ndarray, eligible: np.ndarray, limit: int,
                    embedded_flag: bool) -> list[Candidate]:
        rows = None if eligible.all() else np.flatnonzero(eligible)
        picked = scores if rows is None else scores[rows]
        if len(picked) > limit:  # the ``limit`` best and any tied with the last (ordered by id below, as SQL does)
            cut = len(picked) - limit
            best = np.flatnonzero(picked >= picked[np.argpartition(picked, cut)[cut:]].min())
            rows = best if rows is None else rows[best]
        elif rows is None:
            rows = np.arange(len(picked))
        rows = rows[np.lexsort((self.ids[rows], -scores[rows]))][:limit]
        embedded = self.embedded[rows].tolist() if embedded_flag else [True] * len(rows)
        return [Candidate(tool_id, self.names[row], score, flag) for tool_id, row, score, flag
                in zip(self.ids[rows].tolist(), rows.tolist(), scores[rows].tolist(), embedded, strict=True)]

    def keyword(self, lexemes: set[str], *, limit: int, tool_filter: ToolFilter) -> KeywordResult:
        """Okapi BM25 of the query's lexemes: the best ``limit`` tools the filter lets through."""
        scores = np.zeros(len(self.ids), dtype=np.float64)
        weights: dict[str, float] = {}
        for lexeme in lexemes:
            posting = self.postings.get(lexeme)
            if posting is None:
                continue
            rows, part = posting
            df = float(len(rows))
            w = float(np.log(1 + (self.n_docs - df + 0.5) / (df + 0.5)) * (BM25_K1 + 1))
            weights[lexeme] = w
            scores[rows] += w * part
        eligible = self.mask(tool_filter) & (scores > 0)
        return KeywordResult(candidates=self._candidates(scores, eligible, limit, True), weights=weights,
                             c0=self.c0, c1=self.c1)

    def sentence_scores(self, lexeme_sets: Sequence[set[str]], tool_ids: Sequence[int],
                        keyword: KeywordResult) -> np.ndarray:
        """Each text's BM25 over the given tools, with ``keyword``'s term weights: one row per text,
        one column per tool (0 where they share no term)."""
        wanted = np.asarray(tool_ids, dtype=np.int64)
        out = np.zeros((len(lexeme_sets), len(wanted)))
        if not len(self.ids) or not len(wanted):
            return out
        rows = np.searchsorted(self.ids, wanted).clip(0, len(self.ids) - 1)
        known = self.ids[rows] == wanted
        scores = np.zeros(len(self.ids), dtype=np.float64)
        for i, lexemes in enumerate(lexeme_sets):
            terms = [lexeme for lexeme in lexemes if lexeme in keyword.weights and lexeme in self.postings]
            if not terms:
                continue
            scores[:] = 0.0
            for lexeme in terms:
                posting_rows, part = self.postings[lexeme]
                scores[posting_rows] += keyword.weights[lexeme] * part
            out[i] = np.where(known, scores[rows], 0.0)
        return out

    def dense(self, vectors: Sequence[np.ndarray], *, limit: int, tool_filter: ToolFilter) -> list[list[Candidate]]:
        """For each query vector, the ``limit`` tools of highest cosine (exact) the filter lets through."""
        if not len(vectors):
            return []
        if self.vectors.shape[1] != len(vectors[0]):  # nothing embedded by this model yet
            return [[] for _ in vectors]
        return self._nearest(self.vectors, self.mask(tool_filter) & self.embedded, vectors, limit)

    def sentence_dense(self, vectors: Sequence[np.ndarray], *, limit: int,
                       tool_filter: ToolFilter) -> list[list[Candidate]]:
        """For each static sentence vector, the ``limit`` docs of highest cosine (exact)."""
        if not len(vectors):
            return []
        return self._nearest(self.sentence_vectors, self.mask(tool_filter) & self.has_sentence_vector,
                             vectors, limit)

    def _nearest(self, matrix: np.ndarray, eligible: np.ndarray, vectors: Sequence[np.ndarray],
                 limit: int) -> list[list[Candidate]]:
        # rows are L2-normalised; one product for all the query vectors reads the matrix once
        sims = np.ascontiguousarray((matrix @ np.asarray(vectors, dtype=np.float32).T).T)
        return [self._candidates(column, eligible, limit, False) for column in sims]


def build(model: str) -> ToolIndex | None:
    """Read the whole index in one snapshot (None when there is no generation to tie it to, or
    when the caller's transaction has changed the index itself)."""
    nested = connection.in_atomic_block  # then the caller's transaction is the snapshot
    with transaction.atomic():
        with connection.cursor() as cursor:
            if not nested:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT generation, current_setting('retrieval.pending', true) = '1' "
                           "FROM retrieval_index_state WHERE id = 1")
            row = cursor.fetchone()
            if row is None or row[1]:  # (a transaction's own uncommitted changes are no generation)
                return None
            generation = row[0]
            n_docs, avgdl = collection_stats_read()
            cursor.execute("SELECT 'vector'::regtype::oid")
            vector_oid = cursor.fetchone()[0]
        with psycopg.Cursor(connection.connection) as raw:
            raw.adapters.register_loader(vector_oid, _RawBytes)
            raw.execute("SELECT t.id, t.name, t.is_active, t.is_system, t.risk, "
                        "(t.embedding IS NOT NULL AND t.embedding_model = %s), t.embedding, "
                        "CASE WHEN d.sentence_model = %s THEN d.sentence_vector END "
                        "FROM tools t LEFT JOIN retrieval_tool_docs d ON d.tool_id = t.id ORDER BY t.id",
                        [model, get_sentence_embedder().name], binary=True)
            tools = raw.fetchall()
            raw.execute("SELECT lexeme, array_agg(tool_id), array_agg(tf), array_agg(doc_length) "
                        "FROM retrieval_tool_terms GROUP BY lexeme", binary=True)
            terms = raw.fetchall()
    n = len(tools)
    ids = np.fromiter((t[0] for t in tools), dtype=np.int64, count=n)
    dim = next(((len(t[6]) - 4) // 4 for t in tools if t[5]), 0)  # 0: nothing embedded by ``model`` yet
    vectors = np.zeros((n, dim), dtype=np.float32)
    sentence_vectors = np.zeros((n, SENTENCE_DIMENSIONS), dtype=np.float32)
    for row, t in enumerate(tools):
        if t[5]:  # binary vector: int16 dim, int16 unused, dim big-endian float32
            vectors[row] = np.frombuffer(t[6], dtype=">f4", offset=4)
        if t[7] is not None:
            sentence_vectors[row] = np.frombuffer(t[7], dtype=">f4", offset=4)
    risk_of = {str(r): i for i, r in enumerate(RISK_ORDER)}
    c0, c1 = BM25_K1 * (1 - BM25_B), BM25_K1 * BM25_B / avgdl
    postings = {}
    for lexeme, tool_ids, tfs, lengths in terms:
        rows = np.searchsorted(ids, np.asarray(tool_ids, dtype=np.int64))
        tf = np.asarray(tfs, dtype=np.float64)
        postings[lexeme] = (rows, tf / (tf + c0 + c1 * np.asarray(lengths, dtype=np.float64)))
    return ToolIndex(
        generation=generation, model=model, ids=ids, names=[t[1] for t in tools],
        active=np.array([t[2] for t in tools], dtype=bool), system=np.array([t[3] for t in tools], dtype=bool),
        risk=np.array([risk_of.get(t[4], len(RISK_ORDER)) for t in tools], dtype=np.int8),
        embedded=np.array([t[5] for t in tools], dtype=bool), vectors=vectors,
        has_sentence_vector=np.array([t[7] is not None for t in tools], dtype=bool),
        sentence_vectors=sentence_vectors, postings=postings,
        n_docs=n_docs, avgdl=avgdl,
    )


_current: ToolIndex | None = None
_state_lock = threading.Lock()
_building: threading.Thread | None = None
_last_start = 0.0


def current(generation: int | None, model: str) -> ToolIndex | None:
    """The in-memory index if it is exactly ``generation`` of ``model``'s; else None, and a
    rebuild is started in the background (SQL serves meanwhile)."""
    index = _current
    if generation is None:
        return None
    if index is not None and index.generation == generation and index.model == model:
        return index
    _start_rebuild(model)
    return None


def _start_rebuild(model: str) -> None:
    global _building, _last_start
    with _state_lock:
        now = time.monotonic()
        if (_building is not None and _building.is_alive()) or now - _last_start < REBUILD_INTERVAL_S:
            return
        _last_start = now
        _building = threading.Thread(target=_rebuild, args=(model,), name="tool-index-build", daemon=True)
        _building.start()


def _rebuild(model: str) -> None:
    global _current
    try:
        index = build(model)
        with _state_lock:  # a slower build of an older generation never replaces a newer copy
            if index is not None and (_current is None or _current.model != model
                                      or index.generation >= _current.generation):
                _current = index
    except Exception:  # search keeps working in SQL; the next stale search tries again
        logger.exception("building the in-memory tool index failed")
    finally:
        connections.close_all()  # this thread's connection only


def refresh(model: str) -> ToolIndex | None:
    """Build now, on the caller's thread (benchmarks, warm-up); the index is used from now on."""
    global _current
    _current = build(model)
    return _current


def wait(timeout: float | None = None) -> None:
    """Block until a background rebuild, if one runs, is done (tests, orderly shutdown)."""
    building = _building
    if building is not None:
        building.join(timeout)


def forget() -> None:
    global _current
    _current = None
