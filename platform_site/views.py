"""Project-level views: health check, OpenAI-shaped 404 on the API prefixes."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from platform_site.errors import error_body

API_PREFIXES = ("/v1/", "/agents/")


@require_GET
def health(request):
    """200 when the database answers, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # the database is down: say so, do not raise
        body = {"status": "error", "database": "unavailable", "detail": type(exc).__name__}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def not_found(request, exception=None):
    """``handler404``: OpenAI-shaped JSON under the API prefixes (clients parse it), Django's page elsewhere."""
    if request.path.startswith(API_PREFIXES):
        message = f"No route {request.method} {request.path}"
        return JsonResponse(error_body(message, type="invalid_request_error", code="not_found"), status=404)
    return page_not_found(request, exception)


_collector_registered = False


def metrics(request):
    """Prometheus metrics of this process (admin key unless METRICS_PUBLIC)."""
    global _collector_registered
    from django.conf import settings
    from django.http import HttpResponse
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    from access.selectors import principal_from_header
    from platform_site.errors import PlatformError
    from platform_site.observability import SessionStateCollector

    if not settings.METRICS_PUBLIC:
        try:
            principal_from_header(request.headers.get("Authorization"), require_admin=True)
        except PlatformError as exc:
            body = error_body(exc.message, type=exc.type, code=exc.code)
            return JsonResponse(body, status=exc.http_status)
    if not _collector_registered:
        REGISTRY.register(SessionStateCollector())
        _collector_registered = True
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
