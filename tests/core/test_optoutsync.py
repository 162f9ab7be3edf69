"""Deciding the opt-out sync's steps: the later change wins, ties and unknowable orders keep the suppression."""

from __future__ import annotations

from workers.core.optoutsync import Known, Side, Step, reconcile, remote_states

N = "+61411111111"


def test_agreeing_sides_need_nothing() -> None:
    assert reconcile({N: Known(True, 5, "reply")}, {N: Known(True, 9, "clicksend")}) == []
    assert reconcile({N: Known(False, 5, "operator")}, {}) == []  # lifted here, never on ClickSend's list


def test_a_side_that_never_knew_the_number_takes_the_other_sides_suppression() -> None:
    assert reconcile({N: Known(True, 5, "reply")}, {}) == [Step(N, Side.REMOTE, True, 5, "reply")]
    assert reconcile({}, {N: Known(True, 7, "clicksend")}) == [Step(N, Side.LOCAL, True, 7, "clicksend")]


def test_the_later_change_wins_either_way() -> None:
    assert reconcile({N: Known(False, 9, "operator")}, {N: Known(True, 7, "clicksend")}) == [
        Step(N, Side.REMOTE, False, 9, "operator")]
    assert reconcile({N: Known(False, 5, "operator")}, {N: Known(True, 7, "clicksend")}) == [
        Step(N, Side.LOCAL, True, 7, "clicksend")]


def test_a_tie_keeps_the_suppression() -> None:
    assert reconcile({N: Known(False, 7, "operator")}, {N: Known(True, 7, "clicksend")}) == [
        Step(N, Side.LOCAL, True, 7, "clicksend")]
    assert reconcile({N: Known(True, 7, "reply")}, {N: Known(False, 7, "clicksend")}) == [
        Step(N, Side.REMOTE, True, 7, "reply")]


def test_a_number_gone_from_clicksend_is_dated_when_it_was_last_seen() -> None:
    states = remote_states({"+61422222222": 50.0}, {N: 40.0, "+61422222222": 40.0})
    assert states == {N: Known(False, 40.0, "clicksend"), "+61422222222": Known(True, 50.0, "clicksend")}
