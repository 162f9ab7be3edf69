"""Policy records: a duplicate marker belongs to the message that took it."""

from __future__ import annotations

from workers.entry.runtime import Runtime


def test_a_duplicate_marker_is_lifted_only_by_the_message_that_holds_it(runtime: Runtime) -> None:
    store = runtime.store
    assert store.reservations.claim_duplicate("d1", 60, "msg_a")
    assert not store.reservations.claim_duplicate("d1", 60, "msg_b")  # someone else holds it
    store.reservations.release_duplicate("d1", "msg_b")  # msg_b never took it: nothing happens
    assert store.reservations.is_duplicate("d1")
    store.reservations.release_duplicate("d1", "msg_a")
    assert not store.reservations.is_duplicate("d1")
