"""Runtime settings, read once from Django settings into a frozen object.

The agent loop and tools get what they need from here through the instance and
the tool context; nothing in the loop reads ``django.conf.settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runtime.llm import LLMSettings
from templates_app.specs import TemplateSpec


@dataclass(frozen=True)
class RuntimeSettings:
    llm_base_url: str
    llm_api_key: str
    llm_model: str
    llm_timeout_s: float
    llm_max_retries: int
    tavily_base_url: str
    tavily_api_key: str
    entrypoint_allowlist: tuple[str, ...]
    http_allow_private: bool
    pool_per_version: int = 4
    pool_global: int = 64
    pool_acquire_timeout_s: float = 10.0
    max_delegation_depth: int = 3

    @classmethod
    def from_django(cls) -> RuntimeSettings:
        from django.conf import settings

        return cls(
            llm_base_url=settings.LLM_BASE_URL,
            llm_api_key=settings.LLM_API_KEY,
            llm_model=settings.LLM_MODEL,
            llm_timeout_s=settings.LLM_TIMEOUT_S,
            llm_max_retries=settings.LLM_MAX_RETRIES,
            tavily_base_url=settings.TAVILY_BASE_URL,
            tavily_api_key=settings.TAVILY_API_KEY,
            entrypoint_allowlist=tuple(settings.TOOL_ENTRYPOINT_ALLOWLIST),
            http_allow_private=settings.HTTP_TOOL_ALLOW_PRIVATE,
            pool_per_version=settings.POOL_PER_VERSION,
            pool_global=settings.POOL_GLOBAL,
            pool_acquire_timeout_s=settings.POOL_ACQUIRE_TIMEOUT_S,
            max_delegation_depth=settings.AGENT_MAX_DELEGATION_DEPTH,
        )

    def llm_for(self, spec: TemplateSpec) -> LLMSettings:
        """The template's llm_config over the environment defaults."""
        cfg = spec.content.llm_config
        policy = spec.content.execution_policy
        api_key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else self.llm_api_key
        timeout = cfg.timeout_s or min(self.llm_timeout_s, policy.llm_timeout_s)
        return LLMSettings(
            base_url=cfg.base_url or self.llm_base_url,
            api_key=api_key,
            model=cfg.model or self.llm_model,
            timeout_s=timeout,
            max_retries=self.llm_max_retries if cfg.max_retries is None else cfg.max_retries,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
        )
