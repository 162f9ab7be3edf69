"""The message as a value: what is sent to whom, where it is in its life, and what happened to it.

Pure: built from and written to Redis only by `store.messages`; everything else reads fields. The JSON shape
(`to_json`) is what the API, callback templates and the trace show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from workers.core.coerce import to_decimal, to_int
from workers.core.lifecycle import State


class Channel(StrEnum):
    """How a message reaches its recipient."""

    SMS = "sms"
    MMS = "mms"
    VOICE = "voice"
    CONTACT = "contact"  # a write to a ClickSend contact list, not a message to a person


class ContactOp(StrEnum):
    """What a contact write does to its list."""

    UPSERT = "upsert"  # find the number on the list: update its fields, or create it
    REMOVE = "remove"  # find the number on the list and delete it


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Message:
    """One message: planned from an event by a rule, admitted by a policy, then moved through its lifecycle."""

    id: str
    event_id: str
    source: str
    rule: str
    channel: Channel
    state: State
    reasons: tuple[str, ...] = ()
    # What to send, to whom.
    to: str | None = None
    list_id: int | None = None
    country: str | None = None
    from_: str | None = None
    body: str | None = None
    subject: str | None = None
    media_file: str | None = None
    voice: str | None = None
    lang: str | None = None
    require_input: bool = False
    machine_detection: bool = False
    # ClickSend contact lists: a write's operation and fields (channel contact); the list a write or a send to a
    # list names, as the rule gives it (id or name).
    operation: ContactOp | None = None
    list_ref: str | None = None
    contact: Mapping[str, str] = field(default_factory=dict)
    encoding: str | None = None
    segments: int | None = None
    non_gsm: tuple[str, ...] = ()
    # How the rule wants it handled.
    key: str | None = None
    replace: bool = False
    send_at: float | None = None
    policy: str = "default"
    timezone: str | None = None
    critical: bool = False
    created_at: float = 0.0
    # Admission: the estimate, what it reserved of which day's budget, and the facts it looked at.
    estimate: Decimal | None = None
    reserved: Decimal | None = None
    reserved_day: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    # Set as it moves: by sending, receipts, people.
    updated_at: float | None = None
    sending_since: float | None = None
    sent_at: float | None = None
    provider_id: str | None = None
    price: Decimal | None = None
    parts: int | None = None
    retries: int = 0
    error: str | None = None
    receipt: Mapping[str, Any] | None = None
    approved_by: str | None = None
    approved_at: float | None = None
    approval_note: str | None = None
    rejected_by: str | None = None
    rejected_at: float | None = None
    # The timeline (JSON entries), when it was read with the message.
    timeline: tuple[Mapping[str, Any], ...] = ()

    def but(self, **changes: Any) -> Message:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def moved(self, state: State, fields: Mapping[str, Any] | None = None) -> Message:
        """The message as it is after a transition to `state` that set `fields` (stored JSON values)."""
        return Message.from_json(self.to_json() | dict(fields or {}) | {"state": state})

    def to_json(self) -> dict[str, Any]:
        """The message as JSON: `from` spelled as ClickSend spells it, money as strings, no empty timeline."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out["from" if f.name == "from_" else f.name] = value
        if not self.timeline:
            del out["timeline"]
        return out

    def document(self) -> dict[str, Any]:
        """What is stored once, when the message is created (the fields set later live beside it)."""
        out = self.to_json()
        for name in _LATER:
            out.pop(name, None)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """Read a stored or shown message; unknown keys are ignored, so older records still read."""
        names = {f.name for f in dataclasses.fields(cls)}
        raw = {("from_" if k == "from" else k): v for k, v in data.items()}
        kept = {k: v for k, v in raw.items() if k in names}
        for name, convert in _CONVERT.items():
            if name in kept:
                kept[name] = convert(kept[name])
        for name in ("reasons", "non_gsm", "timeline"):
            if name in kept:
                kept[name] = tuple(kept[name] or ())
        kept["channel"] = Channel(kept["channel"])
        kept["state"] = State(kept["state"])
        kept["retries"] = int(kept.get("retries") or 0)
        kept["facts"] = kept.get("facts") or {}
        kept["contact"] = kept.get("contact") or {}
        if kept.get("operation"):
            kept["operation"] = ContactOp(kept["operation"])
        for name in ("require_input", "machine_detection", "replace", "critical"):
            kept[name] = bool(kept.get(name))
        return cls(**kept)


_LATER = ("timeline", "updated_at", "sending_since", "sent_at", "provider_id", "price", "parts", "retries", "error",
          "receipt", "approved_by", "approved_at", "approval_note", "rejected_by", "rejected_at")

_CONVERT = {
    "estimate": to_decimal, "reserved": to_decimal, "price": to_decimal,
    "send_at": _float, "updated_at": _float, "sending_since": _float, "sent_at": _float, "approved_at": _float,
    "rejected_at": _float, "created_at": lambda v: _float(v) or 0.0,
    "segments": to_int, "parts": to_int, "list_id": to_int,
    "provider_id": _str, "reserved_day": _str,
}
