"""drf-spectacular post-processing: the OpenAI-shaped error responses of every operation.

The views declare their success bodies; the errors come from one place
(``platform_site.drf.exception_handler``) and have one shape, so the common ones are documented
here once instead of on every view: 400 where the operation takes a body or query parameters,
401 where it needs a key, 403 on the admin routes (a chat key), 404 where the path names an
object. A view adds the others it can answer with ``error_responses(409)``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "OpenAI-shaped error",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "fields": {"type": "object", "additionalProperties": True,
                           "description": "Per-field messages of a validation error"},
            },
            "required": ["message", "type", "code"],
        },
    },
    "required": ["error"],
}
DESCRIPTIONS = {
    "400": "Invalid request (bad JSON, or fields that do not validate)",
    "401": "No, unknown or revoked API key",
    "403": "The API key lacks the admin scope",
    "404": "No such object",
    "409": "Conflicts with the current state (e.g. the name is taken)",
}
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """``extend_schema(responses={200: X, **error_responses(409)})``: errors beyond the common ones."""
    return {code: OpenApiResponse(response=ERROR_REF, description=DESCRIPTIONS[str(code)]) for code in codes}


def _error_codes(path: str, operation: dict[str, Any]) -> list[str]:
    codes = []
    if "requestBody" in operation or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        codes.append("400")
    if operation.get("security"):
        codes.append("401")
        if path.startswith("/admin/"):
            codes.append("403")
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        codes.append("404")
    return codes


def document_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """``POSTPROCESSING_HOOKS`` entry: add the error responses a view does not declare itself."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code in _error_codes(path, operation):
                operation["responses"].setdefault(code, {
                    "description": DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": ERROR_REF}},
                })
    return result
