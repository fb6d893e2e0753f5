"""Project-level views: health check."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


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
