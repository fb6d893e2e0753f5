"""Score fusion of the dense and keyword candidate lists (pure functions).

Each list is min-max normalised within itself (its best 1.0, its last candidate
0.0) and the two are added with equal weights: a convex combination of
normalised scores, which, unlike reciprocal rank fusion, keeps how far apart
the scores are. A request of several sentences is also fused sentence by
sentence (each sentence's dense hits with its own keyword scores); a tool keeps
its best sentence, and that score is averaged with the whole query's, so a tool
that serves one ask well is not drowned by the words of the other asks.

When several sentences each clearly ask for a tool, the ranking also covers
them (``diversified``, after xQuAD's intent-aware greedy selection): once a
tool serves an ask, that ask's other matches weigh less, so a family of
near-identical tools for one ask cannot fill the whole top of the list.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from retrieval.selectors import Candidate

DENSE_WEIGHT = 0.5  # equal weights: not tuned per data set
SENTENCE_WEIGHT = 0.5  # whole query vs its best sentence, equal too
COVERAGE_WEIGHT = 0.5  # a diversified pick: its score vs the asks it serves that no pick served yet
ASK_SHARE = 0.5  # a sentence whose clearest match leads under half as far as the clearest sentence's is context


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


def sentence_scores(tool_ids: np.ndarray, dense: list[list[Candidate]], keyword: np.ndarray, *,
                    limit: int) -> np.ndarray:
    """Each sentence's fused score of each of ``tool_ids`` (ascending), one row per sentence:
    sentence i's dense hits (``dense[i]``) fused as ``fuse`` does with its best ``limit`` keyword
    scores (row i of ``keyword``, one column per tool, 0 where no term is shared). A tool's best
    sentence score is its column's maximum."""
    rows = np.zeros((len(dense), len(tool_ids)))
    for fused, hits, scores in zip(rows, dense, keyword, strict=True):
        if hits:
            where = np.searchsorted(tool_ids, [c.tool_id for c in hits])
            fused[where] = DENSE_WEIGHT * _min_max(np.array([c.score for c in hits]))
        found = np.flatnonzero(scores > 0)
        if len(found):
            found = found[np.lexsort((tool_ids[found], -scores[found]))][:limit]
            fused[found] += (1 - DENSE_WEIGHT) * _min_max(scores[found])
    return rows


def ask_weights(dense: list[list[Candidate]]) -> np.ndarray:
    """How clearly each sentence asks for a tool, summing to 1 (all 0 when under two do).

    A sentence's clarity is how far its best dense match leads the mean of its matches: an ask
    ("then rent a car in Rome") has one standing out, a sentence of context ("it's 2023 now",
    "can you help me with a few tasks?") matches everything about as weakly. Relative to the
    clearest sentence, so no threshold depends on the model's cosine scale; under ``ASK_SHARE`` of
    it a sentence weighs 0, and from there its weight grows to the clearest one's.
    """
    lead = np.array([hits[0].score - sum(c.score for c in hits) / len(hits) if hits else 0.0 for hits in dense])
    if not len(lead) or lead.max() <= 0:
        return np.zeros(len(lead))
    weights = np.clip((lead / lead.max() - ASK_SHARE) / (1 - ASK_SHARE), 0.0, 1.0)
    return weights / weights.sum() if np.count_nonzero(weights) >= 2 else np.zeros(len(lead))


def with_sentences(whole: dict[int, float], tool_ids: np.ndarray, best: np.ndarray) -> dict[int, float]:
    """The whole query's fused scores averaged with each tool's best sentence score (``best_sentence``)."""
    out = {tool_id: (1 - SENTENCE_WEIGHT) * score for tool_id, score in whole.items()}
    for tool_id, score in zip(tool_ids.tolist(), best.tolist(), strict=True):
        out[tool_id] = out.get(tool_id, 0.0) + SENTENCE_WEIGHT * score
    return out


def ranked(scores: dict[int, float], limit: int) -> list[tuple[int, float]]:
    """Best first (ties by id), at most ``limit``."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


def diversified(scores: dict[int, float], tool_ids: np.ndarray, sentences: np.ndarray, asks: np.ndarray,
                limit: int) -> list[tuple[int, float]]:
    """``ranked``, but covering the asks: picked greedily, each pick the tool with the best mix of
    its own score and the asks it serves (``sentences``, one row per sentence over ``tool_ids``)
    weighted by what no earlier pick served of them (``asks``: ``ask_weights``). A pick that serves
    an ask fully (score 1 in its row) leaves nothing of it. Without asks this is ``ranked``; the
    returned scores are the picks' mixes, best first like ``ranked``'s."""
    if not asks.any():
        return ranked(scores, limit)
    base = np.array([scores.get(t, 0.0) for t in tool_ids.tolist()])
    left = asks.astype(float)
    free = np.ones(len(tool_ids), dtype=bool)
    picks: list[tuple[int, float]] = []
    for _ in range(min(limit, len(tool_ids))):
        gain = np.where(free, (1 - COVERAGE_WEIGHT) * base + COVERAGE_WEIGHT * (left @ sentences), -np.inf)
        pick = int(np.argmax(gain))  # the first of equals: the lowest id, as in ``ranked``
        free[pick] = False
        picks.append((int(tool_ids[pick]), float(gain[pick])))
        left *= 1 - sentences[:, pick]
    return picks
