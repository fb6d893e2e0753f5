"""What one step of a template sees from tool search (``tool_search_for_step``), and the same
through ``POST /admin/tools/search``: the template's lists and risk limit, its pinned tools, its
rules before and after retrieval, and the allowlist as the fallback when search finds nothing."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from catalog.services import tool_create
from retrieval.services import tool_embeddings_refresh
from retrieval.toolsearch import tool_search_for_step
from templates_app.selectors import template_spec_get
from templates_app.services import template_create

pytestmark = pytest.mark.django_db

TOOLS = [
    ("rent_car", "Reserve a rental car at a location for some dates.", "low"),
    ("car_sharing", "Unlock a shared car parked nearby for a short trip.", "low"),
    ("book_flight", "Book a plane ticket between two airports on a date.", "low"),
    ("send_email", "Send an email message to a recipient.", "low"),
    ("delete_file", "Permanently delete a file from the storage bucket.", "high"),
    ("set_alarm", "Set an alarm clock to ring at a given time.", "low"),
]
TRAVEL = {
    "tool_policy": {"strategy": "retrieval", "required_tools": ["send_email"], "denylist": ["car_sharing"],
                    "max_tools_in_prompt": 6},
    "rules": [{"name": "no cars after step 1", "when": {"field": "iteration", "op": ">=", "value": 2},
               "then": [{"action": "remove_tools", "tools": ["rent_car"]}], "phases": ["after_retrieval"]}],
}


@pytest.fixture
def catalog():
    for name, description, risk in TOOLS:
        tool_create(name=name, description=description, risk=risk,
                    parameters={"type": "object", "properties": {"what": {"type": "string"}}})
    tool_embeddings_refresh()
    template_create(name="travel", content=TRAVEL)
    template_create(name="flights", content={"tool_policy": {"strategy": "retrieval", "allowlist": ["book_flight"]}})


def sources(outcome) -> dict[str, str]:
    return {r.name: r.source for r in outcome.results}


def test_a_step_sees_its_pinned_tools_and_what_search_finds_within_the_lists(catalog):
    outcome = tool_search_for_step(query="I need a car in Rome for the weekend", template=template_spec_get(
        name="travel"), top_k=6)
    found = sources(outcome)
    assert {n for n, s in found.items() if s == "pinned"} == {"final_answer_tool", "clarification_tool", "send_email"}
    searched = [r.name for r in outcome.results if r.source == "search"]
    assert searched[0] == "rent_car" and len(searched) == 3  # the room the pinned tools leave
    assert not {"car_sharing", "delete_file"} & set(searched)  # denied; above max_risk (medium)
    assert len(outcome.results) == 6
    flights = tool_search_for_step(query="I need a car in Rome for the weekend", template=template_spec_get(
        name="flights"), top_k=6)
    assert [r.name for r in flights.results if r.source == "search"] == ["book_flight"]  # the allowlist only


def test_rules_after_retrieval_remove_hits_and_say_which_rule(catalog):
    outcome = tool_search_for_step(query="I need a car in Rome for the weekend", template=template_spec_get(
        name="travel"), facts={"iteration": 2}, top_k=6)
    assert "rent_car" not in sources(outcome)
    assert outcome.removed["rent_car"] == "no cars after step 1"
    assert "send_email" in sources(outcome)


def test_the_allowlist_is_the_fallback_when_search_finds_nothing(catalog):
    # a tool written in this transaction has no embedding yet (that comes after commit), and the
    # request shares no word with it: search finds nothing, so the step falls back to the allowlist
    tool_create(name="zz_gauge", description="Reads the pressure gauge.",
                parameters={"type": "object", "properties": {}})
    template_create(name="gauges", content={"tool_policy": {"strategy": "retrieval", "allowlist": ["zz_gauge"]}})
    outcome = tool_search_for_step(query="weekend plans", template=template_spec_get(name="gauges"), top_k=5)
    assert sources(outcome)["zz_gauge"] == "fallback"


def test_the_admin_endpoint_shows_what_a_templates_step_sees(catalog, admin_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    response = client.post("/admin/tools/search", {"query": "I need a car in Rome", "top_k": 6, "template": "travel"},
                           format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert {r["name"]: r["source"] for r in results}["send_email"] == "pinned"
    assert next(r for r in results if r["source"] == "search")["name"] == "rent_car"
    assert "car_sharing" not in {r["name"] for r in results}
    catalog_wide = client.post("/admin/tools/search", {"query": "I need a car in Rome", "top_k": 3},
                               format="json").json()["results"]
    assert [r["source"] for r in catalog_wide] == ["search"] * 3  # no template: no pinned tools
    assert "car_sharing" in {r["name"] for r in catalog_wide}
    missing = client.post("/admin/tools/search", {"query": "car", "template": "nope"}, format="json")
    assert missing.status_code == 404 and missing.json()["error"]["message"]
