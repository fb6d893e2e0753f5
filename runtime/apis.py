"""GET /v1/models (served templates as OpenAI models) and GET /admin/instances."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import IsApiKey
from sessions_app.selectors import instances_list
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
        data.append({"id": "router", "object": "model", "created": 0, "owned_by": "agent-platform",
                     "description": "Picks the best agent template for each request (agent directory)."})
        return Response({"object": "list", "data": data})


class InstancesFilterSerializer(serializers.Serializer):
    include_stopped = serializers.BooleanField(required=False, default=False)


class InstancesApi(APIView):
    """GET /admin/instances: agent instances of every server process (admin key)."""

    @extend_schema(
        parameters=[InstancesFilterSerializer],
        responses=inline_serializer("Instances", {"instances": serializers.ListField(child=serializers.DictField())}),
    )
    def get(self, request):
        filters = InstancesFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return Response({"instances": instances_list(include_stopped=filters.validated_data["include_stopped"])})
