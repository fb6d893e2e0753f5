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


def with_sentences(whole: dict[int, float], sentences: list[dict[int, float]]) -> dict[int, float]:
    """The whole query's fused scores averaged with each tool's best sentence score."""
    if not sentences:
        return whole
    best: dict[int, float] = {}
    for scores in sentences:
        for tool_id, score in scores.items():
            best[tool_id] = max(best.get(tool_id, 0.0), score)
    return {
        tool_id: (1 - SENTENCE_WEIGHT) * whole.get(tool_id, 0.0) + SENTENCE_WEIGHT * best.get(tool_id, 0.0)
        for tool_id in whole.keys() | best.keys()
    }


def ranked(scores: dict[int, float], limit: int) -> list[tuple[int, float]]:
    """Best first (ties by id), at most ``limit``."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
