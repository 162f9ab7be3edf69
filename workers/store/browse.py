"""What the operator pages count that no repository answers: how many messages entered each state since a
time (and those counts per hour, for the dashboard's chart), and how many events were received since a time.
Reads only; knows nothing of HTTP."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from workers.core.lifecycle import State
from workers.store.keys import EVENTS_BY_TIME, available, state_index_key


class Browse:
    """Counts and pages over the state indexes (each scores a message by when it entered its state)."""

    def __init__(self, r: redis.Redis):
        self.r = r

    def entered_since(self, states: Iterable[State], since: float) -> dict[str, int]:
        """How many messages entered each of `states` at `since` or later and are still in it."""
        states = list(states)
        pipe = self.r.pipeline(transaction=False)
        for state in states:
            pipe.zcount(state_index_key(state), since, "+inf")
        with available():
            return {s.value: int(n) for s, n in zip(states, pipe.execute(), strict=True)}

    def events_since(self, since: float) -> int:
        """How many stored events were received at `since` or later."""
        with available():
            return int(self.r.zcount(EVENTS_BY_TIME, since, "+inf"))

    def per_bucket(self, states: Iterable[State], start: float, width: float, buckets: int) -> list[int]:
        """For `buckets` consecutive spans of `width` seconds from `start`: how many messages entered one of
        `states` in each span and are still in it."""
        states = list(states)
        pipe = self.r.pipeline(transaction=False)
        for i in range(buckets):
            low, high = start + i * width, start + (i + 1) * width
            for state in states:
                pipe.zcount(state_index_key(state), low, f"({high!r}")
        with available():
            flat = [int(n) for n in pipe.execute()]
        per = len(states)
        return [sum(flat[i * per:(i + 1) * per]) for i in range(buckets)]
