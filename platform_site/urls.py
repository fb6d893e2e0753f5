from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from catalog.apis import (
    ToolActivateApi,
    ToolDeactivateApi,
    ToolDetailApi,
    ToolListCreateApi,
)
from platform_site.views import health, metrics
from retrieval.apis import TemplateSearchApi, ToolSearchApi
from runtime.apis import InstancesApi, ModelsApi
from sessions_app.apis import AgentsListApi, AgentStateApi
from templates_app.apis import (
    TemplateActivateApi,
    TemplateDetailApi,
    TemplateListCreateApi,
    TemplateVersionCreateApi,
)

admin_api = [
    path("admin/tools", ToolListCreateApi.as_view(), name="admin-tools"),
    path("admin/tools/search", ToolSearchApi.as_view(), name="admin-tools-search"),
    path("admin/tools/<str:ref>", ToolDetailApi.as_view(), name="admin-tool"),
    path("admin/tools/<str:ref>/activate", ToolActivateApi.as_view(), name="admin-tool-activate"),
    path("admin/tools/<str:ref>/deactivate", ToolDeactivateApi.as_view(), name="admin-tool-deactivate"),
    path("admin/templates", TemplateListCreateApi.as_view(), name="admin-templates"),
    path("admin/templates/search", TemplateSearchApi.as_view(), name="admin-templates-search"),
    path("admin/templates/<str:ref>", TemplateDetailApi.as_view(), name="admin-template"),
    path("admin/templates/<str:ref>/versions", TemplateVersionCreateApi.as_view(), name="admin-template-versions"),
    path("admin/templates/<str:ref>/activate", TemplateActivateApi.as_view(), name="admin-template-activate"),
    path("admin/instances", InstancesApi.as_view(), name="admin-instances"),
]

handler404 = "platform_site.views.not_found"

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("v1/models", ModelsApi.as_view(), name="models"),
    path("agents", AgentsListApi.as_view(), name="agents"),
    path("agents/<uuid:session_id>/state", AgentStateApi.as_view(), name="agent-state"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Admin API routes come before the Django admin UI mounted at /admin/.
    *admin_api,
    path("admin/", admin.site.urls),
]
