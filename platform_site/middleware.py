"""Request size limit for the Django side (admin API): an OpenAI-shaped 413 before parsing."""

from django.conf import settings
from django.http import JsonResponse

from platform_site.errors import PayloadTooLarge, platform_error_body


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BYTES and (not request.path.startswith("/admin/") or _is_api(request.path)):
            exc = PayloadTooLarge(f"Request body is larger than {settings.MAX_REQUEST_BYTES} bytes")
            return JsonResponse(platform_error_body(exc), status=exc.http_status)
        return self.get_response(request)


def _is_api(path: str) -> bool:
    """Admin API routes (not the Django admin UI, whose own limit shows its own page)."""
    return path.startswith(("/admin/tools", "/admin/templates", "/admin/instances"))
