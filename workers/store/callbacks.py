"""Callback records: one per message and state, every attempt kept, exhausted ones listed for replay."""

from __future__ import annotations

import json
from typing import Any

import redis

from workers.store.keys import CALLBACKS_EXHAUSTED, available, callback_key, message_callbacks_key

CALLBACK_TTL = 30 * 86400


class CallbackRecords:
    """Callback records (mixed into Store)."""

    r: redis.Redis

    def create_callback(self, callback_id: str, record: dict[str, Any]) -> bool:
        """Create the record unless it exists (the same message and state never calls back twice)."""
        key = callback_key(callback_id)
        doc = json.dumps(record, separators=(",", ":"))
        pipe = self.r.pipeline(transaction=True)
        pipe.hsetnx(key, "doc", doc)
        pipe.hsetnx(key, "status", "pending")
        pipe.expire(key, CALLBACK_TTL)
        pipe.sadd(message_callbacks_key(record["message_id"]), callback_id)
        with available():
            created = pipe.execute()[0]
        return bool(created)

    def get_callback(self, callback_id: str) -> dict[str, Any] | None:
        """The record: what to send, its status and every attempt."""
        with available():
            raw = self.r.hgetall(callback_key(callback_id))
        if not raw or "doc" not in raw:
            return None
        doc = json.loads(raw["doc"])
        doc.update({"id": callback_id, "status": raw.get("status", "pending"),
                    "attempts": json.loads(raw.get("attempts", "[]"))})
        return doc

    def record_attempt(self, callback_id: str, attempt: dict[str, Any], status: str, now: float) -> None:
        """Append an attempt and set the status (`pending`, `delivered`, `failed`, `exhausted`)."""
        key = callback_key(callback_id)
        with available():
            attempts = json.loads(self.r.hget(key, "attempts") or "[]")
            attempts.append(attempt)
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(key, mapping={"attempts": json.dumps(attempts), "status": status})
            if status in ("exhausted", "failed"):
                pipe.zadd(CALLBACKS_EXHAUSTED, {callback_id: now})
            else:
                pipe.zrem(CALLBACKS_EXHAUSTED, callback_id)
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
            pipe.execute()
        return True

    def exhausted_callbacks(self, limit: int = 100) -> list[str]:
        """Callbacks that gave up, oldest first."""
        with available():
            return self.r.zrange(CALLBACKS_EXHAUSTED, 0, limit - 1)

    def message_callback_ids(self, message_id: str) -> list[str]:
        """The callbacks of a message."""
        with available():
            return sorted(self.r.smembers(message_callbacks_key(message_id)))
