"""DRF glue: platform errors and DRF's own exceptions as OpenAI-shaped JSON."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from platform_site.errors import PlatformError, error_body, platform_error_body

_DRF_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def _drf_message(detail: Any) -> str:
    if isinstance(detail, dict):
        parts = [f"{key}: {_drf_message(value)}" for key, value in detail.items()]
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_drf_message(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler: platform and DRF errors as OpenAI-shaped JSON."""
    if isinstance(exc, PlatformError):
        return Response(platform_error_body(exc), status=exc.http_status)
    response = drf_default_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        response.status_code = 401
    status = response.status_code
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, drf_exceptions.ValidationError):
        code = "invalid_request"
        extra = {"fields": exc.detail} if isinstance(exc.detail, dict) else {}
    else:
        extra = {}
    response.data = error_body(
        _drf_message(getattr(exc, "detail", str(exc))),
        type=_DRF_TYPES.get(status, "server_error"),
        code=str(code),
        **extra,
    )
    return response
