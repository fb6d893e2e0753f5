"""The agent directory: templates found by what they can do.

Each active template's active version is indexed as several texts — its
description (with tags) and each example request — embedded by a multilingual
model (Russian and English requests route alike) and kept in pgvector
(``DirectoryEntry``). A template's score for a query is the mean of its two best
entry similarities: one good example match is not enough on its own, and a
long description does not drown the examples.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from retrieval.embedders import get_embedder
from retrieval.models import DirectoryEntry
from retrieval.selectors import directory_nearest
from templates_app.models import AgentTemplate, AgentTemplateVersion

logger = logging.getLogger("retrieval.directory")
TOP_ENTRIES = 2
LEXICAL_WEIGHT = 0.05
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DirectoryHit:
    template: str
    version: int
    score: float
    description: str


def _texts(version: AgentTemplateVersion) -> list[str]:
    head = version.description.strip()
    if version.tags:
        head = f"{head} ({', '.join(version.tags)})" if head else ", ".join(version.tags)
    texts = [head] if head else []
    texts += [e.strip() for e in version.examples if isinstance(e, str) and e.strip()]
    return texts or [version.template.name.replace("_", " ")]


def directory_model() -> str:
    return settings.DIRECTORY_EMBEDDING_MODEL


@transaction.atomic
def directory_refresh(*, template_ids: list[int] | None = None) -> int:
    """(Re)index the active versions of ``template_ids`` (all when None); returns entries written."""
    model = directory_model()
    embedder = get_embedder(model)
    templates = AgentTemplate.objects.select_related("active_version").filter(active_version__isnull=False)
    if template_ids is not None:
        templates = templates.filter(pk__in=template_ids)
    written = 0
    for template in templates:
        version = template.active_version
        version.template = template
        current = list(DirectoryEntry.objects.filter(version=version, embedding_model=model)
                       .order_by("position").values_list("text", flat=True))
        texts = _texts(version)
        if current == texts:
            continue
        vectors = embedder.embed(texts)
        DirectoryEntry.objects.filter(version__template=template).delete()
        DirectoryEntry.objects.bulk_create([
            DirectoryEntry(version=version, position=i, text=t, embedding=v.tolist(), embedding_model=model)
            for i, (t, v) in enumerate(zip(texts, vectors))
        ])
        written += len(texts)
    return written


def _refresh_quietly(template_id: int) -> None:
    try:
        directory_refresh(template_ids=[template_id])
    except Exception:  # the previous entries stay; the next activation or reindex retries
        logger.exception("agent directory refresh of template %s failed", template_id)


def directory_refresh_on_commit(*, template_id: int) -> None:
    """Refresh one template's entries once the current transaction has committed.

    A template has a handful of texts (tens of milliseconds to embed), so this runs
    in the request; templates change rarely.
    """
    transaction.on_commit(lambda: _refresh_quietly(template_id))


def _stems(text: str) -> set[str]:
    """Crude language-neutral stems (first five letters of each word of 3+ letters): RU and EN alike."""
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) >= 3}


def _lexical(query: str, keywords: dict[int, set[str]]) -> dict[int, float]:
    """Share of the query's informative stems (IDF-weighted over templates) found in each template's texts."""
    stems = _stems(query)
    n = len(keywords)
    weights = {}
    for stem in stems:
        df = sum(stem in k for k in keywords.values())
        if df:
            weights[stem] = math.log((n + 1) / (df + 0.5))
    total = sum(weights.values())
    if total <= 0:
        return {t: 0.0 for t in keywords}
    return {t: sum(w for s, w in weights.items() if s in k) / total for t, k in keywords.items()}


def directory_search(*, query: str, top_k: int = 5) -> list[DirectoryHit]:
    """Templates ranked for ``query`` (active templates' active versions only).

    Score = mean of the two best entry similarities (dense, multilingual) plus a small
    lexical term (``LEXICAL_WEIGHT`` × the IDF-weighted share of query stems the template's
    texts contain), so a distinctive word such as "ресёрч" or "essay" counts.
    """
    model = directory_model()
    vector = get_embedder(model).embed_queries([query])[0]
    scores: dict[int, list[float]] = {}
    meta: dict[int, tuple[str, int, str]] = {}
    keywords: dict[int, set[str]] = {}
    for row in directory_nearest(vector=vector.tolist(), model=model, limit=400):
        scores.setdefault(row["template_id"], []).append(row["similarity"])
        meta[row["template_id"]] = (row["template"], row["version"], row["description"])
        keywords.setdefault(row["template_id"], set()).update(_stems(row["text"]))
    lexical = _lexical(query, keywords)
    hits = []
    for template_id, sims in scores.items():
        best = sorted(sims, reverse=True)[:TOP_ENTRIES]
        name, version, description = meta[template_id]
        score = sum(best) / len(best) + LEXICAL_WEIGHT * lexical[template_id]
        hits.append(DirectoryHit(template=name, version=version, score=round(score, 4), description=description))
    hits.sort(key=lambda h: -h.score)
    return hits[:top_k]
