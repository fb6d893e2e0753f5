"""model="router" through HTTP: the chosen template serves the session; the choice is on its state."""

import httpx

from sessions_app.models import Session
from tests.e2e.helpers import auth, final, get_state, sync_client, think
from tests.fakes.llm_server import tool_call


def test_router_picks_and_records_the_template(platform_server, scripted_llm, chat_key):
    server = platform_server()
    models = httpx.get(server.base_url + "/v1/models", headers=auth(chat_key)).json()["data"]
    assert "router" in [m["id"] for m in models]

    scripted_llm.enqueue(think(), tool_call("final_answer_tool", final("An essay.")))
    completion = sync_client(server, chat_key).chat.completions.create(
        model="router", messages=[{"role": "user", "content": "напиши эссе о море"}]
    )
    assert completion.choices[0].message.content == "An essay."
    session = Session.objects.get(pk=completion.model)
    assert session.template_version.template.name == "writer_agent"
    state = get_state(server, chat_key, completion.model)
    assert state["template"] == "writer_agent"
    assert state["routing"]["template"] == "writer_agent"
    assert state["routing"]["method"] == "directory"
    assert state["routing"]["score"] >= 0.8
    assert state["routing"]["candidates"][0]["template"] == "writer_agent"


def test_template_search_endpoint(platform_server, admin_key, chat_key):
    server = platform_server()
    url = server.base_url + "/admin/templates/search"
    response = httpx.post(url, headers=auth(admin_key), json={"query": "do some research on X", "top_k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["template"] == "research_agent" and len(results) == 3
    assert results[0]["score"] >= results[1]["score"]
    assert httpx.post(url, headers=auth(chat_key), json={"query": "x"}).status_code == 403
    assert httpx.post(url, headers=auth(admin_key), json={}).status_code == 400
