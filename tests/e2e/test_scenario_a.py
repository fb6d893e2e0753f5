"""Scenario A: request → stream → final answer → session completed, history in the database."""

import openai
import pytest

from sessions_app.models import InstanceStatus, Session, SessionMessage, ToolExecution
from tests.e2e.helpers import final, think
from tests.fakes.llm_server import tool_call


@pytest.fixture
def server(platform_server):
    return platform_server()


def test_stream_final_answer_completes_session(server, scripted_llm, chat_key):
    scripted_llm.enqueue(think(), tool_call("final_answer_tool", final("Paris.")))
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=chat_key)

    chunks = list(client.chat.completions.create(
        model="research_agent", stream=True, messages=[{"role": "user", "content": "Capital of France?"}]
    ))

    session_id = chunks[0].model
    assert all(c.model == session_id for c in chunks)
    assert [c.id for c in chunks] == ["0-start", "1-reasoning", "1-action", "1-action", "1-final"]
    assert chunks[-1].choices[0].delta.content == "Paris."
    assert chunks[-1].choices[0].finish_reason == "stop"
    session = Session.objects.get(pk=session_id)
    assert session.state == "completed"
    assert session.execution_result == "Paris."
    roles = list(SessionMessage.objects.filter(session=session).order_by("seq").values_list("role", flat=True))
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    assert ToolExecution.objects.get(session=session).tool_name == "final_answer_tool"
    assert session.instance.status == InstanceStatus.IDLE
    # what the LLM received: the forced reasoning call, then the action with the offered tools
    first, second = scripted_llm.requests
    assert first["tool_choice"] == {"type": "function", "function": {"name": "reasoning_tool"}}
    assert "reasoning_tool" not in [t["function"]["name"] for t in second["tools"]]


def test_non_stream_returns_one_completion(server, scripted_llm, chat_key):
    scripted_llm.enqueue(think(), tool_call("final_answer_tool", final("4")))
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=chat_key)

    response = client.chat.completions.with_raw_response.create(
        model="research_agent", messages=[{"role": "user", "content": "2+2?"}]
    )
    completion = response.parse()

    assert completion.choices[0].message.content == "4"
    assert response.headers["x-session-id"] == completion.model
    assert Session.objects.get(pk=completion.model).state == "completed"
    assert completion.usage.total_tokens > 0
