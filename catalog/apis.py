"""Admin API for tools (admin-scope key): list, create, get, patch, activate, deactivate."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.generics import GenericAPIView
from rest_framework.views import APIView

from catalog.models import RiskLevel, Tool, ToolKind
from catalog.schemas import tool_kind_infer
from catalog.selectors import tool_get, tools_filter
from catalog.services import tool_create, tool_set_active, tool_update
from platform_site.openapi import error_responses


class ToolInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=10_000)
    parameters = serializers.JSONField(required=False, default=dict)
    kind = serializers.ChoiceField(choices=ToolKind.choices, required=False)
    entrypoint = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    endpoint = serializers.JSONField(required=False, default=dict)
    target_template = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    risk = serializers.ChoiceField(choices=RiskLevel.choices, required=False, default=RiskLevel.LOW)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list, max_length=50)
    is_active = serializers.BooleanField(required=False, default=True)

    def validate(self, attrs):
        if "kind" not in attrs:  # the spec's shortcut: the fields given say what kind it is
            attrs["kind"] = tool_kind_infer(attrs)
        return attrs


class ToolPatchSerializer(ToolInputSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty

    def validate(self, attrs):
        return attrs


class ToolOutputSerializer(serializers.ModelSerializer):
    has_embedding = serializers.SerializerMethodField()

    class Meta:
        model = Tool
        fields = ["id", "name", "description", "kind", "entrypoint", "endpoint", "target_template",
                  "parameters", "risk", "tags", "is_active", "is_system", "revision", "embedding_model",
                  "has_embedding", "created_at", "updated_at"]

    def get_has_embedding(self, tool: Tool) -> bool:
        return tool.embedding is not None


class ToolFilterSerializer(serializers.Serializer):
    """Query filters of the tool list; a malformed one is a 400, not silently another filter."""

    tag = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Only tools with this tag")
    kind = serializers.ChoiceField(choices=ToolKind.choices, required=False)
    active = serializers.BooleanField(required=False)
    system = serializers.BooleanField(required=False)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Name or description contains")


class ToolListCreateApi(GenericAPIView):
    serializer_class = ToolOutputSerializer

    def get_queryset(self):
        filters = ToolFilterSerializer(data=self.request.query_params.dict())  # a QueryDict reads a missing bool as False
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        return tools_filter(
            tag=params.get("tag") or None, kind=params.get("kind") or None,
            active=params.get("active"), system=params.get("system"), q=params.get("q") or None,
        )

    @extend_schema(parameters=[ToolFilterSerializer], responses=ToolOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ToolOutputSerializer(page, many=True).data)

    @extend_schema(request=ToolInputSerializer, responses={201: ToolOutputSerializer, **error_responses(409)})
    def post(self, request):
        data = ToolInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tool = tool_create(**data.validated_data)
        return Response(ToolOutputSerializer(tool).data, status=status.HTTP_201_CREATED)


class ToolDetailApi(APIView):
    @extend_schema(responses=ToolOutputSerializer)
    def get(self, request, ref: str):
        return Response(ToolOutputSerializer(tool_get(ref=ref)).data)

    @extend_schema(request=ToolPatchSerializer, responses={200: ToolOutputSerializer, **error_responses(409)})
    def patch(self, request, ref: str):
        tool = tool_get(ref=ref)
        data = ToolPatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if data.validated_data:
            tool = tool_update(tool=tool, **data.validated_data)
        return Response(ToolOutputSerializer(tool).data)


class ToolActivateApi(APIView):
    active = True

    @extend_schema(request=None, responses=ToolOutputSerializer)
    def post(self, request, ref: str):
        tool = tool_set_active(tool=tool_get(ref=ref), active=self.active)
        return Response(ToolOutputSerializer(tool).data)


class ToolDeactivateApi(ToolActivateApi):
    active = False
