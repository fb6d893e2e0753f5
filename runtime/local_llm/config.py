"""Which backend serves a template, and the settings of the local one.

``select_backend`` is the one rule: an explicit ``LLM_BACKEND`` wins; ``auto`` uses the
OpenAI-compatible endpoint at ``LLM_BASE_URL`` when it is set and the embedded local
model otherwise. A template whose ``llm_config.base_url`` names an endpoint always uses it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runtime.llm import LLMUnavailable

BACKENDS = ("auto", "openai", "local")


class LocalLLMError(LLMUnavailable):
    """The local model cannot be installed, verified or started; sessions fail with this message."""


class WeightsCorrupt(LocalLLMError):
    """A model file whose sha256 is not the pinned one."""


def select_backend(requested: str, base_url: str) -> str:
    """``openai`` or ``local`` for templates without their own ``llm_config.base_url``."""
    requested = (requested or "auto").strip().lower()
    if requested not in BACKENDS:
        raise ValueError(f"LLM_BACKEND={requested!r} is not one of {', '.join(BACKENDS)}")
    if requested == "auto":
        return "openai" if base_url else "local"
    return requested


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(cores: int) -> int:
    """Cores - 1 (the web server and the database keep one), at least 1; past 8, more threads
    do not make a small model faster on a CPU."""
    return max(1, min(cores - 1, 8))


@dataclass(frozen=True)
class LocalLLMConfig:
    model: str = "smollm2-135m"  # a key of runtime.local_llm.weights.MODELS
    gguf: str = ""  # a GGUF file to serve instead (not verified: it is the user's own)
    directory: Path = Path("var/models")
    threads: int = 0  # 0: default_threads(available_cores())
    ctx: int = 8192
    max_tokens: int = 1536
    max_string: int = 200
    warmup: bool = True
    # Measured (bench/local_llm.py): a tiny model under a grammar tends to repeat itself until a
    # string's cap; this penalty cut SmolLM2's mean step from ~11 s to ~6.5 s at the same validity.
    frequency_penalty: float = 0.5

    @property
    def model_name(self) -> str:
        """The model name the local server answers to (and sessions record)."""
        return Path(self.gguf).stem if self.gguf else self.model

    def resolved_threads(self) -> int:
        return self.threads if self.threads > 0 else default_threads(available_cores())

    @classmethod
    def from_django(cls) -> LocalLLMConfig:
        from django.conf import settings

        return cls(
            model=settings.LOCAL_LLM_MODEL, gguf=settings.LOCAL_LLM_GGUF, directory=Path(settings.LOCAL_LLM_DIR),
            threads=settings.LOCAL_LLM_THREADS, ctx=settings.LOCAL_LLM_CTX, max_tokens=settings.LOCAL_LLM_MAX_TOKENS,
            max_string=settings.LOCAL_LLM_MAX_STRING, warmup=settings.LOCAL_LLM_WARMUP,
        )
