"""HTTP routes served by Channels consumers (the streaming endpoints); the rest goes to Django."""

from django.urls import path, re_path

from runtime.consumers import (
    CancelConsumer,
    ChatCompletionsConsumer,
    ProvideClarificationConsumer,
)

SESSION = r"(?P<session_id>[0-9a-fA-F-]{32,36})"

http_routes = [
    path("v1/chat/completions", ChatCompletionsConsumer.as_asgi()),
    re_path(rf"^agents/{SESSION}/provide_clarification$", ProvideClarificationConsumer.as_asgi()),
    re_path(rf"^agents/{SESSION}/cancel$", CancelConsumer.as_asgi()),
]
