"""Which changes keep Hookline's suppression list and ClickSend's opt-out list in step (pure: no I/O).

Each side is described by every number's latest known change there: suppressed or lifted, and when. Where
the two sides disagree the later change wins and is carried to the other side; on equal times, or where a
side's time is only known to lie in an interval (a contact that vanished from ClickSend's list between two
syncs), the reading that keeps the number suppressed is taken: a STOP must never be lost to a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Side(Enum):
    """Where a change must be applied."""

    LOCAL = "local"  # Hookline's suppression list
    REMOTE = "remote"  # ClickSend's opt-out list


@dataclass(frozen=True)
class Known:
    """A number's latest known change on one side."""

    present: bool  # suppressed / on the opt-out list
    at: float  # when (Unix seconds)
    via: str  # who made it: reply, operator, clicksend, api...


@dataclass(frozen=True)
class Step:
    """Make `number` `present` (or not) on `side`, as the winning change from the other side says."""

    number: str
    side: Side
    present: bool
    at: float
    via: str


def remote_states(present: dict[str, float], previous: dict[str, float]) -> dict[str, Known]:
    """ClickSend's side from what its list holds now and what it held at the last sync.

    `present`: number → when its contact was added (ClickSend's `date_added`). `previous`: number → when the
    last sync saw it there. A number seen last time and gone now was removed at some moment since; its
    removal is dated at the earliest (when it was last seen), so a suppression on our side made in between
    is kept.
    """
    states = {n: Known(False, seen, "clicksend") for n, seen in previous.items() if n not in present}
    states.update({n: Known(True, added, "clicksend") for n, added in present.items()})
    return states


def reconcile(local: dict[str, Known], remote: dict[str, Known]) -> list[Step]:
    """The steps that bring both sides to the newest change of each number, numbers in order."""
    steps = []
    for number in sorted(set(local) | set(remote)):
        mine, theirs = local.get(number), remote.get(number)
        if (mine.present if mine else False) == (theirs.present if theirs else False):
            continue
        if theirs is None or (mine is not None and _wins(mine, theirs)):
            assert mine is not None
            steps.append(Step(number, Side.REMOTE, mine.present, mine.at, mine.via))
        else:
            steps.append(Step(number, Side.LOCAL, theirs.present, theirs.at, theirs.via))
    return steps


def _wins(a: Known, b: Known) -> bool:
    # The later change wins; on a tie the suppression does.
    return a.at > b.at or (a.at == b.at and a.present)
