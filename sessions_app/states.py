"""State machines as data: the allowed transitions of sessions and instances."""

from sessions_app.models import InstanceStatus as I
from sessions_app.models import SessionState as S

SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    S.INITED: frozenset({S.RESEARCHING, S.FAILED, S.CANCELLED}),
    S.RESEARCHING: frozenset({S.WAITING_FOR_CLARIFICATION, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.WAITING_FOR_CLARIFICATION: frozenset({S.RESEARCHING, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
SESSION_TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
SESSION_ACTIVE = frozenset({S.INITED, S.RESEARCHING, S.WAITING_FOR_CLARIFICATION})

INSTANCE_TRANSITIONS: dict[str, frozenset[str]] = {
    I.IDLE: frozenset({I.BUSY, I.STOPPED}),
    I.BUSY: frozenset({I.RESETTING, I.STOPPED}),
    I.RESETTING: frozenset({I.IDLE, I.STOPPED}),
    I.STOPPED: frozenset(),
}


def sources_of(transitions: dict[str, frozenset[str]], to: str) -> list[str]:
    """The states of ``transitions`` that may go to ``to`` (a compare-and-set's ``WHERE`` list)."""
    return [state for state, targets in transitions.items() if to in targets]
