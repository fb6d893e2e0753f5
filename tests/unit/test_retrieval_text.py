"""Pure logic of tool search: indexed text, query splitting, score fusion, filters."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.fusion import (
    ask_weights,
    diversified,
    fuse,
    normalised,
    ranked,
    sentence_scores,
    with_sentences,
)
from retrieval.selectors import Candidate, ToolFilter
from retrieval.text import (
    keyword_text,
    query_parts,
    split_identifier,
    text_hash,
    tool_text,
)


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("getWeatherForecast", "get weather forecast"),
        ("weather.get_forecast", "weather get forecast"),
        ("HTTPServerStatus", "http server status"),
        ("Movies_3_FindMovies", "movies 3 find movies"),
        ("sha256-sum", "sha 256 sum"),
        ("", ""),
    ],
)
def test_split_identifier(identifier, words):
    assert split_identifier(identifier) == words


def test_tool_text_has_name_words_description_and_parameters():
    text = tool_text(
        name="getStockLevel",
        description="  Looks up the stock\n level of an item. ",
        parameters={"type": "object", "properties": {
            "itemSku": {"type": "string", "description": "The SKU"},
            "warehouse": {"type": "object", "properties": {"zoneId": {"type": "string"}}},
            "odd": "not a schema",
        }},
    )
    assert text.splitlines()[0] == "get stock level"
    assert "Looks up the stock level of an item." in text
    assert "item sku: The SKU" in text and "zone id" in text and "odd" in text
    assert tool_text(name="x", description="d", parameters=None) == "x\nd"
    assert text_hash(text) == text_hash(text) != text_hash(text + " ")


def test_tool_text_names_the_values_an_enum_allows():
    text = tool_text(name="find_movies", description="Movies showing in a city.", parameters={
        "type": "object", "properties": {
            "show_type": {"type": "string", "description": "Kind of showing.", "enum": ["regular", "3d", "imax"]},
            "genres": {"type": "array", "items": {"type": "string", "enum": ["Drama", "Sci-fi"]}},
            "seats": {"type": "integer", "enum": [1, 2, True, None, {"odd": 1}]},
            "codes": {"type": "string", "enum": [f"c{i}" for i in range(100)]},
            "free": {"type": "string", "enum": "not a list"},
        }})
    assert "show type: Kind of showing. (one of: regular, 3d, imax)" in text
    assert "genres: (one of: Drama, Sci-fi)" in text
    assert "seats: (one of: 1, 2)" in text  # scalars only, booleans and objects left out
    assert "c31)" in text and "c32" not in text  # capped
    assert "free;" in text or text.endswith("free")


def test_query_parts_splits_multi_sentence_requests_only():
    assert query_parts("What's the weather in Paris?") == []
    assert query_parts("Book a flight to Rome. Then find a hotel near the Colosseum!") == [
        "Book a flight to Rome.", "Then find a hotel near the Colosseum!"]
    assert query_parts("Translate this text. Thanks!\nAlso convert 5 USD to EUR please") == [
        "Translate this text.", "Also convert 5 USD to EUR please"]  # fragments under 3 words dropped
    assert len(query_parts(". ".join(["do this thing now"] * 20))) == 8
    # more sentences than parts: runs of consecutive sentences, the last ask kept
    long = [f"ask number {i} here." for i in range(11)]
    parts = query_parts(" ".join(long))
    assert len(parts) == 8 and " ".join(parts) == " ".join(long) and parts[-1].endswith("ask number 10 here.")


def test_keyword_text_adds_the_words_of_identifiers():
    assert keyword_text("use the 'walmart.purchase' function") == "use the 'walmart.purchase' function walmart purchase"
    assert keyword_text("call getWeatherForecast, then Movies_1_FindMovies") == (
        "call getWeatherForecast, then Movies_1_FindMovies get weather forecast movies 1 find movies")
    assert keyword_text("What's the weather in Paris? It is 3.5 degrees.") == "What's the weather in Paris? It is 3.5 degrees."
    assert keyword_text("") == ""


def test_normalisation_is_min_max_within_a_list():
    cands = [Candidate(1, "a", 9.0), Candidate(2, "b", 5.0), Candidate(3, "c", 1.0)]
    assert normalised(cands) == {1: 1.0, 2: 0.5, 3: 0.0}
    assert normalised([Candidate(4, "d", 0.3)]) == {4: 1.0}
    assert normalised([]) == {}


def test_filter_where_clauses():
    where, params = ToolFilter.from_dict(
        {"allowlist": ["a"], "denylist": ["b"], "max_risk": "medium", "exclude_system": True}
    ).where("t")
    assert where == ("TRUE AND t.is_active AND NOT t.is_system AND t.name = ANY(%(allowlist)s) "
                     "AND NOT (t.name = ANY(%(denylist)s)) AND t.risk = ANY(%(risks)s)")
    assert params == {"allowlist": ["a"], "denylist": ["b"], "risks": ["low", "medium"]}
    assert ToolFilter.from_dict({"active_only": False}).where() == ("TRUE", {})
    with pytest.raises(ValueError):
        ToolFilter.from_dict({"max_risk": "severe"})


def test_query_vectors_are_cached_per_model_and_text():
    import numpy as np

    from retrieval.services import _query_vectors, query_cache_clear

    class Counting:
        name, dim = "counting", 2

        def __init__(self):
            self.seen = []

        def embed_queries(self, texts, max_tokens=None):
            self.seen.extend(texts)
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    query_cache_clear()
    embedder = Counting()
    first = _query_vectors(embedder, ["a b c", "de"])
    again = _query_vectors(embedder, ["de", "fgh"])
    assert embedder.seen == ["a b c", "de", "fgh"]
    assert np.array_equal(first[1], again[0])
    query_cache_clear()
    _query_vectors(embedder, ["de"])
    assert embedder.seen[-1] == "de"


def test_query_token_budget_reaches_the_model(settings):
    from retrieval.services import _query_tokens

    settings.TOOL_SEARCH_QUERY_TOKENS = 32
    assert _query_tokens() == 32
    settings.TOOL_SEARCH_QUERY_TOKENS = 0  # the model's own limit
    assert _query_tokens() is None


def test_embedder_cuts_queries_to_max_tokens():
    """A capped query reads only its first tokens: the same vector as those words alone."""
    import numpy as np

    from retrieval.embedders import MiniLMOnnxEmbedder

    embedder = MiniLMOnnxEmbedder(threads=1)
    head = "find the weather forecast"  # 4 word pieces + [CLS] and [SEP] = 6 tokens
    long = head + " for the coming week in several european capitals with hourly detail"
    capped, whole = embedder.embed_queries([long], max_tokens=6)[0], embedder.embed_queries([long])[0]
    alone = embedder.embed_queries([head])[0]
    assert np.allclose(capped, alone, atol=1e-5)
    assert not np.allclose(whole, alone, atol=1e-3)
    assert np.allclose(embedder.embed_queries([head], max_tokens=64)[0], alone, atol=1e-6)  # short: untouched


def test_fusion_adds_normalised_scores_and_keeps_a_tools_best_sentence():
    dense = [Candidate(1, "a", 0.9), Candidate(2, "b", 0.7), Candidate(3, "c", 0.5)]
    keyword = [Candidate(2, "b", 12.0), Candidate(4, "d", 6.0), Candidate(1, "a", 2.0)]
    whole = fuse(dense, keyword)
    assert whole == {1: 0.5, 2: 0.75, 3: 0.0, 4: 0.2}
    assert fuse(dense, keyword, keyword_only=[4])[4] == 0.4  # not embedded: the keyword side alone
    ids = np.array([1, 2, 3, 4])
    # sentence A: dense hits 3, 1, 4 and keyword scores for 3 and 1; sentence B: dense 2, 1, keyword 2, 1, 4
    per_sentence = [[Candidate(3, "c", 0.9), Candidate(1, "a", 0.5), Candidate(4, "d", 0.4)],
                    [Candidate(2, "b", 0.7), Candidate(1, "a", 0.3)]]
    sentence_keyword = np.array([[2.0, 0.0, 4.0, 0.0], [2.0, 3.0, 0.0, 1.0]])
    rows = sentence_scores(ids, per_sentence, sentence_keyword, limit=10)
    assert rows.shape == (2, 4)
    assert rows[0].tolist() == pytest.approx([0.1, 0.0, 1.0, 0.0]) and rows[1].tolist() == pytest.approx(
        [0.25, 1.0, 0.0, 0.0])
    best = rows.max(axis=0)
    assert best.tolist() == pytest.approx([0.25, 1.0, 1.0, 0.0])  # tool 1: its better sentence, B
    # a sentence's keyword side keeps its best ``limit`` tools only: B's keyword hits shrink to tool 2
    assert sentence_scores(ids, per_sentence, sentence_keyword, limit=1).max(axis=0).tolist() == pytest.approx(
        [0.1, 1.0, 1.0, 0.0])
    # tool 3 is the best match of one sentence: averaged with the whole query it overtakes tool 1
    combined = with_sentences(whole, ids, best)
    assert combined == pytest.approx({1: 0.375, 2: 0.875, 3: 0.5, 4: 0.1})
    assert [t for t, _ in ranked(combined, 3)] == [2, 3, 1]


def _hits(*scores: float) -> list[Candidate]:
    return [Candidate(i, f"t{i}", s) for i, s in enumerate(scores, 1)]


def test_ask_weights_count_sentences_whose_best_match_stands_out():
    ask, vague = _hits(0.8, 0.3, 0.3, 0.2), _hits(0.35, 0.3, 0.3, 0.25)  # leads of 0.4 and 0.05
    weights = ask_weights([ask, vague, _hits(0.7, 0.4, 0.1)])  # the third leads by 0.3: 0.75 of the clearest
    assert weights.tolist() == pytest.approx([1 / 1.5, 0.0, 0.5 / 1.5])  # 0.75 → (0.75 - 0.5) / 0.5
    assert not ask_weights([ask, vague]).any()  # one ask and context: nothing to cover
    assert not ask_weights([ask, []]).any() and not ask_weights([]).any()
    assert not ask_weights([_hits(0.5, 0.5), _hits(0.2)]).any()  # no sentence stands out


def test_diversified_covers_every_ask_before_more_of_one():
    ids = np.array([1, 2, 3, 4, 5])
    scores = {1: 0.9, 2: 0.85, 3: 0.8, 4: 0.5, 5: 0.1}  # three look-alikes for ask A lead the list
    rows = np.array([[1.0, 0.95, 0.9, 0.0, 0.0],   # ask A: tools 1, 2, 3
                     [0.0, 0.0, 0.0, 1.0, 0.2]])   # ask B: tool 4
    assert [t for t, _ in ranked(scores, 3)] == [1, 2, 3]
    picks = diversified(scores, ids, rows, np.array([0.5, 0.5]), 3)
    assert [t for t, _ in picks] == [1, 4, 2]
    assert [s for _, s in picks] == sorted((s for _, s in picks), reverse=True)
    assert picks[0][1] == pytest.approx(0.5 * 0.9 + 0.5 * 0.5)  # its score mixed with the ask it serves
    # without asks (fewer than two sentences ask for a tool) it is ``ranked``
    assert diversified(scores, ids, rows, np.zeros(2), 3) == ranked(scores, 3)
    assert [t for t, _ in diversified(scores, ids, rows, np.array([0.5, 0.5]), 10)] == [1, 4, 2, 3, 5]


def test_static_embedder_matches_wordllamas_own_vectors():
    """Our pooling (one text at a time, no padding) gives exactly what WordLlama's batch code gives."""
    import numpy as np
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    from retrieval.embedders import StaticEmbedder, _package_dir

    root = _package_dir("wordllama")
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        table = f.get_tensor("embedding.weight")
    theirs = WordLlamaInference(table, Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json")))
    texts = ["Check the weather forecast for Oslo this weekend.", "book a flight", "Конвертировать валюту", " "]
    ours = StaticEmbedder().embed(texts)
    assert ours.shape == (4, 256) and ours.dtype == np.float32
    assert np.allclose(ours, theirs.embed(texts, norm=True), atol=1e-6)
