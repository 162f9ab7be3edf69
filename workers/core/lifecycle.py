"""The message lifecycle: states and the transitions allowed between them (the store applies them with CAS).

Pure: a table and a helper.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a message is in its life."""

    PLANNED = "planned"
    HELD = "held"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.PLANNED: frozenset({S.HELD, S.SCHEDULED, S.QUEUED, S.SUPPRESSED, S.FAILED, S.CANCELLED}),
    S.HELD: frozenset({S.SCHEDULED, S.QUEUED, S.REJECTED, S.EXPIRED, S.CANCELLED}),
    # A deferred message is checked again when due, so it may be held or suppressed then.
    S.SCHEDULED: frozenset({S.QUEUED, S.HELD, S.SUPPRESSED, S.FAILED, S.CANCELLED, S.SCHEDULED}),
    S.QUEUED: frozenset({S.SENDING, S.CANCELLED, S.FAILED}),
    # Back to queued: a 429 or an outage puts the message back without spending its retry budget;
    # to scheduled: THROTTLED or a provider-side error retries it later, spending one retry.
    S.SENDING: frozenset({S.SENT, S.FAILED, S.UNKNOWN, S.QUEUED, S.SCHEDULED}),
    S.UNKNOWN: frozenset({S.SENT, S.QUEUED, S.FAILED}),
    S.SENT: frozenset({S.DELIVERED, S.UNDELIVERED}),
    S.DELIVERED: frozenset(),
    S.UNDELIVERED: frozenset(),
    S.FAILED: frozenset(),
    S.SUPPRESSED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
}

# States an originating system can be told about (a source's `callback.on`, besides replies).
REPORTED = frozenset({S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED, S.SUPPRESSED, S.REJECTED, S.EXPIRED})

# States from which cancel or replace by key still stop a message.
CANCELLABLE = frozenset({S.PLANNED, S.HELD, S.SCHEDULED, S.QUEUED})


def sources_of(target: State) -> frozenset[State]:
    """Every state from which `target` may be reached."""
    return frozenset(state for state, nexts in TRANSITIONS.items() if target in nexts)
