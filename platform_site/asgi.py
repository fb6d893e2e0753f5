"""ASGI entry point: Channels routes the OpenAI endpoint to its consumer, the rest to Django."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.base")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from runtime.routing import http_routes  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": URLRouter([*http_routes, re_path(r"", django_asgi_app)]),
    }
)


async def application(scope, receive, send):
    """The router, after starting this process's runtime upkeep (heartbeats, reaping) on first use:
    the first request of any kind (a load balancer's /health) starts it, not the first chat."""
    if scope["type"] == "http":
        from runtime.chat import get_runtime

        await get_runtime().ensure_started()
    await router(scope, receive, send)
