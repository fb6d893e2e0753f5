"""A faster copy of the embedding model for search queries: int8 matrix products.

The packaged all-MiniLM-L6-v2 file stores int8 weights, but each is turned back into
float (a Cast and a Mul) before its MatMul, so every product runs in float32 and reads
~40 MB of weights per query. For queries, where one search waits on one short text,
``int8_copy`` derives a dynamically quantised copy once per machine
(``onnxruntime.quantization``: int8 weights per output channel, int8 activations
measured per run, ``MatMulInteger``): ~30% less time for a 32-token query on two
cores. Documents keep the packaged model, so stored vectors, their model name and any
index stay as they are; the copy's query vectors are within cosine ~0.98 of the
original's, and tool search quality on the development sets moved by at most 0.3
points (measured; ``bench/tool_retrieval.py``). The copy is written to
``EMBEDDING_CACHE_DIR`` under the source file's hash and reused by every process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path


def _folded(source: Path):
    """The source graph with each MatMul weight written as ``Mul(Cast(int8 constant), float
    constant)`` replaced by its float32 value, so the quantiser sees plain float weights (other
    such constants, the token embedding table, stay as they are)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    matmul_weights = {node.input[1] for node in graph.node if node.op_type == "MatMul"}
    producer = {out: node for node in graph.node for out in node.output}
    folded: dict[str, onnx.TensorProto] = {}
    for name in matmul_weights:
        mul = producer.get(name)
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if (cast is None or cast.op_type != "Cast" or cast.input[0] not in constants
                or constants[cast.input[0]].data_type != onnx.TensorProto.INT8 or mul.input[1] not in constants):
            continue
        weight = numpy_helper.to_array(constants[cast.input[0]]).astype(np.float32)
        weight = weight * numpy_helper.to_array(constants[mul.input[1]])
        folded[name] = numpy_helper.from_array(weight.astype(np.float32), name)
    if not folded:
        raise ValueError(f"{source.name}: no int8 MatMul weights found to fold")
    kept = [node for node in graph.node if not set(node.output) & folded.keys()]
    used_now = {name for node in kept for name in node.input}
    kept = [node for node in kept  # the Casts that only fed the folded Muls go too
            if not (node.op_type == "Cast" and node.input[0] in constants and not set(node.output) & used_now)]
    used = {name for node in kept for name in node.input}
    initializers = [init for init in graph.initializer if init.name in used] + list(folded.values())
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return model


class _DropRecordsFrom(logging.Filter):
    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.directory)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def int8_copy(source: Path, cache_dir: Path) -> Path:
    """The dynamically quantised copy of ``source`` (built now if this machine has none yet)."""
    target = cache_dir / f"{source.stem}-query-int8-{_digest(source)}.onnx"
    if target.is_file():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:  # same filesystem: the rename is atomic
        plain, quantised = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(_folded(source), str(plain))
        quiet = _DropRecordsFrom(str(Path(quantize_dynamic.__code__.co_filename).parent))
        logging.getLogger().addFilter(quiet)  # it reports each tensor on the root logger
        try:
            quantize_dynamic(plain, quantised, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            logging.getLogger().removeFilter(quiet)
        os.replace(quantised, target)  # concurrent builders write the same bytes; the last one wins
    return target
