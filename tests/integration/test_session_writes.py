"""The runtime's hot-path writes: a step in one statement, a session start and end."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from sessions_app.models import AgentInstance, Session, SessionMessage, ToolExecution
from sessions_app.services import session_end, session_start, session_step_record
from tests.factories import make_instance, make_session, make_template

pytestmark = pytest.mark.django_db

PROGRESS = {"iteration": 2, "searches_used": 1, "clarifications_used": 0, "prompt_tokens": 120,
            "completion_tokens": 30, "stage": "reading", "current_step_reasoning": {"next": "answer"},
            "context": {"plan": None, "tool_counts": {"web_search_tool": 1}}}


def test_a_step_writes_messages_execution_and_progress_together():
    session = make_session()
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}]}
    result = {"role": "tool", "tool_call_id": "c1", "content": "42"}
    execution = {"tool_name": "t", "tool_id": None, "tool_call_id": "c1", "iteration": 2, "arguments": {"q": 1},
                 "result": "42", "status": "ok", "error": "", "duration_ms": 3.5}

    assert session_step_record(session_id=session.pk, messages=[call, result], first_seq=0,
                               execution=execution, **PROGRESS) == 2
    assert session_step_record(session_id=session.pk, messages=[{"role": "user", "content": "go on"}],
                               first_seq=2, **{**PROGRESS, "current_step_reasoning": None}) == 3

    rows = list(SessionMessage.objects.filter(session=session).values_list("seq", "role", "message"))
    assert rows == [(0, "assistant", call), (1, "tool", result), (2, "user", {"role": "user", "content": "go on"})]
    (recorded,) = ToolExecution.objects.filter(session=session)
    assert (recorded.tool_name, recorded.arguments, recorded.result, recorded.duration_ms) == ("t", {"q": 1}, "42", 3.5)
    session.refresh_from_db()
    assert session.tool_calls == 1  # the second step ran no tool
    assert (session.iteration, session.prompt_tokens, session.stage) == (2, 120, "reading")
    assert session.current_step_reasoning is None and session.context == PROGRESS["context"]


def test_a_step_that_collides_writes_nothing():
    session = make_session()
    session_step_record(session_id=session.pk, messages=[{"role": "user", "content": "a"}], first_seq=0, **PROGRESS)
    execution = {"tool_name": "t", "tool_id": None, "tool_call_id": "c", "iteration": 3, "arguments": {},
                 "result": "", "status": "ok", "error": "", "duration_ms": 1.0}
    # seq 0 is taken: a second writer of the same session (a savepoint keeps the test's transaction usable)
    with pytest.raises(IntegrityError), transaction.atomic():
        session_step_record(session_id=session.pk, messages=[{"role": "user", "content": "b"}], first_seq=0,
                            execution=execution, **{**PROGRESS, "iteration": 3})
    session.refresh_from_db()
    assert session.iteration == 2 and session.tool_calls == 0
    assert not ToolExecution.objects.filter(session=session).exists()


def test_a_step_needs_every_progress_field():
    session = make_session()
    with pytest.raises(TypeError):
        session_step_record(session_id=session.pk, messages=[], first_seq=0, iteration=1)


def _started(**create):
    """A session started on a fresh idle instance of a new template (with one user message)."""
    version = make_template().active_version
    instance = make_instance(version)
    create.setdefault("messages", [{"role": "user", "content": "hi"}])
    return version, instance, session_start(instance_id=instance.pk, template_version_id=version.pk, task="t",
                                            **create)


def test_start_and_end_move_session_and_instance_together():
    _, instance, session = _started()
    stored = Session.objects.get(pk=session.pk)
    assert (stored.state, stored.instance_id) == ("researching", instance.pk)
    assert AgentInstance.objects.get(pk=instance.pk).current_session_id == session.pk

    session_end(session_id=session.pk, instance_id=instance.pk, to="completed", result="done",
                memory_rss_bytes=123, **PROGRESS)
    stored.refresh_from_db()
    assert (stored.state, stored.execution_result, stored.iteration) == ("completed", "done", 2)
    instance.refresh_from_db()
    assert (instance.status, instance.sessions_served, instance.memory_rss_bytes) == ("idle", 1, 123)
    assert instance.current_session_id is None


def test_an_illegal_end_changes_neither_session_nor_instance():
    from platform_site.errors import InvalidTransition

    version, instance, session = _started()
    session_end(session_id=session.pk, instance_id=instance.pk, to="cancelled", error="cancelled")
    busy_again = make_instance(version, status="busy", current_session=session)
    with pytest.raises(InvalidTransition, match="cancelled to completed"):
        session_end(session_id=session.pk, instance_id=busy_again.pk, to="completed", result="late")
    assert Session.objects.get(pk=session.pk).state == "cancelled"
    busy_again.refresh_from_db()
    assert busy_again.status == "busy" and busy_again.sessions_served == 0


def _final_step(first_seq: int) -> dict:
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "f1", "type": "function", "function": {"name": "final_answer", "arguments": "{}"}}]}
    return {"messages": [call, {"role": "tool", "tool_call_id": "f1", "content": "done"}], "first_seq": first_seq,
            "execution": {"tool_name": "final_answer", "tool_id": None, "tool_call_id": "f1", "iteration": 2,
                          "arguments": {"answer": "done"}, "result": "done", "status": "ok", "error": "",
                          "duration_ms": 0.2}}


@pytest.mark.parametrize("to, error", [("completed", ""), ("failed", "the agent reported failure")])
def test_the_final_step_is_written_with_the_end(to, error):
    _, instance, session = _started()
    session_end(session_id=session.pk, instance_id=instance.pk, to=to, result="The answer.", error=error,
                final_step=_final_step(1), **PROGRESS)
    roles = list(SessionMessage.objects.filter(session=session).order_by("seq").values_list("seq", "role"))
    assert roles == [(0, "user"), (1, "assistant"), (2, "tool")]
    execution = ToolExecution.objects.get(session=session)
    assert (execution.tool_name, execution.result, execution.error, execution.status) == ("final_answer", "done", "", "ok")
    stored = Session.objects.get(pk=session.pk)  # the session's own result and error, not the tool's
    assert (stored.state, stored.tool_calls, stored.execution_result, stored.error) == (to, 1, "The answer.", error)


def test_a_refused_end_writes_none_of_its_final_step():
    from platform_site.errors import InvalidTransition

    _, instance, session = _started()
    session_end(session_id=session.pk, instance_id=instance.pk, to="cancelled", error="cancelled")
    with pytest.raises(InvalidTransition), transaction.atomic():
        session_end(session_id=session.pk, instance_id=instance.pk, to="completed", result="late",
                    final_step=_final_step(1), **PROGRESS)
    assert SessionMessage.objects.filter(session=session).count() == 1
    assert not ToolExecution.objects.filter(session=session).exists()


def test_a_start_on_a_busy_instance_writes_nothing():
    from platform_site.errors import InvalidTransition

    version, instance, first = _started()
    with pytest.raises(InvalidTransition, match="cannot go from busy to busy"):
        session_start(instance_id=instance.pk, template_version_id=version.pk, task="t2",
                      messages=[{"role": "user", "content": "hi again"}])
    assert list(Session.objects.values_list("pk", flat=True)) == [first.pk]
    assert SessionMessage.objects.count() == 1
    assert AgentInstance.objects.get(pk=instance.pk).current_session_id == first.pk


def test_a_started_session_has_the_model_defaults():
    _, instance, session = _started(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
                                    routing={"template": "x", "score": 0.9})
    stored = Session.objects.get(pk=session.pk)
    assert (stored.state, stored.depth, stored.context, stored.routing) == ("researching", 0, {}, session.routing)
    assert stored.created_at == session.created_at and stored.instance_id == instance.pk
    assert list(SessionMessage.objects.filter(session=stored).order_by("seq").values_list("seq", "role")) == [
        (0, "system"), (1, "user")]
    stored.save()  # the returned object is a saved row, not a new one
    assert Session.objects.filter(pk=session.pk).count() == 1


# Quotes, backslashes, braces, JSON in a string, non-Latin text, an emoji, nesting, empty content:
# what a JSON parameter must carry unchanged (an array of them once needed per-element escaping).
AWKWARD = [
    {"role": "system", "content": 'say "hi" \\ then {"a": [1, 2]} \\"quoted\\"'},
    {"role": "user", "content": "Привет, 世界 🙂\ttab\nnewline"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"id": "c'1", "type": "function", "function": {"name": "t", "arguments": '{"q": "a\\\\b"}'}}]},
    {"role": "tool", "tool_call_id": "c'1", "content": "[] {} , ; NULL null"},
]


def test_messages_are_stored_exactly_and_in_order_by_start_step_and_end():
    _, instance, session = _started(messages=AWKWARD)
    assert session_step_record(session_id=session.pk, messages=AWKWARD[::-1], first_seq=4, **PROGRESS) == 8
    session_end(session_id=session.pk, instance_id=instance.pk, to="completed", result="ok",
                final_step={"messages": AWKWARD[1:3], "first_seq": 8}, **PROGRESS)
    rows = list(SessionMessage.objects.filter(session=session).order_by("seq").values_list("seq", "role", "message"))
    expected = AWKWARD + AWKWARD[::-1] + AWKWARD[1:3]
    assert rows == [(i, m["role"], m) for i, m in enumerate(expected)]


def _waiting(**create):
    """A session that waits for the user's answer (its last step written with the wait), its instance idle."""
    messages = create.setdefault("messages", [{"role": "user", "content": "hi"}])
    version, instance, session = _started(**create)
    session_end(session_id=session.pk, instance_id=instance.pk, to="waiting_for_clarification", result="Which?",
                final_step=_final_step(len(messages)), **PROGRESS)
    return version, instance, session


def test_a_resume_moves_session_and_instance_and_appends_the_answer():
    from sessions_app.services import session_resume

    version, _, session = _waiting()
    other = make_instance(version)
    session_resume(session_id=session.pk, instance_id=other.pk, message={"role": "user", "content": "This one"})
    stored = Session.objects.get(pk=session.pk)
    assert (stored.state, stored.instance_id, stored.finished_at) == ("researching", other.pk, None)
    other.refresh_from_db()
    assert (other.status, other.current_session_id) == ("busy", session.pk)
    rows = list(SessionMessage.objects.filter(session=session).order_by("seq").values_list("seq", "message"))
    assert rows[-1] == (3, {"role": "user", "content": "This one"}) and len(rows) == 4


def test_a_resume_that_is_not_legal_writes_nothing():
    from platform_site.errors import InvalidTransition
    from sessions_app.errors import SessionNotFound
    from sessions_app.services import session_resume

    version, instance, session = _waiting()
    busy = make_instance(version, status="busy", current_session=make_session())
    answer = {"role": "user", "content": "This one"}
    with pytest.raises(InvalidTransition, match="cannot go from busy to busy"):
        session_resume(session_id=session.pk, instance_id=busy.pk, message=answer)
    assert Session.objects.get(pk=session.pk).state == "waiting_for_clarification"
    assert SessionMessage.objects.filter(session=session).count() == 3

    session_resume(session_id=session.pk, instance_id=instance.pk, message=answer)
    with pytest.raises(InvalidTransition, match="cannot go from researching to researching"):  # answered already
        session_resume(session_id=session.pk, instance_id=make_instance(version).pk, message=answer)
    assert SessionMessage.objects.filter(session=session).count() == 4
    with pytest.raises(SessionNotFound):
        session_resume(session_id="00000000-0000-0000-0000-000000000000", instance_id=instance.pk, message=answer)


def test_a_sessions_view_and_run_state_hold_what_was_written():
    from sessions_app.models import Source
    from sessions_app.selectors import session_get, session_run_state

    version, _, session = _waiting(messages=AWKWARD, routing={"template": "x", "score": 0.5})
    Source.objects.create(session_id=session.pk, number=2, url="https://b.example", title="B", snippet="s")
    Source.objects.create(session_id=session.pk, number=1, url="https://a.example", title='A "q" \\ b')
    view, messages, sources = session_run_state(session_id=session.pk)
    assert view == session_get(session_id=session.pk)
    stored = Session.objects.get(pk=session.pk)
    assert (view.template, view.template_version_id, view.version) == (version.template.name, version.pk, version.version)
    assert (view.state, view.context, view.current_step_reasoning, view.routing) == (
        "waiting_for_clarification", PROGRESS["context"], PROGRESS["current_step_reasoning"], {"template": "x", "score": 0.5})
    assert (view.created_at, view.updated_at, view.finished_at) == (stored.created_at, stored.updated_at, None)
    assert messages == AWKWARD + _final_step(4)["messages"]
    assert [(s["number"], s["url"], s["title"]) for s in sources] == [
        (1, "https://a.example", 'A "q" \\ b'), (2, "https://b.example", "B")]
    assert set(sources[0]) == {"number", "url", "title", "snippet", "full_content"}
