"""Production settings: a real server via DATABASE_URL, a set SECRET_KEY, no debug."""

from django.core.exceptions import ImproperlyConfigured

from platform_site import env as E

from .base import *  # noqa: F401,F403

if not E.SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
