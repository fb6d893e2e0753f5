"""The text a tool is indexed by, for the dense and the keyword side alike.

Generic on purpose: the tool name split into words (``getWeatherForecast``,
``weather.get_forecast`` → ``get weather forecast``), the description, then the
parameters' names (split the same way) with their descriptions and the values an
``enum`` allows (``unit: … (one of: celsius, fahrenheit)``: what a request names
is often a choice, "an IMAX showing", "a music event"), walking nested object
schemas a little, one line each. The keyword side weighs the lines apart
(BM25F: ``NAME_WEIGHT`` …). Nothing here knows about any particular data set.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from typing import Any

# camelCase / PascalCase / ACRONYMWord / digit boundaries, then any non-alphanumeric run.
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")
_SPACES = re.compile(r"\s+")
MAX_PARAMETERS = 32  # a schema with hundreds of properties should not drown the description
MAX_DEPTH = 2
PARAMETERS_PREFIX = "Parameters: "  # starts the parameters' line of a doc

# BM25F field weights of the keyword side: a term counts this many times in its doc's term
# frequency and length, by the line it is on (the first: the name; one that starts with
# ``PARAMETERS_PREFIX``: the parameters; any other: the description). A word of the name or the
# description says more about what a tool does than one of a parameter's documentation. Chosen
# on a plateau: 2/2/1, 3/2/1 and 4/2/1 all gave +0.4 to +0.8 Recall@10 and nDCG@10 on both
# development sets over 1/1/1 (``bench/tool_retrieval.py``).
NAME_WEIGHT, DESCRIPTION_WEIGHT, PARAMETERS_WEIGHT = 3, 2, 1


def split_identifier(identifier: str) -> str:
    """``get_userProfile.v2`` → ``get user profile v 2`` (lower case words)."""
    spaced = _CAMEL.sub(" ", identifier or "")
    return " ".join(_NON_WORD.sub(" ", spaced).lower().split())


def _clean(text: Any) -> str:
    return _SPACES.sub(" ", str(text or "")).strip()


MAX_CHOICES = 32  # an enum of hundreds of codes should not drown its parameter either


def _choices(prop: dict) -> str:
    """``(one of: a, b)`` for a parameter (or its array's items) limited to an enum of scalars."""
    values = prop.get("enum")
    if not isinstance(values, list):
        items = prop.get("items")
        values = items.get("enum") if isinstance(items, dict) else None
    if not isinstance(values, list):
        return ""
    words = [_clean(v) for v in values[:MAX_CHOICES] if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    words = [w for w in words if w]
    return f"(one of: {', '.join(words)})" if words else ""


def _parameter_lines(schema: Any, depth: int = 0) -> list[str]:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return []
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        items = schema.get("items")
        return _parameter_lines(items, depth + 1) if isinstance(items, dict) else []
    lines: list[str] = []
    for name, prop in list(properties.items())[:MAX_PARAMETERS]:
        prop = prop if isinstance(prop, dict) else {}
        words = split_identifier(str(name))
        description = " ".join(p for p in (_clean(prop.get("description") or prop.get("title")), _choices(prop)) if p)
        lines.append(f"{words}: {description}" if description else words)
        lines.extend(_parameter_lines(prop, depth + 1))
    return lines


def tool_text(*, name: str, description: str, parameters: dict[str, Any] | None) -> str:
    """One document per tool: name words, description, parameter names and descriptions."""
    parts = [split_identifier(name), _clean(description)]
    lines = _parameter_lines(parameters or {})
    if lines:
        parts.append(PARAMETERS_PREFIX + "; ".join(lines))
    return "\n".join(p for p in parts if p)


def tool_views(*, name: str, description: str, parameters: dict[str, Any] | None) -> list[str]:
    """The texts each of a tool's vectors (the model's and the static one) is the mean of: the whole
    doc (``tool_text``; always first) and what the tool does, its name and description alone (when
    it has parameter lines to leave out).

    The model reads at most 256 tokens, and a doc's parameter lines, often most of it, pull its
    vector toward their own words (ids, units, formats); the short view keeps the tool's purpose
    in the vector. The mean (normalised) is still one vector per tool, so search costs the same.
    Hybrid Recall@5 / Recall@10 / nDCG@10 (``bench/tool_retrieval.py``): BFCL dev 89.4 / 94.1 /
    81.0 before, 90.0 / 93.9 / 81.0 with the model's vectors made so, 90.5 / 94.2 / 81.3 with the
    static ones too; Seal-Tools dev 95.4 / 97.7 / 96.1, 95.5 / 97.7 / 96.2, 95.6 / 97.8 / 96.4.
    The model alone does slightly worse with it (BFCL 83.2 to 82.8): the gain is in the fusion,
    where BM25F already reads the parameters. Weights 2:1 did worse on both sets and 1:2 traded
    BFCL for Seal-Tools, so the two views weigh the same.
    """
    whole = tool_text(name=name, description=description, parameters=parameters)
    summary = "\n".join(p for p in (split_identifier(name), _clean(description)) if p)
    return [whole, summary] if summary and summary != whole else [whole]


# What a stored tool vector is made of (``tool_views`` and their mean); part of its
# ``embedded_hash``, so changing it here re-embeds every tool's model vector on the next
# reindex. The static sentence vectors carry no such mark: a change to ``tool_views`` also
# needs a migration that rewrites them, as ``retrieval/migrations/0008`` does.
EMBEDDING_RECIPE = "views-mean-2"


def embedding_digest(doc_hash: str) -> str:
    """The ``embedded_hash`` of a vector made now from the doc whose text hash is ``doc_hash``."""
    return text_hash(f"{EMBEDDING_RECIPE}:{doc_hash}")


def text_hash(text: str) -> str:
    """Short stable fingerprint of an indexed text (detects what must be re-embedded)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# a.b / a_b (letters on both sides of each dot or underscore), camelCase, PascalCase of 2+ words
_IDENTIFIER = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)+\b|\b[a-z][a-z0-9]*(?:[A-Z][a-z0-9]+)+\b"
                         r"|\b(?:[A-Z][a-z0-9]+){2,}\b")


def keyword_text(query: str) -> str:
    """The query for the keyword side: each identifier in it (``weather.get_forecast``,
    ``getWeather``) also as its words, as tool names are indexed; PostgreSQL's parser would keep
    ``weather.get_forecast`` or ``getweath`` whole, matching no tool's words."""
    words = [split_identifier(m.group()) for m in _IDENTIFIER.finditer(query or "")]
    return " ".join([query, *words]) if words else query


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
MAX_QUERY_PARTS = 8
MIN_PART_WORDS = 3


def query_parts(query: str) -> list[str]:
    """The sentences of a multi-sentence query (each of at least 3 words), else ``[]``.

    A request or an agent's step often asks for several things at once; one
    vector for the whole text blurs them, so the dense side also searches with
    each sentence and keeps a tool's best match. A request of more sentences
    than ``MAX_QUERY_PARTS`` is cut into that many runs of consecutive ones, so
    an ask at its end still has a part of its own to match.
    """
    parts = [p.strip() for p in _SENTENCE_END.split(query or "") if len(p.split()) >= MIN_PART_WORDS]
    if len(parts) > MAX_QUERY_PARTS:
        bounds = [round(i * len(parts) / MAX_QUERY_PARTS) for i in range(MAX_QUERY_PARTS + 1)]
        parts = [" ".join(parts[a:b]) for a, b in itertools.pairwise(bounds)]
    return parts if len(parts) > 1 else []
