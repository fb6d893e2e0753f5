"""A python tool for the hot-load tests: created in the catalog at runtime, never registered by code.

Served with ``TOOL_ENTRYPOINT_ALLOWLIST`` naming this module.
"""

from pydantic import Field

from runtime.tools.base import BaseTool, ToolContext


class EchoTool(BaseTool):
    """Repeats the given text back, with the session's iteration."""

    text: str = Field(description="Text to repeat", min_length=1, max_length=500)

    async def __call__(self, ctx: ToolContext) -> str:
        return f"echo #{ctx.iteration}: {self.text}"
