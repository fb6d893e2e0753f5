"""http tools: POST the arguments as JSON to the tool's endpoint.

Safe by default: the destination is checked (no private, loopback, link-local
or reserved addresses unless allowed) before every call, redirects are not
followed, the response is read up to ``max_response_bytes``, secrets come from
environment variables named in ``headers_from_env`` and never appear in errors.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from catalog.netguard import UnsafeURL, check_url
from catalog.specs import ToolSpec
from runtime.tools.base import ToolContext, ToolError
from runtime.tools.executors import check_arguments


class HttpExecutable:
    def __init__(self, spec: ToolSpec, *, client: httpx.AsyncClient, allow_private: bool) -> None:
        self.spec = spec
        self.client = client
        self.allow_private = allow_private
        endpoint = spec.endpoint
        self.url: str = endpoint["url"]
        self.timeout_s: float = float(endpoint.get("timeout_s", 10))
        self.max_bytes: int = int(endpoint.get("max_response_bytes", 1_048_576))
        self.headers_from_env: dict[str, str] = dict(endpoint.get("headers_from_env", {}))

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json, text/plain;q=0.9"}
        for header, env_name in self.headers_from_env.items():
            value = os.environ.get(env_name)
            if value is None:
                raise ToolError(f"tool {self.spec.name} is misconfigured: environment variable {env_name} is not set")
            headers[header] = value
        return headers

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        check_arguments(self.spec, arguments)
        try:
            check_url(self.url, allow_private=self.allow_private, require_resolvable=not self.allow_private)
        except UnsafeURL as exc:
            raise ToolError(f"tool {self.spec.name} refused: {exc}") from None
        body = bytearray()
        try:
            request = self.client.build_request(
                "POST", self.url, content=json.dumps(arguments).encode(), headers=self._headers(),
                timeout=self.timeout_s,
            )
            response = await self.client.send(request, stream=True, follow_redirects=False)
            try:
                async for piece in response.aiter_bytes():
                    body.extend(piece)
                    if len(body) > self.max_bytes:
                        raise ToolError(f"tool {self.spec.name}: response larger than {self.max_bytes} bytes")
            finally:
                await response.aclose()
        except UnsafeURL as exc:  # the name resolved elsewhere at connect time
            raise ToolError(f"tool {self.spec.name} refused: {exc}") from None
        except httpx.TimeoutException:
            raise ToolError(f"tool {self.spec.name} timed out after {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"tool {self.spec.name} request failed: {type(exc).__name__}") from None
        text = body.decode(response.encoding or "utf-8", errors="replace")
        if response.is_redirect:
            raise ToolError(f"tool {self.spec.name}: endpoint answered with a redirect (HTTP {response.status_code}), "
                            "which is not followed")
        if response.status_code >= 400:
            raise ToolError(f"tool {self.spec.name}: endpoint answered HTTP {response.status_code}: {text[:500]}")
        return text
