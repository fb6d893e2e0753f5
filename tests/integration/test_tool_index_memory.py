"""The in-memory copy of the tool search index: same answers as SQL, used only while current."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction
from django.db.models import F

from catalog.models import Tool
from catalog.services import tool_create, tool_update
from retrieval import memindex, selectors
from retrieval.embedders import get_embedder, get_sentence_embedder
from retrieval.selectors import ToolFilter
from retrieval.services import (
    _query_tokens,
    query_cache_clear,
    tool_embeddings_refresh,
    tool_embeddings_wait,
    tool_search,
)
from retrieval.text import query_parts
from tests.integration.test_tool_search import CATALOG, PARAPHRASES, RISKY

QUERIES = [q for q, _ in PARAPHRASES] + [
    ("Check the weather forecast for Oslo this weekend. Then book a plane ticket from Oslo to Rome. "
     "Also convert 200 euros to Norwegian crowns."),
    "remove a file from storage",
    "sql query money transfer",
]
FILTERS = [ToolFilter(), ToolFilter(max_risk="low"), ToolFilter(max_risk="medium", denylist=("send_email",)),
           ToolFilter(allowlist=("delete_file", "set_alarm", "no_such_tool")), ToolFilter(exclude_system=True),
           ToolFilter(active_only=False)]


@pytest.fixture
def committed_catalog(transactional_db):
    for name, description, parameters in CATALOG:
        tool_create(name=name, description=description, parameters=parameters, risk=RISKY.get(name, "low"))
    tool_embeddings_wait(timeout=120)  # the embeddings tool_create scheduled, written after its commit
    tool_embeddings_refresh()
    Tool.objects.filter(name="set_alarm").update(is_active=False)
    Tool.objects.filter(name="play_music").update(is_system=True)
    index = memindex.refresh(get_embedder().name)
    assert index is not None and len(index.ids) == len(CATALOG)
    yield index
    memindex.forget()


def _generation() -> int | None:
    return memindex.query_lexemes(["x"])[0]


def _sql_only(monkeypatch):
    """Make every SQL search statement fail: what still answers came from memory."""
    def refuse(**_):
        raise AssertionError("searched in SQL")
    for name in ("tool_keyword_search", "tool_dense_candidates", "tool_sentence_candidates",
                 "tool_keyword_sentence_scores"):
        monkeypatch.setattr(selectors, name, refuse)


def test_keyword_scores_equal_the_sql_ones(committed_catalog):
    index, model = committed_catalog, get_embedder().name
    for query in QUERIES:
        for tool_filter in FILTERS:
            sql = selectors.tool_keyword_search(query=query, model=model, limit=10, tool_filter=tool_filter)
            mem = index.keyword(memindex.query_lexemes([query])[1][0], limit=10, tool_filter=tool_filter)
            assert [c.tool_id for c in mem.candidates] == [c.tool_id for c in sql.candidates], (query, tool_filter)
            assert [c.score for c in mem.candidates] == pytest.approx([c.score for c in sql.candidates])
            assert [c.embedded for c in mem.candidates] == [c.embedded for c in sql.candidates]
            assert mem.weights == pytest.approx(sql.weights)
            if sql.weights:  # (SQL reports no normalisation when no term matched)
                assert mem.c1 == pytest.approx(sql.c1)


def _same_nearest(sql: list[list], mem: list[list], context) -> None:
    assert len(sql) == len(mem)
    for sql_hits, mem_hits in zip(sql, mem, strict=True):
        assert [c.tool_id for c in mem_hits] == [c.tool_id for c in sql_hits], context
        assert [c.score for c in mem_hits] == pytest.approx([c.score for c in sql_hits], abs=1e-5)


def test_dense_and_sentence_scores_equal_the_sql_ones(committed_catalog):
    index, embedder, static = committed_catalog, get_embedder(), get_sentence_embedder()
    scored = 0
    for query in QUERIES:
        vectors = list(embedder.embed_queries([query], max_tokens=_query_tokens()))
        texts = query_parts(query) or [query]
        sentence_vectors = list(static.embed_queries(texts))
        for tool_filter in FILTERS:
            with transaction.atomic():
                selectors.hnsw_session_settings(ef_search=200)  # 30 tools: the walk sees them all
                sql = selectors.tool_dense_candidates(vectors=vectors, model=embedder.name, limit=8,
                                                      tool_filter=tool_filter)
                sql_sentence = selectors.tool_sentence_candidates(vectors=sentence_vectors, model=static.name,
                                                                  limit=8, tool_filter=tool_filter)
            _same_nearest(sql, index.dense(vectors, limit=8, tool_filter=tool_filter), (query, tool_filter))
            _same_nearest(sql_sentence, index.sentence_dense(sentence_vectors, limit=8, tool_filter=tool_filter),
                          (query, tool_filter))
        searched = selectors.tool_keyword_search(query=query, model=embedder.name, limit=20, tool_filter=ToolFilter())
        ids = [c.tool_id for c in searched.candidates]
        sql_sentences = selectors.tool_keyword_sentence_scores(texts=texts, tool_ids=ids, keyword=searched)
        mem_sentences = index.sentence_scores(memindex.query_lexemes(texts)[1], ids, searched)
        assert mem_sentences.shape == sql_sentences.shape == (len(texts), len(ids))
        assert mem_sentences == pytest.approx(sql_sentences)
        scored += int(np.count_nonzero(sql_sentences))
    assert scored > 0  # not only zeros compared


def test_search_answers_from_memory_while_current(committed_catalog, monkeypatch, settings):
    expected = {}
    settings.TOOL_SEARCH_MEMORY_INDEX = False
    for query in QUERIES:
        query_cache_clear()
        expected[query] = tool_search(query=query, top_k=5, candidate_filter={"max_risk": "medium"})
    settings.TOOL_SEARCH_MEMORY_INDEX = True
    _sql_only(monkeypatch)
    for query in QUERIES:
        hits = tool_search(query=query, top_k=5, candidate_filter={"max_risk": "medium"})
        assert [h.name for h in hits] == [h.name for h in expected[query]], query
        assert [h.score for h in hits] == pytest.approx([h.score for h in expected[query]], abs=1e-4)


def test_a_committed_change_sends_search_to_sql_until_rebuilt(committed_catalog, monkeypatch):
    before = _generation()
    assert before == committed_catalog.generation
    tool_update(tool=Tool.objects.get(name="rent_car"), description="Reserve a bicycle for a day.")
    tool_embeddings_wait(timeout=120)  # its new embedding is one more change, written after commit
    after = _generation()
    assert after != before
    assert memindex.current(after, get_embedder().name) is None  # stale: SQL answers, a rebuild starts
    assert tool_search(query="bicycle", top_k=1, mode="keyword")[0].name == "rent_car"
    memindex.wait(timeout=60)
    rebuilt = memindex.refresh(get_embedder().name)
    assert rebuilt.generation == after
    _sql_only(monkeypatch)
    assert tool_search(query="bicycle", top_k=1, mode="keyword")[0].name == "rent_car"


def test_own_uncommitted_writes_are_searched_in_sql(committed_catalog):
    with transaction.atomic():
        tool_create(name="llama_shearing", description="Book a llama shearing appointment at the farm.")
        assert _generation() is None  # this transaction changed the index: no copy can be current
        assert memindex.build(get_embedder().name) is None  # nor be made from its uncommitted rows
        assert tool_search(query="llama shearing", top_k=1)[0].name == "llama_shearing"
        transaction.set_rollback(True)
    assert _generation() == committed_catalog.generation  # rolled back: nothing changed
    assert tool_search(query="llama shearing", top_k=1)[0].name != "llama_shearing"


def test_generation_moves_only_with_what_search_reads(committed_catalog):
    start = _generation()
    Tool.objects.update(revision=F("revision") + 1)  # not read by search
    assert _generation() == start
    with transaction.atomic():
        Tool.objects.filter(risk="high").update(risk="medium")
        Tool.objects.filter(name="stock_price").update(is_active=False)
    moved = _generation()
    assert moved > start  # generations grow in commit order
    with connection.cursor() as cursor:
        cursor.execute("SELECT changed_by IS NOT NULL FROM retrieval_index_state")
        assert cursor.fetchone() == (True,)
    Tool.objects.filter(name="stock_price").delete()
    assert _generation() > moved


def test_warm_up_builds_the_index_when_a_template_searches(committed_catalog, monkeypatch):
    from retrieval.services import search_warm_up
    from tests.factories import make_template

    memindex.forget()
    search_warm_up().join(timeout=120)
    assert memindex._current is None  # no served template searches its tools: nothing loaded
    make_template(tool_policy={"strategy": "retrieval", "allowlist": []})
    search_warm_up().join(timeout=120)
    assert memindex.current(_generation(), get_embedder().name) is not None
    _sql_only(monkeypatch)
    assert tool_search(query="wake me up at 6:30 tomorrow", top_k=3, candidate_filter={"active_only": False})
