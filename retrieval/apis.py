"""Search endpoints of the admin API: the agent directory (and tool search)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_site.openapi import error_responses
from retrieval.directory import directory_search


class SearchRequestSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=4000)
    top_k = serializers.IntegerField(min_value=1, max_value=100, default=5)


class TemplateSearchApi(APIView):
    """POST /admin/templates/search: templates ranked by capability for a request."""

    @extend_schema(
        request=SearchRequestSerializer,
        responses=inline_serializer("TemplateSearchResults", {"results": serializers.ListField(
            child=inline_serializer("TemplateHit", {
                "template": serializers.CharField(), "version": serializers.IntegerField(),
                "score": serializers.FloatField(), "description": serializers.CharField()}))}),
    )
    def post(self, request):
        data = SearchRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hits = directory_search(query=data.validated_data["query"], top_k=data.validated_data["top_k"])
        return Response({"results": [h.__dict__ for h in hits]})


class ToolSearchRequestSerializer(SearchRequestSerializer):
    top_k = serializers.IntegerField(min_value=1, max_value=200, default=10)
    template = serializers.CharField(max_length=100, required=False,
                                     help_text="Apply this template's policy and rules (and add its pinned tools)")


class ToolSearchApi(APIView):
    """POST /admin/tools/search: hybrid tool search, optionally as a template's step would see it."""

    @extend_schema(
        request=ToolSearchRequestSerializer,
        responses={200: inline_serializer("ToolSearchResults", {
            "results": serializers.ListField(child=inline_serializer("ToolSearchHit", {
                "name": serializers.CharField(), "score": serializers.FloatField(),
                "source": serializers.CharField(), "dense_rank": serializers.IntegerField(allow_null=True),
                "keyword_rank": serializers.IntegerField(allow_null=True)})),
            "removed": serializers.DictField(child=serializers.CharField())}),
            **error_responses(404)},  # an unknown "template"
    )
    def post(self, request):
        from retrieval.toolsearch import tool_search_for_step
        from templates_app.selectors import template_spec_get

        data = ToolSearchRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data.get("template")
        template = template_spec_get(name=name) if name else None
        outcome = tool_search_for_step(query=data.validated_data["query"], template=template,
                                       top_k=data.validated_data["top_k"])
        return Response({"results": [r.__dict__ for r in outcome.results], "removed": outcome.removed})
