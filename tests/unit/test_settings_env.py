"""Settings read from the environment for deployments behind a proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROXY = "[s.CSRF_TRUSTED_ORIGINS, getattr(s, 'SECURE_PROXY_SSL_HEADER', None)]"


def _read(expression: str, unset: tuple[str, ...], **env: str):
    """``expression`` over Django's settings (``s``) in a fresh process: ``unset`` variables removed
    from this environment, ``env`` added."""
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ.update(DJANGO_SETTINGS_MODULE="platform_site.settings.base", **env)
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({expression}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _settings(**env: str) -> list:
    return _read(PROXY, ("CSRF_TRUSTED_ORIGINS", "TRUST_X_FORWARDED_PROTO"), **env)


def test_proxy_settings_are_off_unless_configured():
    assert _settings(TRUST_X_FORWARDED_PROTO="false") == [[], None]


def test_proxy_settings_from_the_environment():
    origins, header = _settings(CSRF_TRUSTED_ORIGINS="https://agents.example.com,https://admin.example.com",
                                TRUST_X_FORWARDED_PROTO="true")
    assert origins == ["https://agents.example.com", "https://admin.example.com"]
    assert header == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_documented_defaults_are_the_defaults():
    """Every number and switch in docs/configuration.md's tables is what platform_site.env reads
    when the variable is unset."""
    import re

    documented = dict(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| `([^`]*)` \|",
                                 (ROOT / "docs" / "configuration.md").read_text(), re.MULTILINE))
    read = ("import json, platform_site.env as e; names = json.loads(input()); "
            "print(json.dumps({n: getattr(e, n) for n in names "
            "if isinstance(getattr(e, n, None), (bool, int, float))}))")
    environ = {k: v for k, v in os.environ.items() if k not in documented}
    done = subprocess.run([sys.executable, "-c", read], cwd=ROOT, env=environ, input=json.dumps(list(documented)),
                          capture_output=True, text=True, timeout=60, check=True)
    defaults = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(defaults) >= 10  # the table really was read
    for name, value in defaults.items():
        text = documented[name]
        expected = (text in ("true", "1", "yes", "on")) if isinstance(value, bool) else type(value)(text)
        assert value == expected, f"{name}: docs say {text!r}, the code reads {value!r}"


def _prepare_threshold(**env: str):
    return _read("s.DATABASES['default']['OPTIONS'].get('prepare_threshold', 'unset')",
                 ("DB_PREPARED_STATEMENTS",), **env)


def test_prepared_statements_are_on_unless_turned_off():
    """On (psycopg's threshold 5; ``fetch`` prepares at once), off for a pooler that cannot keep them."""
    assert _prepare_threshold() == 5
    assert _prepare_threshold(DB_PREPARED_STATEMENTS="false") is None
