from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from platform_site.views import health
from runtime.apis import ModelsApi
from sessions_app.apis import AgentsListApi, AgentStateApi

urlpatterns = [
    path("health", health, name="health"),
    path("v1/models", ModelsApi.as_view(), name="models"),
    path("agents", AgentsListApi.as_view(), name="agents"),
    path("agents/<uuid:session_id>/state", AgentStateApi.as_view(), name="agent-state"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Admin API routes come before the Django admin UI mounted at /admin/.
    path("admin/", admin.site.urls),
]
