"""The suppression list in Redis: numbers (E.164) that receive nothing, with when, how and why; the numbers
whose suppression was lifted, with when and by whom; a journal of the latest changes; and what the opt-out
sync last saw on ClickSend's opt-out list.

Owns those keys and the atomic "apply this change unless a newer one is already recorded" step; it does not
decide what the sync should change (`workers.core.optoutsync` does) nor talk to ClickSend.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from workers.store.keys import (
    OPTOUTS,
    OPTOUTS_CHANGES,
    OPTOUTS_LIFTED,
    OPTOUTS_REMOTE,
    OPTOUTS_SYNC_LEASE,
    available,
    text,
)

JOURNAL_LENGTH = 1000  # changes kept in the journal

# KEYS: suppressed, lifted, journal. ARGV: number, 1 add / 0 lift, at, the record, the journal entry, length.
# A change applies only when it is newer than the number's latest recorded change on this side; on equal
# times the suppression wins. Returns 1 when applied, 0 when a newer (or the same) state is already there.
APPLY_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
local lifted = redis.call('HGET', KEYS[2], ARGV[1])
local at = tonumber(ARGV[3])
if ARGV[2] == '1' then
  if current then return 0 end
  if lifted and tonumber(cjson.decode(lifted)['at']) > at then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  if not current then return 0 end
  if tonumber(cjson.decode(current)['since']) >= at then return 0 end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('LPUSH', KEYS[3], ARGV[5])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
return 1
"""

# KEYS: the sync lease. ARGV: our token. Deletes the lease only while it is still ours.
RELEASE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class LocalState:
    """A number's latest change on Hookline's side: suppressed (`present`) or lifted, when, and by whom."""

    present: bool
    at: float
    via: str


class OptoutRecords:
    """The suppression list, its lifted numbers, the change journal and the sync's view of ClickSend's list."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._apply = r.register_script(APPLY_IF_NEWER)
        self._release = r.register_script(RELEASE_IF_OURS)

    def opt_out(self, number: str, now: float, via: str, detail: str = "") -> None:
        """Suppress every future message to `number`."""
        with available():
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(OPTOUTS, number, json.dumps({"since": now, "via": via, "detail": detail}))
            pipe.hdel(OPTOUTS_LIFTED, number)
            self._journal(pipe, number, "add", now, via, detail)
            pipe.execute()

    def opt_in(self, number: str, now: float | None = None, via: str = "operator", detail: str = "") -> bool:
        """Lift the suppression of `number`; True if it was suppressed. The lifting is recorded (at `now`, by
        default Redis's clock) even when it was not, so the sync lifts it on ClickSend's list too."""
        with available():
            at = now if now is not None else _redis_now(self.r)
            pipe = self.r.pipeline(transaction=True)
            pipe.hdel(OPTOUTS, number)
            pipe.hset(OPTOUTS_LIFTED, number, json.dumps({"at": at, "via": via, "detail": detail}))
            self._journal(pipe, number, "remove", at, via, detail)
            return bool(pipe.execute()[0])

    def apply_if_newer(self, number: str, present: bool, at: float, via: str, detail: str = "") -> bool:
        """Suppress (`present`) or lift `number` as of `at`, unless this side already has a change as new or
        newer (a STOP that arrived while the sync ran is never undone by an older removal). True if applied."""
        record = {"since": at, "via": via, "detail": detail} if present else {"at": at, "via": via, "detail": detail}
        entry = _entry(number, "add" if present else "remove", at, via, detail)
        with available():
            return bool(self._apply(keys=[OPTOUTS, OPTOUTS_LIFTED, OPTOUTS_CHANGES],
                                    args=[number, int(present), at, json.dumps(record), entry, JOURNAL_LENGTH]))

    def opted_out(self, numbers: list[str]) -> set[str]:
        """Which of `numbers` are suppressed."""
        if not numbers:
            return set()
        with available():
            flags = self.r.hmget(OPTOUTS, numbers)
        return {n for n, f in zip(numbers, flags, strict=True) if f is not None}

    def optouts(self) -> dict[str, Any]:
        """The whole suppression list."""
        with available():
            return {text(k): json.loads(v) for k, v in self.r.hgetall(OPTOUTS).items()}

    def lifted(self) -> dict[str, Any]:
        """Every number whose suppression was lifted, with when and by whom."""
        with available():
            return {text(k): json.loads(v) for k, v in self.r.hgetall(OPTOUTS_LIFTED).items()}

    def local_states(self) -> dict[str, LocalState]:
        """Every number's latest change on Hookline's side (suppressed or lifted)."""
        states = {n: LocalState(False, float(v["at"]), str(v.get("via") or "")) for n, v in self.lifted().items()}
        states.update({n: LocalState(True, float(v["since"]), str(v.get("via") or ""))
                       for n, v in self.optouts().items()})
        return states

    def note_remote(self, number: str, action: str, at: float, via: str) -> None:
        """Journal a change the sync made on ClickSend's list (`action` add/remove, as of the change it carries)."""
        with available():
            pipe = self.r.pipeline(transaction=True)
            self._journal(pipe, number, action, at, via, "carried to ClickSend's opt-out list", side="clicksend")
            pipe.execute()

    def changes(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest changes, newest first: number, side, action (add/remove), at, via, detail."""
        with available():
            return [json.loads(v) for v in self.r.lrange(OPTOUTS_CHANGES, 0, limit - 1)]

    # --- the sync's memory of ClickSend's list ------------------------------------------------------------

    def remote_snapshot(self) -> dict[str, dict[str, Any]]:
        """The numbers on ClickSend's opt-out list at the last sync: {number: {contact_ids, seen_at}}."""
        with available():
            return {text(k): json.loads(v) for k, v in self.r.hgetall(OPTOUTS_REMOTE).items()}

    def save_remote_snapshot(self, snapshot: dict[str, dict[str, Any]]) -> None:
        """Replace the remembered view of ClickSend's list."""
        with available():
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(OPTOUTS_REMOTE)
            if snapshot:
                pipe.hset(OPTOUTS_REMOTE, mapping={k: json.dumps(v) for k, v in snapshot.items()})
            pipe.execute()

    def claim_sync(self, seconds: float) -> str | None:
        """A token when no other sync runs (the claim lapses after `seconds`), else None."""
        token = uuid.uuid4().hex
        with available():
            return token if self.r.set(OPTOUTS_SYNC_LEASE, token, nx=True, px=int(seconds * 1000)) else None

    def release_sync(self, token: str) -> None:
        """Give the claim back (only our own: one that lapsed and was taken by another sync stays theirs)."""
        with available():
            self._release(keys=[OPTOUTS_SYNC_LEASE], args=[token])

    @staticmethod
    def _journal(pipe: Any, number: str, action: str, at: float, via: str, detail: str, side: str = "hookline") -> None:
        pipe.lpush(OPTOUTS_CHANGES, _entry(number, action, at, via, detail, side))
        pipe.ltrim(OPTOUTS_CHANGES, 0, JOURNAL_LENGTH - 1)


def _entry(number: str, action: str, at: float, via: str, detail: str, side: str = "hookline") -> str:
    # `side`: whose list changed (hookline's suppression list, or ClickSend's opt-out list).
    return json.dumps({"number": number, "action": action, "at": at, "via": via, "detail": detail, "side": side})


def _redis_now(r: redis.Redis) -> float:
    # Callers that pass no time (the API, the CLI) share Redis's clock rather than each their own.
    seconds, micros = r.time()
    return float(seconds) + micros / 1e6
