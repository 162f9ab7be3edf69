"""The dashboard: what happened over the last hour and day (messages by state, events received) with links
into the filtered lists, what waits now, raised alerts, and a sent/failed chart of the last 24 hours drawn as
inline SVG on the server."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Blueprint
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import page
from workers.core.lifecycle import State
from workers.store.browse import Browse

bp = Blueprint("dashboard", __name__)

HOUR, DAY = 3600.0, 86400.0
# Counted over the last hour and day: a message is counted in the state it is in now, by when it entered it.
RECENT = (State.SENT, State.DELIVERED, State.UNDELIVERED, State.FAILED, State.SUPPRESSED, State.REJECTED,
          State.EXPIRED, State.CANCELLED)
WAITING = (State.HELD, State.SCHEDULED, State.QUEUED, State.SENDING, State.UNKNOWN)
# Sent, in the chart, is every message that reached ClickSend (those whose receipt came since included).
SENT_LIKE = (State.SENT, State.DELIVERED, State.UNDELIVERED)


@dataclass(frozen=True)
class Bar:
    """One hour of the chart: its start, its counts and where its bars go (SVG units)."""

    start: float
    sent: int
    failed: int
    x: float
    sent_height: float
    failed_height: float


@dataclass(frozen=True)
class Chart:
    """The chart's bars, its size and its scale (the largest hour's count)."""

    bars: tuple[Bar, ...]
    width: float
    height: float
    top: int


def chart(starts: list[float], sent: list[int], failed: list[int], width: float = 480.0,
          height: float = 120.0) -> Chart:
    """Bars for each hour, sent and failed side by side, scaled so the busiest hour fills the height."""
    top = max([*sent, *failed, 1])
    step = width / max(1, len(starts))
    bars = tuple(Bar(start, s, f, round(i * step, 2), round(height * s / top, 2), round(height * f / top, 2))
                 for i, (start, s, f) in enumerate(zip(starts, sent, failed, strict=True)))
    return Chart(bars, width, height, top)


@bp.get("/", endpoint="page")
def dashboard() -> ResponseReturnValue:
    """Counts over the last hour and day, what waits, alerts and the chart."""
    store, now = runtime().store, time.time()
    browse = Browse(store.r)
    periods = {"hour": now - HOUR, "day": now - DAY}
    recent = {name: browse.entered_since(RECENT, since) for name, since in periods.items()}
    recent_events = {name: browse.events_since(since) for name, since in periods.items()}
    start = (now // HOUR) * HOUR - 23 * HOUR
    starts = [start + i * HOUR for i in range(24)]
    drawn = chart(starts, browse.per_bucket(SENT_LIKE, start, HOUR, 24),
                  browse.per_bucket((State.FAILED,), start, HOUR, 24))
    return page("dashboard.html", title="Dashboard", periods=periods, recent=recent, recent_events=recent_events,
                states=RECENT,
                waiting={s.value: n for s, n in zip(WAITING, _counts(store.messages.state_counts(), WAITING),
                                                    strict=True)},
                pending_events=store.events.pending_count(), alerts=store.account.alerts(), chart=drawn)


def _counts(all_counts: dict[str, int], states: tuple[State, ...]) -> list[int]:
    return [all_counts.get(s.value, 0) for s in states]
