"""Settings read from the environment for deployments behind a proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = ("import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.CSRF_TRUSTED_ORIGINS, getattr(s, 'SECURE_PROXY_SSL_HEADER', None)]))")


def _settings(**env: str) -> list:
    environ = {k: v for k, v in os.environ.items() if k not in ("CSRF_TRUSTED_ORIGINS", "TRUST_X_FORWARDED_PROTO")}
    environ.update(DJANGO_SETTINGS_MODULE="platform_site.settings.base", **env)
    done = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_proxy_settings_are_off_unless_configured():
    assert _settings(TRUST_X_FORWARDED_PROTO="false") == [[], None]


def test_proxy_settings_from_the_environment():
    origins, header = _settings(CSRF_TRUSTED_ORIGINS="https://agents.example.com,https://admin.example.com",
                                TRUST_X_FORWARDED_PROTO="true")
    assert origins == ["https://agents.example.com", "https://admin.example.com"]
    assert header == ["HTTP_X_FORWARDED_PROTO", "https"]
