"""The lifecycle table says what the architecture's diagram says."""

from workers.core.lifecycle import CANCELLABLE, TRANSITIONS, State, sources_of


def test_final_states_go_nowhere() -> None:
    for state in (State.DELIVERED, State.UNDELIVERED, State.FAILED, State.SUPPRESSED, State.REJECTED,
                  State.EXPIRED, State.CANCELLED):
        assert TRANSITIONS[state] == frozenset()


def test_only_a_sent_message_can_be_delivered_or_undelivered() -> None:
    assert sources_of(State.DELIVERED) == {State.SENT}
    assert sources_of(State.UNDELIVERED) == {State.SENT}


def test_cancel_stops_only_what_is_not_yet_sending() -> None:
    assert sources_of(State.CANCELLED) == CANCELLABLE
    assert State.SENDING not in CANCELLABLE


def test_an_unknown_outcome_is_resolved_only_by_reconciliation() -> None:
    assert sources_of(State.UNKNOWN) == {State.SENDING}
    assert TRANSITIONS[State.UNKNOWN] == {State.SENT, State.QUEUED, State.FAILED}


def test_approval_decisions_leave_held() -> None:
    assert {State.REJECTED, State.EXPIRED, State.SCHEDULED} <= TRANSITIONS[State.HELD]
    assert sources_of(State.REJECTED) == {State.HELD}
