"""GET /v1/models: the served templates as OpenAI models."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import IsApiKey
from templates_app.selectors import template_specs_served


class ModelsApi(APIView):
    permission_classes = [IsApiKey]

    @extend_schema(exclude=True)
    def get(self, request):
        data = [
            {
                "id": spec.name,
                "object": "model",
                "created": 0,
                "owned_by": "agent-platform",
                "version": spec.version,
                "agent_kind": spec.agent_kind,
                "description": spec.content.description,
            }
            for spec in template_specs_served()
        ]
        return Response({"object": "list", "data": data})
