"""One error base for the platform and the mapping to OpenAI-shaped JSON.

Every app raises subclasses of ``PlatformError`` (in its own ``errors.py``);
``platform_site.drf.exception_handler`` (admin API) and ``platform_error_body``
(the Channels consumer) turn them into ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    code: str = "platform_error"
    http_status: int = 500
    type: str = "server_error"
    message: str = "Internal error"

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any) -> None:
        self.message = message or self.message
        if code is not None:
            self.code = code
        self.details = details
        super().__init__(self.message)


class InvalidRequest(PlatformError):
    code = "invalid_request"
    http_status = 400
    type = "invalid_request_error"
    message = "Invalid request"


class NotFound(PlatformError):
    code = "not_found"
    http_status = 404
    type = "invalid_request_error"
    message = "Not found"


class MethodNotAllowed(PlatformError):
    code = "method_not_allowed"
    http_status = 405
    type = "invalid_request_error"
    message = "Method not allowed"


class Conflict(PlatformError):
    code = "conflict"
    http_status = 409
    type = "invalid_request_error"
    message = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    message = "Illegal state transition"


class AuthenticationRequired(PlatformError):
    code = "invalid_api_key"
    http_status = 401
    type = "authentication_error"
    message = "A valid API key is required (Authorization: Bearer <key>)"


class PermissionDenied(PlatformError):
    code = "insufficient_scope"
    http_status = 403
    type = "permission_error"
    message = "This API key may not call this route"


class PayloadTooLarge(PlatformError):
    code = "payload_too_large"
    http_status = 413
    type = "invalid_request_error"
    message = "Request body is too large"


class RateLimited(PlatformError):
    code = "rate_limit_exceeded"
    http_status = 429
    type = "rate_limit_error"
    message = "Too many requests"


class Unavailable(PlatformError):
    code = "unavailable"
    http_status = 503
    type = "server_error"
    message = "No capacity to serve this request now"


def error_body(message: str, *, type: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code, **extra}}


def platform_error_body(exc: PlatformError) -> dict[str, Any]:
    return error_body(exc.message, type=exc.type, code=exc.code, **exc.details)
