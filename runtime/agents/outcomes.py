"""What one agent step (or a whole run) ends with, dispatched with ``match``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Continue:
    pass


@dataclass(frozen=True)
class WaitForUser:
    questions: list[str]
    text: str


@dataclass(frozen=True)
class Finish:
    answer: str
    status: str = "completed"  # completed | failed
    reason: str = ""  # why a run was ended by a limit or rule


StepOutcome = Continue | WaitForUser | Finish


@dataclass
class Action:
    """The tool call an agent selected for this step."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""


@dataclass
class OfferedTools:
    """The tools one step may use, and why others were left out (for logs and metrics)."""

    names: list[str]
    schemas: list[dict[str, Any]]
    removed: dict[str, str] = field(default_factory=dict)
    schema_tokens: int = 0

    def only(self, name: str) -> OfferedTools:
        """Just ``name`` (one of ``names``): what a step forced to that tool may call."""
        schemas = [s for s in self.schemas if s["function"]["name"] == name]
        return OfferedTools(names=[name], schemas=schemas, removed=self.removed,
                            schema_tokens=len(json.dumps(schemas)) // 4)
