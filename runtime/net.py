"""Process-wide network pieces shared by every agent instance."""

from __future__ import annotations

import functools
import ssl

import anyio
import httpcore
import httpx

from catalog.netguard import UnsafeURL, check_host


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one (loading the CA bundle) costs tens of
    milliseconds of CPU, too much to pay for every client of every instance."""
    return ssl.create_default_context()


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to public addresses.

    The host name is resolved and every address checked when the connection is
    opened, and the connection goes to the checked address itself: a DNS answer
    that changes between the check and the connect (DNS rebinding) cannot steer
    it to a private one. TLS still verifies the certificate against the name.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options=None) -> httpcore.AsyncNetworkStream:
        addresses = await anyio.to_thread.run_sync(check_host, host, port)
        return await self._inner.connect_tcp(addresses[0], port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options=None) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("unix sockets are not public destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def public_http_client(*, timeout: float) -> httpx.AsyncClient:
    """An HTTP client for destinations chosen by models or tool authors (http tools, page
    fetches): connections only to public addresses, pinned to the address checked.
    Raises ``UnsafeURL`` (not an ``httpx`` error) for any other."""
    transport = httpx.AsyncHTTPTransport(verify=shared_ssl_context())
    # httpx takes no network backend: its connection pool is rebuilt with ours (httpx's defaults).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=shared_ssl_context(), max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
        network_backend=PublicOnlyBackend(),
    )
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout))
