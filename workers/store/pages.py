"""Newest-first pages over the store's sorted-set indexes, with opaque cursors and a bounded scan per page.

Owns the walk down one index (or several merged), the cursor that says where a page stopped, and the scan
that applies filters no index answers, examining at most a budget of entries per page. Knows nothing of what
the indexes hold: the event and message repositories pass their keys, loaders and filters in.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

import redis

from workers.store.keys import available, text

T = TypeVar("T")

MAX_LIMIT = 500
"""The most items one page may hold."""

SCAN_BUDGET = 2000
"""The most index entries one page examines when a filter has to look at records: a page may then hold fewer
than `limit` items (even none) with a `next` cursor to go on from; the scan never grows with the store."""

# KEYS: the index. ARGV: max score ('+inf' or a score), the cursor's member ('' for none: max inclusive),
# min score, n. Up to n (member, score) pairs, flat, after the cursor in (score desc, member desc) order.
# While the cursor's member is still at its score, its rank says where to go on (O(log N) whatever the ties);
# when it has left (its message changed state), the ties at that score that sort after it come first.
_AFTER = """
local key, max, member, min, n = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if member == '' then
  return redis.call('ZREVRANGEBYSCORE', key, max, min, 'WITHSCORES', 'LIMIT', 0, n)
end
local score = redis.call('ZSCORE', key, member)
if score and tonumber(score) == tonumber(max) then
  local rank = redis.call('ZREVRANK', key, member)
  return redis.call('ZREVRANGE', key, rank + 1, rank + n, 'WITHSCORES')
end
local out = {}
local ties = redis.call('ZREVRANGEBYSCORE', key, max, max, 'WITHSCORES')
for i = 1, #ties, 2 do
  if #out < 2 * n and ties[i] < member then
    table.insert(out, ties[i])
    table.insert(out, ties[i + 1])
  end
end
if #out < 2 * n then
  for _, v in ipairs(redis.call('ZREVRANGEBYSCORE', key, '(' .. max, min, 'WITHSCORES', 'LIMIT', 0, n - #out / 2)) do
    table.insert(out, v)
  end
end
return out
"""


# A member that sorts after every real one: a position at `until` with it includes all entries at `until`.
_ALL_AT = "\U0010ffff"


@dataclass(frozen=True, order=True)
class Position:
    """Where a page stopped: the last entry it examined (its score, then its member, both descending)."""

    score: float
    member: str

    def cursor(self) -> str:
        """The opaque, URL-safe cursor for this position."""
        raw = json.dumps([repr(self.score), self.member], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_cursor(cls, cursor: str) -> Position:
        """The position a cursor names; ValueError when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            score, member = json.loads(raw)
            position = cls(float(score), str(member))
        except (ValueError, TypeError) as exc:
            raise ValueError("cursor is not one this API gave out") from exc
        if position.score != position.score or position.score in (float("inf"), float("-inf")):
            raise ValueError("cursor is not one this API gave out")
        return position


@dataclass(frozen=True)
class Window:
    """Which stretch of an index a page reads: after `after` (or from the newest), within [since, until]."""

    after: Position | None = None
    since: float | None = None
    until: float | None = None

    def start(self) -> Position | None:
        """Where the walk begins: the cursor, or just above `until`, whichever is older."""
        if self.until is None:
            return self.after
        top = Position(self.until, _ALL_AT)
        return top if self.after is None or self.after > top else self.after

    def holds(self, position: Position) -> bool:
        """True when `position` is within the window (the walk starts within it already)."""
        return self.since is None or position.score >= self.since


@dataclass(frozen=True)
class Page(Generic[T]):
    """Items newest first, and where the next page starts (None at the end)."""

    items: tuple[T, ...]
    next: Position | None


class Walker:
    """Walks sorted-set indexes newest first, in chunks."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._after = r.register_script(_AFTER)

    def walk(self, key: str, window: Window, chunk: int) -> Iterator[Position]:
        """Every entry of `key` within `window`, newest first, fetched `chunk` at a time."""
        position = window.start()
        low = "-inf" if window.since is None else repr(window.since)
        while True:
            top = "+inf" if position is None else repr(position.score)
            member = "" if position is None or position.member == _ALL_AT else position.member
            flat = self._fetch(key, top, member, low, chunk)
            entries = [Position(float(flat[i + 1]), text(flat[i])) for i in range(0, len(flat), 2)]
            entries = [e for e in entries if window.holds(e)]
            yield from entries
            if len(entries) < chunk:
                return
            position = entries[-1]

    def _fetch(self, key: str, top: str, member: str, low: str, n: int) -> list[str]:
        with available():
            return list(self._after(keys=[key], args=[top, member, low, n]))

    def merged(self, keys: Sequence[str], window: Window, chunk: int) -> Iterator[Position]:
        """The entries of several indexes as one walk, newest first."""
        if len(keys) == 1:
            return self.walk(keys[0], window, chunk)
        return heapq.merge(*(self.walk(k, window, chunk) for k in keys), reverse=True)


def scan(entries: Iterator[Position], load: Callable[[list[Position]], list[T | None]], limit: int,
         chunk: int, budget: int | None = None) -> Page[T]:
    """Up to `limit` items from `entries`, loaded `chunk` at a time by `load` (None: skip it, deleted or
    filtered out), examining at most `budget` entries; the page's `next` is where it stopped, None when
    nothing is left to examine."""
    budget = budget or SCAN_BUDGET
    items: list[T] = []
    examined = 0
    while True:
        group = list(islice(entries, min(chunk, budget - examined)))
        if not group:
            return Page(tuple(items), None)
        for i, item in enumerate(load(group)):
            examined += 1
            if item is not None:
                items.append(item)
            if len(items) == limit or (examined == budget and i == len(group) - 1):
                more = i < len(group) - 1 or next(entries, None) is not None
                return Page(tuple(items), group[i] if more else None)
