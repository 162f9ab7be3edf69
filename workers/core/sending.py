"""What to do with each outcome of a send: per-message statuses, provider errors, and backoff.

Pure: randomness is passed in as `rand`.
"""

from __future__ import annotations

import random
from enum import StrEnum


class Step(StrEnum):
    """What happens to a message after a send attempt."""

    SENT = "sent"  # accepted by ClickSend; delivery receipts follow
    FAIL = "fail"  # permanent: keep the message, record why
    RETRY = "retry"  # try this message again later (spends its retry budget)
    PAUSE = "pause"  # put it back and stop the outbox (no credit, bad credentials)
    RECONCILE = "reconcile"  # outcome unknown: look it up in history before any resend


# Per-message `status` values (fact sheet §4). Anything not listed is a permanent failure.
_RETRY = {"THROTTLED", "INTERNAL_ERROR", "SOMETHING_IS_WRONG"}
_PAUSE = {"INSUFFICIENT_CREDIT", "INVALID_CREDENTIALS", "MISSING_CREDENTIALS", "ACCOUNT_NOT_ACTIVATED"}


def classify(status: str | None) -> Step:
    """The action for one message's status in a send reply (None: the reply did not mention it)."""
    if status is None:
        return Step.RECONCILE
    status = status.upper()
    if status == "SUCCESS":
        return Step.SENT
    if status in _RETRY:
        return Step.RETRY
    if status in _PAUSE:
        return Step.PAUSE
    return Step.FAIL


def backoff(attempt: int, base: float = 2.0, cap: float = 300.0, rand: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: a random delay in [base, min(cap, base·2^attempt)]."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt))
    return base + (ceiling - base) * (rand or random).random()
