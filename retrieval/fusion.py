"""Score fusion of the dense and keyword candidate lists (pure functions).

Each list is min-max normalised within itself (its best 1.0, its last candidate
0.0) and the two are added with equal weights: a convex combination of
normalised scores, which, unlike reciprocal rank fusion, keeps how far apart
the scores are. A request of several sentences is also fused sentence by
sentence (each sentence's dense hits with its own keyword scores); a tool keeps
its best sentence, and that score is averaged with the whole query's, so a tool
that serves one ask well is not drowned by the words of the other asks.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from retrieval.selectors import Candidate

DENSE_WEIGHT = 0.5  # equal weights: not tuned per data set
SENTENCE_WEIGHT = 0.5  # whole query vs its best sentence, equal too


def normalised(candidates: list[Candidate]) -> dict[int, float]:
    """Min-max within the list (best first): best 1.0, the last candidate 0.0."""
    if not candidates:
        return {}
    top, bottom = candidates[0].score, candidates[-1].score
    span = top - bottom
    return {c.tool_id: (c.score - bottom) / span if span > 0 else 1.0 for c in candidates}


def fuse(dense: list[Candidate], keyword: list[Candidate], *, keyword_only: Iterable[int] = ()) -> dict[int, float]:
    """Fused score of every tool in either list; ``keyword_only`` tools (not embedded yet, the
    dense side could not see them) are scored by the keyword side alone."""
    dense_norm, keyword_norm = normalised(dense), normalised(keyword)
    unseen = set(keyword_only)
    return {
        tool_id: keyword_norm.get(tool_id, 0.0) if tool_id in unseen
        else DENSE_WEIGHT * dense_norm.get(tool_id, 0.0) + (1 - DENSE_WEIGHT) * keyword_norm.get(tool_id, 0.0)
        for tool_id in dense_norm.keys() | keyword_norm.keys()
    }


def _min_max(scores: np.ndarray) -> np.ndarray:
    """``normalised`` over an array ordered best first."""
    span = scores[0] - scores[-1]
    return (scores - scores[-1]) / span if span > 0 else np.ones(len(scores))


def best_sentence(tool_ids: np.ndarray, dense: list[list[Candidate]], keyword: np.ndarray, *,
                  limit: int) -> np.ndarray:
    """Each tool's best sentence score, over ``tool_ids`` (ascending): sentence i's dense hits
    (``dense[i]``) fused as ``fuse`` does with its best ``limit`` keyword scores (row i of
    ``keyword``, one column per tool, 0 where no term is shared)."""
    best = np.zeros(len(tool_ids))
    for hits, scores in zip(dense, keyword, strict=True):
        fused = np.zeros(len(tool_ids))
        if hits:
            where = np.searchsorted(tool_ids, [c.tool_id for c in hits])
            fused[where] = DENSE_WEIGHT * _min_max(np.array([c.score for c in hits]))
        found = np.flatnonzero(scores > 0)
        if len(found):
            found = found[np.lexsort((tool_ids[found], -scores[found]))][:limit]
            fused[found] += (1 - DENSE_WEIGHT) * _min_max(scores[found])
        np.maximum(best, fused, out=best)
    return best


def with_sentences(whole: dict[int, float], tool_ids: np.ndarray, best: np.ndarray) -> dict[int, float]:
    """The whole query's fused scores averaged with each tool's best sentence score (``best_sentence``)."""
    out = {tool_id: (1 - SENTENCE_WEIGHT) * score for tool_id, score in whole.items()}
    for tool_id, score in zip(tool_ids.tolist(), best.tolist(), strict=True):
        out[tool_id] = out.get(tool_id, 0.0) + SENTENCE_WEIGHT * score
    return out


def ranked(scores: dict[int, float], limit: int) -> list[tuple[int, float]]:
    """Best first (ties by id), at most ``limit``."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
