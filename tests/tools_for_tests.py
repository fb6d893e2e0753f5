"""Python tools that exist only for tests (served with ``TOOL_ENTRYPOINT_ALLOWLIST`` naming this module)."""

from pydantic import Field

from runtime.tools.base import BaseTool, ToolContext


class ExplodingTool(BaseTool):
    """Inspects a target. Always raises: a stand-in for a buggy tool."""

    tool_name = "exploding_tool"

    target: str = Field(description="What to inspect", min_length=1, max_length=200)

    async def __call__(self, ctx: ToolContext) -> str:
        raise RuntimeError(f"boom while inspecting {self.target}")
