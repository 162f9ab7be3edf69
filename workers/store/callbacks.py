"""Callback records: one per message and state, every attempt kept, exhausted ones listed for replay."""

from __future__ import annotations

import json
from typing import Any

import redis

from workers.core.records import CallbackRecord
from workers.store.counters import count_callback
from workers.store.keys import (
    CALLBACKS_EXHAUSTED,
    CALLBACKS_PENDING,
    available,
    callback_key,
    message_callbacks_key,
    text,
    texts,
)

CALLBACK_TTL = 30 * 86400


_CREATE = """
if redis.call('HSETNX', KEYS[1], 'doc', ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'pending')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""


class CallbackRecords:
    """Callback records."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._create_cb = r.register_script(_CREATE)

    def create_callback(self, callback_id: str, record: dict[str, Any], now: float) -> bool:
        """Create the record unless it exists (the same message and state never calls back twice), and list
        it as pending, so a crash before its job is enqueued is caught by the sweep."""
        doc = json.dumps(record, separators=(",", ":"))
        with available():
            return bool(self._create_cb(
                keys=[callback_key(callback_id), message_callbacks_key(record["message_id"]), CALLBACKS_PENDING],
                args=[callback_id, doc, CALLBACK_TTL, now]))

    def overdue_callbacks(self, before: float, limit: int = 500) -> list[str]:
        """Pending callbacks whose next attempt was due before `before` (their job was lost)."""
        with available():
            return texts(self.r.zrangebyscore(CALLBACKS_PENDING, "-inf", before, start=0, num=limit))

    def lock_callback(self, callback_id: str, seconds: float) -> bool:
        """One attempt at a time per callback (a swept duplicate job must not send it twice)."""
        with available():
            return bool(self.r.set(f"{callback_key(callback_id)}:lock", 1, nx=True, ex=max(1, int(seconds))))

    def unlock_callback(self, callback_id: str) -> None:
        """Release the attempt lock."""
        with available():
            self.r.delete(f"{callback_key(callback_id)}:lock")

    def get_callback(self, callback_id: str) -> CallbackRecord | None:
        """The record: what to send, its status and every attempt."""
        with available():
            raw = self.r.hgetall(callback_key(callback_id))
        if not raw or "doc" not in raw:
            return None
        doc = json.loads(raw["doc"])
        return CallbackRecord(
            id=callback_id, message_id=doc["message_id"], event_id=doc.get("event_id"), source=doc["source"],
            state=doc["state"], created_at=float(doc["created_at"]), status=text(raw.get("status", "pending")),
            attempts=tuple(json.loads(raw.get("attempts", "[]"))), receipt=doc.get("receipt"),
            reply=doc.get("reply"), replayed=raw.get("replayed") == "1")

    def record_attempt(self, callback_id: str, attempt: dict[str, Any], status: str, now: float,
                       next_at: float | None = None, counted: tuple[str, str] | None = None) -> None:
        """Append an attempt and set the status (`pending` with its `next_at`, `delivered`, `failed`, `exhausted`);
        `counted` (source, result) adds the attempt to the callback counter in the same transaction."""
        key = callback_key(callback_id)
        with available():
            attempts = json.loads(self.r.hget(key, "attempts") or "[]")
            attempts.append(attempt)
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(key, mapping={"attempts": json.dumps(attempts), "status": status})
            if counted is not None:
                count_callback(pipe, *counted)
            if status in ("exhausted", "failed"):
                pipe.zadd(CALLBACKS_EXHAUSTED, {callback_id: now})
            else:
                pipe.zrem(CALLBACKS_EXHAUSTED, callback_id)
            if status == "pending":
                pipe.zadd(CALLBACKS_PENDING, {callback_id: next_at if next_at is not None else now})
            else:
                pipe.zrem(CALLBACKS_PENDING, callback_id)
            pipe.execute()

    def reopen_callback(self, callback_id: str) -> bool:
        """Make an exhausted or failed callback pending again (replay); attempts are kept."""
        key = callback_key(callback_id)
        with available():
            if not self.r.exists(key):
                return False
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(key, mapping={"status": "pending", "replayed": "1"})
            pipe.zrem(CALLBACKS_EXHAUSTED, callback_id)
            pipe.zadd(CALLBACKS_PENDING, {callback_id: 0})
            pipe.execute()
        return True

    def forget_callback(self, callback_id: str) -> None:
        """Drop a callback whose record has expired from the pending and exhausted lists."""
        with available():
            pipe = self.r.pipeline(transaction=False)
            pipe.zrem(CALLBACKS_PENDING, callback_id)
            pipe.zrem(CALLBACKS_EXHAUSTED, callback_id)
            pipe.execute()

    def trim_exhausted(self, before: float) -> int:
        """Forget exhausted callbacks listed before `before` (their records expire after CALLBACK_TTL)."""
        with available():
            return int(self.r.zremrangebyscore(CALLBACKS_EXHAUSTED, "-inf", before))

    def exhausted_callbacks(self, limit: int = 100) -> list[str]:
        """Callbacks that gave up, oldest first."""
        with available():
            return texts(self.r.zrange(CALLBACKS_EXHAUSTED, 0, limit - 1))

    def exhausted_count(self) -> int:
        """How many callbacks gave up and wait for a replay."""
        with available():
            return int(self.r.zcard(CALLBACKS_EXHAUSTED))

    def message_callback_ids(self, message_id: str) -> list[str]:
        """The callbacks of a message."""
        with available():
            return sorted(texts(self.r.smembers(message_callbacks_key(message_id))))
