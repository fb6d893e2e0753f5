"""Runtime settings, read once from Django settings into a frozen object.

The agent loop and tools get what they need from here through the instance and
the tool context; nothing in the loop reads ``django.conf.settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from access.ratelimit import RateLimit
from runtime.llm import LLMSettings
from runtime.local_llm.config import LocalLLMConfig, select_backend
from runtime.router import RouterSettings
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
    environment_allowlist: tuple[str, ...] = ()
    api_key_rate: RateLimit | None = None
    tool_rate: RateLimit | None = None
    router: RouterSettings = RouterSettings("sgr_agent", 0.80, 0.01, False)
    llm_backend: str = "openai"  # for templates without llm_config.base_url: "openai" or "local"
    local_llm: LocalLLMConfig | None = None
    web_search_provider: str = "tavily"  # runtime.tools.search_providers
    searxng_base_url: str = ""

    @classmethod
    def from_django(cls) -> RuntimeSettings:
        from django.conf import settings

        return cls(
            llm_base_url=settings.LLM_BASE_URL,
            llm_api_key=settings.LLM_API_KEY,
            llm_model=settings.LLM_MODEL,
            llm_timeout_s=settings.LLM_TIMEOUT_S,
            llm_max_retries=settings.LLM_MAX_RETRIES,
            llm_backend=select_backend(settings.LLM_BACKEND, settings.LLM_BASE_URL),
            local_llm=LocalLLMConfig.from_django(),
            tavily_base_url=settings.TAVILY_BASE_URL,
            tavily_api_key=settings.TAVILY_API_KEY,
            web_search_provider=settings.WEB_SEARCH_PROVIDER,
            searxng_base_url=settings.SEARXNG_BASE_URL,
            entrypoint_allowlist=tuple(settings.TOOL_ENTRYPOINT_ALLOWLIST),
            http_allow_private=settings.HTTP_TOOL_ALLOW_PRIVATE,
            pool_per_version=settings.POOL_PER_VERSION,
            pool_global=settings.POOL_GLOBAL,
            pool_acquire_timeout_s=settings.POOL_ACQUIRE_TIMEOUT_S,
            max_delegation_depth=settings.AGENT_MAX_DELEGATION_DEPTH,
            environment_allowlist=tuple(settings.TOOL_ENVIRONMENT_ALLOWLIST),
            api_key_rate=RateLimit.parse(settings.API_KEY_RATE_LIMIT),
            tool_rate=RateLimit.parse(settings.TOOL_RATE_LIMIT),
            router=RouterSettings(
                default_template=settings.ROUTER_DEFAULT_TEMPLATE, min_score=settings.ROUTER_MIN_SCORE,
                tie_margin=settings.ROUTER_TIE_MARGIN, llm_tiebreak=settings.ROUTER_LLM_TIEBREAK,
            ),
        )

    def tool_allowed_here(self, name: str, tags: tuple[str, ...], is_system: bool) -> bool:
        """TOOL_ENVIRONMENT_ALLOWLIST: names or ``tag:<tag>``; empty allows every tool."""
        if is_system or not self.environment_allowlist:
            return True
        return name in self.environment_allowlist or any(f"tag:{t}" in self.environment_allowlist for t in tags)

    def default_llm(self) -> LLMSettings:
        return LLMSettings(base_url=self.llm_base_url, api_key=self.llm_api_key, model=self.llm_model,
                           timeout_s=self.llm_timeout_s, max_retries=self.llm_max_retries)

    def llm_for(self, spec: TemplateSpec) -> LLMSettings:
        """The template's llm_config over the environment defaults.

        A template without ``llm_config.base_url`` on the local backend gets the local model:
        its ``base_url`` is filled in when the server runs (``runtime.local_llm.attach``),
        replies are capped at ``max_tokens`` and structured-output strings at ``string_cap``.
        """
        cfg = spec.content.llm_config
        policy = spec.content.execution_policy
        api_key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else self.llm_api_key
        timeout = cfg.timeout_s or min(self.llm_timeout_s, policy.llm_timeout_s)
        if not cfg.base_url and self.llm_backend == "local":
            local = self.local_llm or LocalLLMConfig()
            return LLMSettings(
                base_url="", api_key="", model=local.model_name, timeout_s=timeout,
                max_retries=self.llm_max_retries if cfg.max_retries is None else cfg.max_retries,
                temperature=cfg.temperature, max_tokens=cfg.max_tokens or local.max_tokens,
                frequency_penalty=local.frequency_penalty, backend="local", string_cap=local.max_string,
            )
        return LLMSettings(
            base_url=cfg.base_url or self.llm_base_url,
            api_key=api_key,
            model=cfg.model or self.llm_model,
            timeout_s=timeout,
            max_retries=self.llm_max_retries if cfg.max_retries is None else cfg.max_retries,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
        )
