"""Stored events and callbacks as values: what the store hands back about an event's processing and about a
callback's attempts. Pure; built only by `store.events` and `store.callbacks`. `to_json` is what the API,
the trace and callback templates show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.core.events import Event


@dataclass(frozen=True)
class EventRecord:
    """An accepted event and what processing made of it (`received`, `processed` or `failed`)."""

    event: Event
    status: str = "received"
    processed_at: float | None = None
    failed_at: float | None = None
    rules: tuple[str, ...] | None = None  # the rules that matched, once processed
    messages: int | None = None  # how many messages they planned
    error: str | None = None  # why planning failed

    @property
    def id(self) -> str:
        """The event's id."""
        return self.event.id

    def to_json(self) -> dict[str, Any]:
        """The event document with its processing status and details."""
        out = self.event.to_dict() | {"status": self.status}
        for name in ("processed_at", "failed_at", "messages", "error"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.rules is not None:
            out["rules"] = list(self.rules)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventRecord:
        """Read a stored record (the document with the status fields beside it)."""
        rules = data.get("rules")
        return cls(Event.from_dict(data), str(data.get("status") or "received"), data.get("processed_at"),
                   data.get("failed_at"), tuple(rules) if rules is not None else None, data.get("messages"),
                   data.get("error"))


@dataclass(frozen=True)
class CallbackRecord:
    """One callback to an originating system: which message and state it reports, and every attempt."""

    id: str
    message_id: str
    event_id: str | None
    source: str
    state: str  # a reported message state, or `reply`
    created_at: float
    status: str = "pending"  # pending | delivered | failed | exhausted
    attempts: tuple[Mapping[str, Any], ...] = ()
    receipt: Mapping[str, Any] | None = None
    reply: Mapping[str, Any] | None = None
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record as JSON."""
        out: dict[str, Any] = {"id": self.id, "message_id": self.message_id, "event_id": self.event_id,
                               "source": self.source, "state": self.state, "created_at": self.created_at,
                               "status": self.status, "attempts": [dict(a) for a in self.attempts]}
        if self.receipt is not None:
            out["receipt"] = dict(self.receipt)
        if self.reply is not None:
            out["reply"] = dict(self.reply)
        if self.replayed:
            out["replayed"] = True
        return out
