from platform_site.errors import Conflict, InvalidRequest, NotFound


class ToolNotFound(NotFound):
    code = "tool_not_found"
    message = "No such tool"


class ToolInvalid(InvalidRequest):
    code = "invalid_tool"
    message = "Invalid tool definition"


class ToolExists(Conflict):
    code = "tool_exists"
    message = "A tool with this name exists"
