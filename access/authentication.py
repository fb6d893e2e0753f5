"""DRF authentication by API key (``Authorization: Bearer <key>``)."""

from rest_framework import authentication, exceptions

from access.selectors import principal_from_header
from platform_site.errors import AuthenticationRequired


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        try:
            principal = principal_from_header(header)
        except AuthenticationRequired as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc
        return (principal, principal)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
