"""What the operator pages count and page through that no repository answers: how many messages entered
each state since a time, those counts per hour for the dashboard's chart, and a newest-first page of one
state's index. Reads only; knows nothing of HTTP."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from workers.core.lifecycle import State
from workers.store.keys import available, state_index_key, texts


@dataclass(frozen=True)
class StatePage:
    """Ids newest first (by when each entered the state) and the offset of the next page (None at the end)."""

    ids: tuple[str, ...]
    next_offset: int | None


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

    def newest_in_state(self, state: State, limit: int, offset: int = 0, since: float | None = None,
                        until: float | None = None) -> StatePage:
        """A page of `state`'s ids, newest first, within [since, until], starting `offset` entries in."""
        low = "-inf" if since is None else repr(since)
        high = "+inf" if until is None else repr(until)
        with available():
            found = texts(self.r.zrevrangebyscore(state_index_key(state), high, low, start=offset, num=limit + 1))
        more = len(found) > limit
        return StatePage(tuple(found[:limit]), offset + limit if more else None)
