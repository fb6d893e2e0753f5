"""The frozen view of a tool that other apps (the runtime) work with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ToolSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    description: str
    kind: str
    parameters: dict[str, Any]
    entrypoint: str = ""
    endpoint: dict[str, Any] = {}
    target_template: str = ""
    risk: str = "low"
    tags: tuple[str, ...] = ()
    is_system: bool = False
    revision: int = 1

    def openai_schema(self) -> dict[str, Any]:
        """The tool as an entry of the OpenAI ``tools`` list."""
        parameters = self.parameters or {"type": "object", "properties": {}}
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }
