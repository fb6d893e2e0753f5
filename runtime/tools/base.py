"""The tools contract: a tool is a pydantic model (its arguments) with ``async __call__(ctx)``.

Dependencies reach a tool only through ``ToolContext`` (session id, counters,
sources, LLM client, HTTP client, search provider, session store, clock): no
globals, no settings reads. A tool ends the run by calling ``ctx.finish`` or
``ctx.ask_user``; everything else it returns is a string fed back to the model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import httpx

    from runtime.llm import LLMClient
    from runtime.tools.search import SearchProvider


class ToolError(Exception):
    """A tool failed in a way the model should hear about (recorded, returned as the result)."""


@dataclass
class SourceRef:
    number: int
    url: str
    title: str = ""
    snippet: str = ""
    full_content: str = ""


class SessionStore(Protocol):
    """What tools may persist; implemented over sessions_app services."""

    async def save_sources(self, session_id: str, sources: list[SourceRef]) -> None: ...

    async def save_artifact(self, session_id: str, *, name: str, kind: str, content: str, metadata: dict) -> int: ...


@dataclass
class Outcome:
    """Set by a tool that ends the step loop: ``finish`` or ``ask_user``."""

    kind: str  # "finish" | "ask_user"
    text: str
    status: str = "completed"  # for finish: completed | failed
    questions: list[str] = field(default_factory=list)


@dataclass
class ToolContext:
    session_id: str
    task: str
    store: SessionStore
    llm: LLMClient | None = None
    http: httpx.AsyncClient | None = None
    search: SearchProvider | None = None
    clock: Any = field(default=lambda: dt.datetime.now(dt.timezone.utc))
    iteration: int = 0
    searches_used: int = 0
    clarifications_used: int = 0
    tool_counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, SourceRef] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    current_reasoning: dict[str, Any] | None = None
    outcome: Outcome | None = None
    max_search_results: int = 10
    max_page_chars: int = 20_000
    allow_private_fetch: bool = False  # HTTP_TOOL_ALLOW_PRIVATE: pages on private/loopback addresses
    extra: dict[str, Any] = field(default_factory=dict)

    def add_source(self, url: str, title: str = "", snippet: str = "") -> SourceRef:
        """Register a source once per URL; numbers run 1, 2, 3… in order of discovery."""
        ref = self.sources.get(url)
        if ref is None:
            ref = SourceRef(number=len(self.sources) + 1, url=url, title=title, snippet=snippet)
            self.sources[url] = ref
        return ref

    def finish(self, answer: str, *, status: str = "completed") -> None:
        self.outcome = Outcome(kind="finish", text=answer, status=status)

    def ask_user(self, questions: list[str], text: str) -> None:
        self.outcome = Outcome(kind="ask_user", text=text, questions=list(questions))


class BaseTool(BaseModel):
    """Base of python tools. Subclasses declare their arguments as pydantic fields."""

    model_config = ConfigDict(extra="forbid")

    tool_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    is_system: ClassVar[bool] = False
    risk: ClassVar[str] = "low"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("tool_name"):
            cls.tool_name = _snake(cls.__name__)
        if not cls.__dict__.get("description"):
            cls.description = (cls.__doc__ or "").strip()

    async def __call__(self, ctx: ToolContext) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def parameters_schema(cls) -> dict[str, Any]:
        """JSON Schema of the arguments (what the catalog stores and the LLM sees)."""
        schema = cls.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
