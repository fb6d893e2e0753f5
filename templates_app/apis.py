"""Admin API for agent templates (admin-scope key): create, list, get, new version, activate."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.openapi import error_responses
from templates_app.models import AgentKind, AgentTemplate, AgentTemplateVersion
from templates_app.selectors import template_get, template_version_get, templates_list
from templates_app.services import CONTENT_FIELDS, template_create, template_version_activate, template_version_create


class ContentFieldsSerializer(serializers.Serializer):
    """Template content; every field optional (defaults on create, unchanged on a new version)."""

    agent_kind = serializers.ChoiceField(choices=AgentKind.choices, required=False)
    prompt_pack = serializers.DictField(required=False)
    llm_config = serializers.DictField(required=False)
    execution_policy = serializers.DictField(required=False)
    tool_policy = serializers.DictField(required=False)
    rules = serializers.ListField(child=serializers.DictField(), required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=50)
    examples = serializers.ListField(child=serializers.CharField(max_length=2000), required=False, max_length=100)
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")

    def validate(self, attrs):
        # A misspelt field must not be dropped silently (the version would keep the old value).
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({field: "unknown template field" for field in unknown})
        return attrs


class TemplateCreateSerializer(ContentFieldsSerializer):
    name = serializers.RegexField(r"^[a-zA-Z0-9_.-]{1,100}$", max_length=100)


class VersionCreateSerializer(ContentFieldsSerializer):
    # A client may post the template's whole shape back, name included; a version cannot rename it.
    name = serializers.CharField(required=False, max_length=100, help_text="The template's own name, if given.")
    activate = serializers.BooleanField(required=False, default=False)


class ActivateSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class VersionOutputSerializer(serializers.ModelSerializer):
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = AgentTemplateVersion
        fields = ["id", "version", "is_active", *CONTENT_FIELDS, "note", "created_at"]

    def get_is_active(self, version: AgentTemplateVersion) -> bool:
        return version.template.active_version_id == version.pk


class TemplateOutputSerializer(serializers.ModelSerializer):
    version = serializers.SerializerMethodField(help_text="Number of the active version")
    active = serializers.SerializerMethodField()

    class Meta:
        model = AgentTemplate
        fields = ["id", "name", "is_active", "version", "active", "created_at", "updated_at"]

    def get_version(self, template: AgentTemplate) -> int | None:
        return template.active_version.version if template.active_version else None

    @extend_schema(exclude=True)
    def get_active(self, template: AgentTemplate) -> dict | None:
        return VersionOutputSerializer(template.active_version).data if template.active_version else None


class TemplateDetailSerializer(TemplateOutputSerializer):
    versions = serializers.SerializerMethodField()

    class Meta(TemplateOutputSerializer.Meta):
        fields = [*TemplateOutputSerializer.Meta.fields, "versions"]

    def get_versions(self, template: AgentTemplate) -> list[dict]:
        versions = template.versions.select_related("template").order_by("version")
        return VersionOutputSerializer(versions, many=True).data


def _content(validated: dict) -> tuple[dict, str]:
    note = validated.pop("note", "")
    return {k: v for k, v in validated.items() if k in CONTENT_FIELDS}, note


class TemplateListCreateApi(GenericAPIView):
    serializer_class = TemplateOutputSerializer

    def get_queryset(self):
        return templates_list()

    @extend_schema(responses=TemplateOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TemplateOutputSerializer(page, many=True).data)

    @extend_schema(request=TemplateCreateSerializer, responses={201: TemplateDetailSerializer, **error_responses(409)})
    def post(self, request):
        data = TemplateCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data.pop("name")
        content, note = _content(data.validated_data)
        version = template_create(name=name, content=content, note=note)
        return Response(TemplateDetailSerializer(template_get(ref=version.template_id)).data,
                        status=status.HTTP_201_CREATED)


class TemplateDetailApi(APIView):
    @extend_schema(responses=TemplateDetailSerializer)
    def get(self, request, ref: str):
        return Response(TemplateDetailSerializer(template_get(ref=ref)).data)


class TemplateVersionCreateApi(APIView):
    @extend_schema(request=VersionCreateSerializer, responses={201: VersionOutputSerializer})
    def post(self, request, ref: str):
        template = template_get(ref=ref)
        data = VersionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data.pop("name", template.name) != template.name:
            raise serializers.ValidationError({"name": f"a version cannot rename its template {template.name!r}"})
        activate = data.validated_data.pop("activate", False)
        content, note = _content(data.validated_data)
        version = template_version_create(template=template, changes=content, note=note, activate=activate)
        version.template.refresh_from_db()
        return Response(VersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class TemplateActivateApi(APIView):
    @extend_schema(request=ActivateSerializer, responses=TemplateDetailSerializer)
    def post(self, request, ref: str):
        template = template_get(ref=ref)
        data = ActivateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template_version_activate(version=template_version_get(template=template, version=data.validated_data["version"]))
        return Response(TemplateDetailSerializer(template_get(ref=template.pk)).data)
