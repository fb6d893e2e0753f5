"""The ``local`` LLM backend: a small model served by an embedded llama.cpp server.

``config`` selects the backend and holds its settings, ``weights`` installs and verifies the
pinned model, ``server`` runs llama.cpp on loopback. ``attach`` turns the settings of a
template on the local backend into settings that point at the running server.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from runtime.llm import LLMSettings
from runtime.local_llm.config import LocalLLMConfig, LocalLLMError


async def attach(llm: LLMSettings, config: LocalLLMConfig | None) -> LLMSettings:
    """``llm`` unchanged unless it is on the local backend; then with the local server's URL
    (started in a worker thread on first use). Raises ``LocalLLMError``."""
    if llm.backend != "local":
        return llm
    if config is None:
        raise LocalLLMError("the local LLM backend is selected but not configured")
    from runtime.local_llm import server

    endpoint = await asyncio.to_thread(server.ensure_started, config)
    return replace(llm, base_url=endpoint.base_url)
