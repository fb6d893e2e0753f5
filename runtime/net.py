"""Process-wide network pieces shared by every agent instance."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs tens of
    milliseconds of CPU, too much to pay for every client of every instance."""
    return ssl.create_default_context()
