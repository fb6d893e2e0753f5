"""ASGI entry point: Channels routes the OpenAI endpoint to its consumer, the rest to Django."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings.base")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from runtime.routing import http_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter([*http_routes, re_path(r"", django_asgi_app)]),
    }
)
