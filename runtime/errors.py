from platform_site.errors import InvalidRequest, PlatformError, Unavailable


class PoolExhausted(Unavailable):
    code = "pool_exhausted"
    message = "All agent instances are busy; retry later"


class InvalidChatRequest(InvalidRequest):
    code = "invalid_request"


class UnsupportedParameter(InvalidRequest):
    code = "unsupported_parameter"


class UpstreamLLMError(PlatformError):
    """The run failed because the LLM could not be used (after retries)."""

    code = "llm_error"
    http_status = 502
    type = "upstream_error"
    message = "The LLM failed"


class SessionCancelled(PlatformError):
    """The run was cancelled (by POST /agents/{id}/cancel, possibly from another process)."""

    code = "session_cancelled"
    http_status = 409
    type = "invalid_request_error"
    message = "The session was cancelled"
