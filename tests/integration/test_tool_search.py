"""Tool search against the real database and the real offline embedder."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from catalog.models import Tool
from catalog.services import tool_create, tool_update
from retrieval import selectors
from retrieval.embedders import get_embedder, get_sentence_embedder
from retrieval.models import ToolSearchDoc, ToolSearchTerm
from retrieval.services import (
    tool_embedding_schedule,
    tool_embeddings_refresh,
    tool_embeddings_wait,
    tool_search,
    tool_search_doc_refresh,
)
from retrieval.text import tool_views

pytestmark = pytest.mark.django_db


def _p(**props: str) -> dict:
    return {"type": "object", "properties": {k: {"type": "string", "description": v} for k, v in props.items()}}


CATALOG = [
    ("get_weather_forecast", "Weather forecast for a city for the next days.", _p(city="City name", days="Days")),
    ("convert_currency", "Convert an amount of money from one currency to another at today's rate.",
     _p(amount="Amount", source="ISO code", target="ISO code")),
    ("send_email", "Send an email message to a recipient.", _p(to="Address", subject="Subject", body="Text")),
    ("book_flight", "Book a plane ticket between two airports on a date.", _p(origin="IATA", destination="IATA")),
    ("translate_text", "Translate text from one language into another.", _p(text="Text", target_language="Code")),
    ("calculate_mortgage", "Monthly payment of a home loan from principal, interest rate and term.",
     _p(principal="Loan amount", rate="Annual interest", years="Term")),
    ("search_recipes", "Find cooking recipes by ingredients or dish name.", _p(ingredients="Ingredients")),
    ("stock_price", "Latest share price of a company listed on a stock exchange.", _p(ticker="Ticker symbol")),
    ("create_calendar_event", "Add a meeting or appointment to the user's calendar.", _p(title="Title", start="When")),
    ("set_alarm", "Set an alarm clock to ring at a given time.", _p(time="HH:MM")),
    ("play_music", "Play a song, album or artist on the speaker.", _p(track="Song or artist")),
    ("find_restaurants", "Find restaurants nearby by cuisine and price range.", _p(cuisine="Cuisine", city="City")),
    ("get_directions", "Driving or walking directions between two places.", _p(origin="From", destination="To")),
    ("order_taxi", "Order a taxi cab to pick the user up.", _p(pickup="Address")),
    ("check_order_status", "Track the delivery status of an online shop order.", _p(order_id="Order number")),
    ("reset_password", "Send a password reset link for a user account.", _p(username="Login")),
    ("summarize_document", "Summarize a long PDF or text document into key points.", _p(url="Document URL")),
    ("detect_language", "Detect which language a piece of text is written in.", _p(text="Text")),
    ("compress_image", "Reduce the file size of a picture (JPEG/PNG).", _p(path="Image file")),
    ("calculate_bmi", "Body mass index from height and weight.", _p(height="cm", weight="kg")),
    ("get_news_headlines", "Top news headlines by topic or country.", _p(topic="Topic")),
    ("lookup_word_definition", "Dictionary definition and synonyms of an English word.", _p(word="Word")),
    ("solve_quadratic_equation", "Roots of a quadratic equation ax^2 + bx + c = 0.", _p(a="a", b="b", c="c")),
    ("get_sports_scores", "Live scores and results of football and basketball games.", _p(league="League")),
    ("rent_car", "Reserve a rental car at a location for some dates.", _p(location="Pick-up place")),
    ("delete_file", "Permanently delete a file from the storage bucket.", _p(path="File path")),
    ("transfer_money", "Transfer money from the user's bank account to another account.", _p(iban="IBAN")),
    ("query_database", "Run a read-only SQL query against the analytics warehouse.", _p(sql="SQL")),
    ("get_exchange_holidays", "Public holidays of a country in a given year.", _p(country="Country", year="Year")),
    ("measure_air_quality", "Air pollution index (PM2.5, ozone) for a location.", _p(city="City")),
]
RISKY = {"delete_file": "high", "transfer_money": "high", "query_database": "medium"}

PARAPHRASES = [
    ("will it rain in Paris this weekend?", "get_weather_forecast"),
    ("how many euros do I get for 100 dollars", "convert_currency"),
    ("I need a plane seat from Berlin to Rome on Friday", "book_flight"),
    ("what would my monthly home loan repayment be", "calculate_mortgage"),
    ("what can I cook with eggs and spinach", "search_recipes"),
    ("wake me up at 6:30 tomorrow", "set_alarm"),
    ("where is my parcel? it has not arrived yet", "check_order_status"),
    ("I forgot my login password", "reset_password"),
    ("give me the gist of this long report", "summarize_document"),
    ("how polluted is the air in Delhi today", "measure_air_quality"),
    ("what is the meaning of the word 'ephemeral'", "lookup_word_definition"),
    ("find x where x squared minus 3x plus 2 equals zero", "solve_quadratic_equation"),
]


@pytest.fixture
def catalog():
    tools = {}
    for name, description, parameters in CATALOG:
        tools[name] = tool_create(name=name, description=description, parameters=parameters,
                                  risk=RISKY.get(name, "low"))
    tool_embeddings_refresh()
    return tools


def names(hits) -> list[str]:
    return [h.name for h in hits]


def test_hybrid_finds_paraphrased_requests(catalog):
    misses = []
    for query, expected in PARAPHRASES:
        hits = tool_search(query=query, top_k=3)
        if expected not in names(hits):
            misses.append((query, expected, names(hits)))
    assert not misses


def test_hits_carry_ranks_and_sorted_scores(catalog):
    hits = tool_search(query="send an email to my boss", top_k=5)
    assert hits[0].name == "send_email"
    assert hits[0].dense_rank is not None and hits[0].keyword_rank is not None
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(tool_search(query="send an email", top_k=2)) == 2
    assert tool_search(query="   ", top_k=5) == []


def test_single_retriever_modes(catalog):
    assert names(tool_search(query="email a message", top_k=1, mode="keyword")) == ["send_email"]
    dense = tool_search(query="message my colleague by mail", top_k=3, mode="dense")
    assert "send_email" in names(dense) and all(h.keyword_rank is None for h in dense)


def test_filters_are_applied_in_sql(catalog):
    query = "remove a file from storage"
    assert names(tool_search(query=query, top_k=3))[0] == "delete_file"
    assert "delete_file" not in names(tool_search(query=query, top_k=30, candidate_filter={"max_risk": "medium"}))
    low = tool_search(query="sql query money transfer", top_k=30, candidate_filter={"max_risk": "low"})
    assert not {"delete_file", "transfer_money", "query_database"} & set(names(low))
    medium = tool_search(query="run sql on the warehouse", top_k=30, candidate_filter={"max_risk": "medium"})
    assert "query_database" in names(medium)
    assert "delete_file" not in names(tool_search(query=query, top_k=30, candidate_filter={"denylist": ["delete_file"]}))
    allowed = tool_search(query=query, top_k=10, candidate_filter={"allowlist": ["send_email", "set_alarm"]})
    assert set(names(allowed)) <= {"send_email", "set_alarm"}
    assert names(tool_search(query=query, top_k=3, candidate_filter={"allowlist": []}))[0] == "delete_file"
    with pytest.raises(ValueError):
        tool_search(query=query, candidate_filter={"max_risk": "extreme"})
    with pytest.raises(ValueError):
        tool_search(query=query, candidate_filter={"colour": "red"})


def test_inactive_and_system_tools(catalog):
    Tool.objects.filter(name="set_alarm").update(is_active=False)
    assert "set_alarm" not in names(tool_search(query="set an alarm clock", top_k=30))
    assert "set_alarm" in names(tool_search(query="set an alarm clock", top_k=3,
                                            candidate_filter={"active_only": False}))
    Tool.objects.filter(name="play_music").update(is_system=True)
    assert "play_music" in names(tool_search(query="play a song", top_k=3))
    assert "play_music" not in names(tool_search(query="play a song", top_k=30,
                                                 candidate_filter={"exclude_system": True}))


def test_tool_without_embedding_is_found_by_keywords(catalog):
    tool = tool_create(name="llama_shearing", description="Book a llama shearing appointment at the farm.")
    tool_search_doc_refresh(tool_ids=[tool.pk])
    tool.refresh_from_db()
    assert tool.embedding is None
    hits = tool_search(query="llama shearing", top_k=3)
    assert hits[0].name == "llama_shearing"
    assert hits[0].dense_rank is None and hits[0].keyword_rank == 1


def test_keyword_doc_follows_text_changes(catalog):
    tool = catalog["rent_car"]
    tool_update(tool=tool, description="Reserve a bicycle for a day.")  # indexes it in its transaction
    assert tool_search_doc_refresh(tool_ids=[tool.pk]) == 0
    assert ToolSearchTerm.objects.filter(doc_id=tool.pk, lexeme="bicycl").exists()
    assert not ToolSearchTerm.objects.filter(doc_id=tool.pk, lexeme="date").exists()
    doc = ToolSearchDoc.objects.get(tool=tool)
    assert doc.length == sum(ToolSearchTerm.objects.filter(doc=doc).values_list("tf", flat=True))


def test_keyword_terms_weigh_the_name_and_description_above_the_parameters(catalog):
    """BM25F: a lexeme's tf sums its occurrences weighted by line (name 3, description 2,
    parameters 1), the doc length likewise; so a tool named for a word outranks one whose
    parameters merely mention it."""
    named = tool_create(name="glacier_report", description="Ice coverage of a mountain range.",
                        parameters=_p(range="Mountain range name"))
    mentioned = tool_create(name="hiking_trails", description="Trails of a mountain range.",
                            parameters=_p(region="Region, e.g. a glacier or a valley"))
    tf = dict(ToolSearchTerm.objects.filter(doc_id=named.pk).values_list("lexeme", "tf"))
    assert (tf["glacier"], tf["ice"], tf["name"]) == (3, 2, 1)
    assert tf["mountain"] == 2 + 1  # once in the description, once in the parameters
    assert tf["rang"] == 2 + 1 + 1  # ... and the parameter's name too
    assert ToolSearchTerm.objects.get(doc_id=mentioned.pk, lexeme="glacier").tf == 1
    doc = ToolSearchDoc.objects.get(tool=named)
    assert doc.length == sum(tf.values())
    hits = tool_search(query="glacier", top_k=5, mode="keyword")
    assert [h.name for h in hits[:2]] == ["glacier_report", "hiking_trails"]


def test_the_bm25f_migration_writes_the_terms_the_indexer_writes(catalog):
    import importlib

    rebuild = importlib.import_module("retrieval.migrations.0006_bm25f_terms").REBUILD

    def index():
        return (sorted(ToolSearchTerm.objects.values_list("doc_id", "lexeme", "tf", "doc_length")),
                sorted(ToolSearchDoc.objects.values_list("tool_id", "length")))

    written = index()
    with connection.cursor() as cursor:
        cursor.execute(rebuild)
    assert written[0] and index() == written


def test_reindex_command_is_resumable(catalog, capsys):
    call_command("reindex_embeddings", "--no-progress")
    assert "embedded 0" in capsys.readouterr().out
    Tool.objects.filter(name__in=["set_alarm", "rent_car"]).update(embedding=None, embedding_model="")
    tool_update(tool=catalog["send_email"], description="Send an e-mail with attachments.")
    call_command("reindex_embeddings", "--no-progress", "--batch-size", "2")
    assert "embedded 3" in capsys.readouterr().out
    call_command("reindex_embeddings", "--no-progress")
    assert "embedded 0" in capsys.readouterr().out
    call_command("reindex_embeddings", "--no-progress", "--all")
    assert f"embedded {len(CATALOG)}" in capsys.readouterr().out
    model = get_embedder().name
    assert not Tool.objects.exclude(embedding_model=model).exists()


def mean_of_views(tool, embedder) -> list[float]:
    """What a tool's vector of ``embedder`` should be: its views' vectors, averaged, normalised."""
    views = tool_views(name=tool.name, description=tool.description, parameters=tool.parameters)
    assert len(views) == 2  # the tools these tests look at have parameters
    total = embedder.embed(views).sum(axis=0)
    return (total / np.linalg.norm(total)).tolist()


def test_a_tool_vector_is_the_mean_of_its_whole_doc_and_its_summary(catalog):
    tool = catalog["convert_currency"]
    whole, summary = tool_views(name=tool.name, description=tool.description, parameters=tool.parameters)
    assert whole == ToolSearchDoc.objects.get(tool=tool).text and summary == "convert currency\n" + tool.description
    tool.refresh_from_db()
    assert list(tool.embedding) == pytest.approx(mean_of_views(tool, get_embedder()), abs=1e-5)
    assert tool_views(name="ping", description="Check the service is up.", parameters=None) == [
        "ping\nCheck the service is up."]  # nothing to leave out: one view


def test_a_new_embedding_recipe_re_embeds_every_tool_on_reindex(catalog, capsys, monkeypatch):
    from retrieval import text

    call_command("reindex_embeddings", "--no-progress")
    assert "embedded 0" in capsys.readouterr().out
    monkeypatch.setattr(text, "EMBEDDING_RECIPE", "views-mean-next")
    call_command("reindex_embeddings", "--no-progress")
    assert f"embedded {len(CATALOG)}" in capsys.readouterr().out  # the texts did not change, the recipe did
    call_command("reindex_embeddings", "--no-progress")
    assert "embedded 0" in capsys.readouterr().out


@pytest.mark.parametrize("side", ["model", "sentence"])
def test_dense_search_uses_the_hnsw_index(catalog, side):
    embedder = get_embedder() if side == "model" else get_sentence_embedder()
    search = selectors.tool_dense_candidates if side == "model" else selectors.tool_sentence_candidates
    vector = embedder.embed_queries(["weather tomorrow"])[0]
    with transaction.atomic(), connection.cursor() as cursor:
        # A 30-row table is cheaper to sort than to walk an index: take the other paths away.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
        selectors.hnsw_session_settings(ef_search=100)
        plan = search(vectors=[vector], model=embedder.name, limit=10,
                      tool_filter=selectors.ToolFilter(max_risk="medium", denylist=("x",)), explain=True)
    assert ("tools_embedding_hnsw" if side == "model" else "retrieval_docs_sentence_hnsw") in plan


def test_static_sentence_vector_is_written_with_the_doc(catalog):
    static = get_sentence_embedder()
    tool = catalog["rent_car"]
    before = ToolSearchDoc.objects.get(tool=tool)
    assert before.sentence_model == static.name
    assert before.sentence_vector is not None and len(before.sentence_vector) == static.dim
    tool_update(tool=tool, description="Reserve a bicycle for a day.")
    after = ToolSearchDoc.objects.get(tool=tool)
    assert list(after.sentence_vector) == pytest.approx(mean_of_views(tool, static), abs=1e-6)
    assert list(after.sentence_vector) != pytest.approx(list(before.sentence_vector), abs=1e-3)


def test_migration_makes_every_static_vector_the_mean_of_its_tools_views(catalog):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("retrieval.migrations.0008_sentence_vectors_of_views")
    static = get_sentence_embedder()
    ToolSearchDoc.objects.filter(tool__name__in=["rent_car", "send_email"]).update(
        sentence_vector=static.embed(["unrelated words"])[0], sentence_model="")
    migration.sentence_vectors_of_views(apps, None)
    assert set(ToolSearchDoc.objects.values_list("sentence_model", flat=True)) == {static.name}
    for name in ("rent_car", "send_email"):
        doc = ToolSearchDoc.objects.get(tool__name=name)
        assert list(doc.sentence_vector) == pytest.approx(mean_of_views(catalog[name], static), abs=1e-6)


@pytest.mark.django_db(transaction=True)
def test_schedule_embeds_after_commit_in_the_background():
    with transaction.atomic():
        tool = tool_create(name="feed_the_cat", description="Dispense cat food at a set hour.")
        tool_embedding_schedule(tool_id=tool.pk)
        assert ToolSearchDoc.objects.filter(tool=tool).exists()  # keyword side at once
    tool_embeddings_wait(timeout=60)
    tool.refresh_from_db()
    assert tool.embedding is not None and tool.embedding_model == get_embedder().name
    assert tool_search(query="give my kitten its dinner", top_k=1)[0].name == "feed_the_cat"


def test_sentence_keyword_scores_match_the_whole_query_scoring(catalog):
    """BM25 of a sentence over given tools equals what the whole-index keyword search gives it."""
    from retrieval.selectors import ToolFilter

    text = "convert the currency amount and send an email"
    searched = selectors.tool_keyword_search(query=text, model=get_embedder().name, limit=50,
                                             tool_filter=ToolFilter())
    found = searched.candidates
    assert set(searched.weights) >= {"convert", "currenc", "email"}
    ids = [c.tool_id for c in found[:4]]
    scores = selectors.tool_keyword_sentence_scores(texts=["unrelated words only", text], tool_ids=ids,
                                                    keyword=searched)
    assert scores.shape == (2, 4)
    assert not scores[0].any()
    assert scores[1] == pytest.approx([c.score for c in found[:4]])  # the whole query's BM25, column by column


@pytest.mark.parametrize("query_tokens", [32, 8])
def test_multi_sentence_request_gets_a_tool_for_each_ask(catalog, settings, query_tokens):
    """Asks the model never reads (past ``TOOL_SEARCH_QUERY_TOKENS``) are found by their sentences."""
    from retrieval.services import query_cache_clear

    settings.TOOL_SEARCH_QUERY_TOKENS = query_tokens
    query_cache_clear()
    query = ("Check the weather forecast for Oslo this weekend. Then book a plane ticket from Oslo to Rome. "
             "Also convert 200 euros to Norwegian crowns.")
    top = names(tool_search(query=query, top_k=5))
    assert {"get_weather_forecast", "book_flight", "convert_currency"} <= set(top[:5]), top


HOTELS = [("book_hotel", "Book a hotel room in a city for some nights."),
          ("hotel_booking", "Reserve a room at a hotel for given check-in and check-out dates."),
          ("reserve_hotel_room", "Reserve a hotel room of a chosen type with breakfast or spa options."),
          ("hotel_room_reservation", "Make a hotel room reservation for guests and nights."),
          ("book_hotel_suite", "Book a deluxe room or suite in a hotel.")]


def test_one_family_of_look_alikes_does_not_crowd_out_another_ask(catalog, monkeypatch):
    for name, description in HOTELS:
        tool_create(name=name, description=description,
                    parameters=_p(city="City of the hotel", nights="Number of nights", room="Room type"))
    tool_embeddings_refresh()
    query = ("I need to book a hotel room in Paris for 5 nights. I prefer a deluxe room with breakfast. "
             "Then I need to rent a car at the airport for the week.")
    top = names(tool_search(query=query, top_k=3))
    assert "rent_car" in top and top[0] in dict(HOTELS), top
    from retrieval import fusion

    monkeypatch.setattr(fusion, "ask_weights", lambda dense: np.zeros(len(dense)))  # plain ranking
    assert "rent_car" not in names(tool_search(query=query, top_k=3))  # what the covering changed


def test_a_request_naming_a_tool_by_its_identifier_finds_it_by_keywords(catalog):
    """PostgreSQL's parser keeps ``checkOrderStatus`` whole; its words match the tool's name."""
    for query in ("please run checkOrderStatus now", "use tools.check_order_status.v2 now"):
        assert names(tool_search(query=query, top_k=3, mode="keyword"))[:1] == ["check_order_status"], query


def test_static_vectors_tell_related_texts_from_unrelated_ones():
    vectors = get_sentence_embedder().embed_queries(
        ["book a plane ticket to Rome", "reserve a flight to Italy", "convert euros to crowns", ""])
    assert vectors.shape == (4, 256)
    assert (abs((vectors[:3] ** 2).sum(axis=1) - 1) < 1e-5).all()
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_migration_fills_the_static_vectors_of_existing_docs(catalog):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("retrieval.migrations.0005_sentence_vectors")
    ToolSearchDoc.objects.filter(tool__name__in=["rent_car", "send_email"]).update(sentence_vector=None,
                                                                                    sentence_model="")
    migration.fill_sentence_vectors(apps, None)
    static = get_sentence_embedder()
    assert not ToolSearchDoc.objects.filter(sentence_vector__isnull=True).exists()
    for doc in ToolSearchDoc.objects.filter(tool__name__in=["rent_car", "send_email"]):
        assert doc.sentence_model == static.name
        assert list(doc.sentence_vector) == pytest.approx(list(static.embed([doc.text])[0]), abs=1e-6)
