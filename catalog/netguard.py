"""Outbound URL checks for http tools: no private, loopback, link-local or reserved targets.

Used when a tool is saved (a clear 400) and again before every call (the name
may resolve elsewhere by then), unless ``HTTP_TOOL_ALLOW_PRIVATE`` is set. At
connect time ``runtime.net.public_http_client`` checks the name once more and
connects to the very address it checked (no second lookup for a rebinding DNS
server to answer differently).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

BLOCKED_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


class UnsafeURL(ValueError):
    pass


def is_public_ip(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return not (
        addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
        or addr.is_reserved or addr.is_unspecified or not addr.is_global
    )


def parse_http_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"URL must be http or https, got {url!r}")
    if not parts.hostname:
        raise UnsafeURL(f"URL has no host: {url!r}")
    if parts.username or parts.password:
        raise UnsafeURL("URL must not carry credentials; use headers_from_env")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname.rstrip(".").lower(), port


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return sorted({info[4][0] for info in infos})


def check_host(host: str, port: int, *, require_resolvable: bool = True) -> list[str]:
    """The addresses of ``host`` when every one is public; ``UnsafeURL`` otherwise."""
    host = host.rstrip(".").lower()
    if host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES):
        raise UnsafeURL(f"{host} is a local name; private destinations need HTTP_TOOL_ALLOW_PRIVATE")
    try:
        ips = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        ips = resolve(host, port)
        if not ips and require_resolvable:
            raise UnsafeURL(f"cannot resolve {host}") from None
    for ip in ips:
        if not is_public_ip(ip):
            raise UnsafeURL(
                f"{host} resolves to {ip}, a private/loopback/link-local or reserved address; "
                "set HTTP_TOOL_ALLOW_PRIVATE=true to allow it"
            )
    return ips


def check_url(url: str, *, allow_private: bool, require_resolvable: bool = False) -> list[str]:
    """Raise ``UnsafeURL`` when ``url`` targets a non-public address; return the resolved IPs."""
    _, host, port = parse_http_url(url)
    if allow_private:
        return resolve(host, port)
    return check_host(host, port, require_resolvable=require_resolvable)
