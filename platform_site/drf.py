"""DRF glue: platform errors and DRF's own exceptions as OpenAI-shaped JSON."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions as drf_exceptions
from rest_framework.pagination import LimitOffsetPagination
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


class Pagination(LimitOffsetPagination):
    """``limit``/``offset`` validated at the edge: integers (limit >= 1, offset >= 0) or a 400.

    DRF's own class ignores a malformed value and passes any size through, so
    ``?limit=10**40`` reached PostgreSQL as an out-of-range bigint (a 500). A limit
    above ``max_limit`` is served as ``max_limit``; an offset past the end gives no results.
    """

    max_limit = 500

    def _param(self, request, name: str, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        digits = raw.lstrip("0") or raw[:1]  # "000" is 0; "" is not a number
        value = None
        if digits.isascii() and digits.isdigit():
            value = 10**18 if len(digits) > 18 else int(digits)  # a huge number is just "very large"
        if value is None or value < minimum:
            raise drf_exceptions.ValidationError({name: [f"Must be an integer >= {minimum}."]})
        return value

    def get_limit(self, request):
        limit = self._param(request, self.limit_query_param, 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return self._param(request, self.offset_query_param, 0) or 0

    def get_schema_operation_parameters(self, view):
        limit, offset = super().get_schema_operation_parameters(view)
        limit["schema"] = {"type": "integer", "minimum": 1}
        limit["description"] = f"Number of results to return per page (at most {self.max_limit})."
        offset["schema"] = {"type": "integer", "minimum": 0}
        return [limit, offset]
