"""The message as a value: what is sent to whom, where it is in its life, and what happened to it.

Pure: built from and written to Redis only by `store.messages`; everything else reads fields. The JSON shape
(`to_json`) is what the API, callback templates and the trace show.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
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


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value or ())


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
    # A number's message of a send to a list: who approved that send. Stored with the message (not set later)
    # so that every admission of it, a deferred one's too, knows; it lifts `approval: manual` and nothing else.
    list_approved_by: str | None = None
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
        if not changes.keys() <= _NAME_SET:
            return dataclasses.replace(self, **changes)  # raises the TypeError an unknown field name always did
        return _built(type(self), self.__dict__ | changes)

    def moved(self, state: State, fields: Mapping[str, Any] | None = None) -> Message:
        """The message as it is after a transition to `state` that set `fields` (stored JSON values).

        What `from_json(to_json() | fields | {"state": state})` gives for a message read by `from_json` (every
        stored one is), converting only what changes: its other fields already are what `from_json` makes of
        their JSON. Like `but`, the copy shares the unchanged mappings (`contact`, `facts`, `receipt`) with
        this message instead of copying them: neither changes them."""
        changes = _read(fields) if fields else {}
        changes["state"] = _state(state)
        return _built(type(self), self.__dict__ | changes)

    def to_json(self) -> dict[str, Any]:
        """The message as JSON: `from` spelled as ClickSend spells it, money as strings, no empty timeline."""
        out = _shown(self.__dict__, _JSON_NAMES, _ALL, _SHOWN_SPECIALLY)
        if not self.timeline:
            del out["timeline"]
        return out

    def document(self) -> dict[str, Any]:
        """What is stored once, when the message is created (the fields set later live beside it)."""
        return _shown(self.__dict__, _DOC_JSON_NAMES, _DOC, _DOC_SHOWN_SPECIALLY)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """Read a stored or shown message; unknown keys are ignored, so older records still read."""
        values = _DEFAULT_VALUES | _read(data)
        for name in ("contact", "facts"):  # each message its own empty mapping, as the default factory gives
            if name not in values:
                values[name] = {}
        if len(values) < len(_ALL_NAMES):  # some field without a default is missing
            for name in ("channel", "state"):
                if name not in values:
                    raise KeyError(name)  # what reading a record without one always raised
            return cls(**values)  # the TypeError naming the missing field
        return _built(cls, values)


def _built(cls: type[Message], values: dict[str, Any]) -> Message:
    """A message whose attributes are `values` (every field; a new dict the message keeps), without the frozen
    `__init__`'s ~50 `object.__setattr__` calls. Sound because `Message` has no `__post_init__` nor `init=False`
    field: its `__init__` only stores what it is given (tests/core/test_messages.py checks that it stays so)."""
    msg = object.__new__(cls)
    object.__setattr__(msg, "__dict__", values)  # frozen: only object's own __setattr__ may
    return msg


def _read(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields `data` (JSON names, or field names) gives, converted as `from_json` converts them; unknown keys
    are left out. A key given twice (`from` and `from_`) is the later one's."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        known = _READING.get(key)
        if known is not None:
            name, convert = known
            out[name] = value if convert is None else convert(value)
    return out


def _member(kind: type[StrEnum]) -> Callable[[Any], Any]:
    """`kind(value)`, looking a member's value up first: the enum's own call is ten times as slow."""
    members = {member.value: member for member in kind}

    def read(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):  # not a member's value (nor hashable): what the enum says of it
            return kind(value)
    return read


def _shown(values: dict[str, Any], json_names: tuple[str, ...], get: Callable[[dict[str, Any]], tuple[Any, ...]],
           special: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """`values` under `json_names` (what `get` picks, in that order), with the fields whose type can hold a
    Decimal, a tuple or a mapping (`special`) made JSON and copied: the other fields' types (text, numbers,
    booleans, the enums, None) are JSON as they are, so only those few pay for the type checks."""
    out = dict(zip(json_names, get(values), strict=True))
    for name, json_name in special:
        value = values[name]
        if isinstance(value, Decimal):
            out[json_name] = str(value)
        elif isinstance(value, tuple):
            out[json_name] = list(value)
        elif isinstance(value, Mapping):
            out[json_name] = dict(value)
    return out


_LATER = ("timeline", "updated_at", "sending_since", "sent_at", "provider_id", "price", "parts", "retries", "error",
          "receipt", "approved_by", "approved_at", "approval_note", "rejected_by", "rejected_at")

_channel, _state, _contact_op = _member(Channel), _member(State), _member(ContactOp)
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "estimate": to_decimal, "reserved": to_decimal, "price": to_decimal,
    "send_at": _float, "updated_at": _float, "sending_since": _float, "sent_at": _float, "approved_at": _float,
    "rejected_at": _float, "created_at": lambda v: _float(v) or 0.0,
    "segments": to_int, "parts": to_int, "list_id": to_int,
    "provider_id": _str, "reserved_day": _str,
    "reasons": _tuple, "non_gsm": _tuple, "timeline": _tuple,
    "channel": _channel, "state": _state, "retries": lambda v: int(v or 0),
    "facts": lambda v: v or {}, "contact": lambda v: v or {},
    "operation": lambda v: _contact_op(v) if v else v,
    "require_input": bool, "machine_detection": bool, "replace": bool, "critical": bool,
}
"""How `from_json` makes each field of its JSON value (the fields not named are taken as they are)."""

_FIELDS = dataclasses.fields(Message)
_ALL_NAMES = tuple(f.name for f in _FIELDS)
_NAME_SET = frozenset(_ALL_NAMES)
_FIELD_OF = {**{name: name for name in _ALL_NAMES}, "from": "from_"}
"""The field a JSON key names: its own name, and `from` for `from_`."""
_READING = {key: (name, _CONVERT.get(name)) for key, name in _FIELD_OF.items()}
"""What `_read` does with a key: the field it names and how that field is made of its JSON (None: as it is)."""
_DEFAULT_VALUES = {f.name: f.default for f in _FIELDS if f.default is not dataclasses.MISSING}
"""The fields `from_json` may find missing, with their defaults (the two default factories' are set apart)."""


def _json_name(name: str) -> str:
    return "from" if name == "from_" else name


def _specially(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(field, JSON name) of those of `names` whose type can hold a Decimal, a tuple or a mapping."""
    types = {f.name: str(f.type) for f in _FIELDS}
    return tuple((name, _json_name(name)) for name in names
                 if any(kind in types[name] for kind in ("Decimal", "tuple", "Mapping")))


_JSON_NAMES = tuple(map(_json_name, _ALL_NAMES))
_ALL = operator.itemgetter(*_ALL_NAMES)
_SHOWN_SPECIALLY = _specially(_ALL_NAMES)
_DOC_NAMES = tuple(name for name in _ALL_NAMES if name not in _LATER)
_DOC_JSON_NAMES = tuple(map(_json_name, _DOC_NAMES))
_DOC = operator.itemgetter(*_DOC_NAMES)
_DOC_SHOWN_SPECIALLY = _specially(_DOC_NAMES)
