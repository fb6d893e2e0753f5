"""The router (``model="router"``): picks the template for a request.

Decision: the agent directory ranks templates for the request text. When the
best score is below ``min_score`` the configured default template serves it.
When the two best are within ``tie_margin`` of each other and the LLM tie-break
is enabled, the LLM chooses between the close candidates (structured output);
otherwise the best score wins. The choice, its score, the method and the
candidates are recorded on the session.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from runtime.db import db
from runtime.llm import LLMClient, LLMError

logger = logging.getLogger("runtime.router")
ROUTER_MODEL = "router"


@dataclass(frozen=True)
class RouterSettings:
    default_template: str
    min_score: float
    tie_margin: float
    llm_tiebreak: bool


@dataclass(frozen=True)
class RouteChoice:
    template: str
    score: float
    method: str  # directory | default | llm_tiebreak
    candidates: tuple[tuple[str, float], ...]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["candidates"] = [{"template": t, "score": s} for t, s in self.candidates]
        return data


def _search(text: str):
    from retrieval.directory import directory_search

    return directory_search(query=text, top_k=5)


async def route(text: str, *, settings: RouterSettings, llm: LLMClient | None) -> RouteChoice:
    hits = await db(_search)(text)
    candidates = tuple((h.template, h.score) for h in hits)
    if not hits or hits[0].score < settings.min_score:
        best = hits[0].score if hits else 0.0
        return RouteChoice(settings.default_template, best, "default", candidates)
    close = [h for h in hits if hits[0].score - h.score <= settings.tie_margin]
    if len(close) > 1 and settings.llm_tiebreak and llm is not None:
        picked = await _tiebreak(text, close, llm)
        if picked is not None:
            return RouteChoice(picked.template, picked.score, "llm_tiebreak", candidates)
    return RouteChoice(hits[0].template, hits[0].score, "directory", candidates)


async def _tiebreak(text: str, close, llm: LLMClient):
    names = [h.template for h in close]
    options = "\n".join(f"- {h.template}: {h.description}" for h in close)
    schema = {"type": "object", "properties": {"template": {"type": "string", "enum": names}},
              "required": ["template"], "additionalProperties": False}
    messages = [
        {"role": "system", "content": "Pick the agent best suited to the user's request. Agents:\n" + options},
        {"role": "user", "content": text},
    ]
    try:
        reply = await llm.complete(messages, response_format={
            "type": "json_schema", "json_schema": {"name": "route", "schema": schema}})
        choice = json.loads(reply.content or "{}").get("template")
    except (LLMError, ValueError) as exc:
        logger.warning("router tie-break failed (%s); using the best score", exc)
        return None
    return next((h for h in close if h.template == choice), None)
