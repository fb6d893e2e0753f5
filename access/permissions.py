from rest_framework import permissions

from access.selectors import Principal


class IsApiKey(permissions.BasePermission):
    """Any valid (chat or admin) API key."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Principal)


class IsAdminKey(permissions.BasePermission):
    """An API key with the admin scope; 401 without a key, 403 with a chat key."""

    message = "This route needs an API key with the admin scope"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Principal) and request.auth.is_admin
