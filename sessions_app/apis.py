"""/agents monitoring endpoints (chat or admin keys): a chat key sees the sessions it started, an
admin key all of them."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import IsApiKey
from sessions_app.selectors import SessionView, session_get_for, sessions_active


def state_payload(view: SessionView) -> dict:
    return {
        "session_id": str(view.id),
        "template": view.template,
        "version": view.version,
        "instance_id": str(view.instance_id) if view.instance_id else None,
        "parent_id": str(view.parent_id) if view.parent_id else None,
        "depth": view.depth,
        "state": view.state,
        "stage": view.stage,
        "task": view.task,
        "iteration": view.iteration,
        "searches_used": view.searches_used,
        "clarifications_used": view.clarifications_used,
        "tool_calls": view.tool_calls,
        "usage": {"prompt_tokens": view.prompt_tokens, "completion_tokens": view.completion_tokens},
        "current_step_reasoning": view.current_step_reasoning,
        "execution_result": view.execution_result,
        "error": view.error,
        "routing": view.routing,
        "context": view.context,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "finished_at": view.finished_at,
    }


class SessionStateSerializer(serializers.Serializer):
    """Documentation of the /agents/{id}/state shape."""


    session_id = serializers.UUIDField()
    template = serializers.CharField()
    version = serializers.IntegerField()
    instance_id = serializers.UUIDField(allow_null=True)
    state = serializers.CharField()
    iteration = serializers.IntegerField()
    searches_used = serializers.IntegerField()
    clarifications_used = serializers.IntegerField()
    current_step_reasoning = serializers.JSONField(allow_null=True)
    execution_result = serializers.CharField()
    routing = serializers.JSONField(allow_null=True)


class AgentsListApi(APIView):
    permission_classes = [IsApiKey]

    @extend_schema(responses=inline_serializer("AgentsList", {"agents": SessionStateSerializer(many=True)}))
    def get(self, request):
        return Response({"agents": [state_payload(v) for v in sessions_active(principal=request.user)]})


class AgentStateApi(APIView):
    permission_classes = [IsApiKey]

    @extend_schema(responses=SessionStateSerializer)
    def get(self, request, session_id):
        return Response(state_payload(session_get_for(session_id=session_id, principal=request.user)))
