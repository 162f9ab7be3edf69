"""The event record: what one accepted webhook becomes, how its id is derived, and how its body is decoded.

Pure: no I/O; the receive time is passed in.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Headers worth keeping with every event (besides the ones a source names in keep_headers).
ALWAYS_KEPT = ("content-type", "user-agent")
MAX_DEPTH = 64  # real webhooks nest a handful of levels; far deeper ones would exhaust recursion downstream
# A surrogate code point left in a decoded string is always lone: the decoder joins escaped pairs into one
# character, and raw UTF-8 cannot encode a surrogate (json.loads decodes bytes with "surrogatepass").
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Where a surrogate can come from in a UTF-8 body: a \uD800-\uDFFF escape, or the UTF-8-style bytes of one
# (ED A0..BF). Bodies without either skip the per-string check; a match (an escaped pair, say) only means look.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE_HINT_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def event_id_for(source: str, external_id: str) -> str:
    """Hookline's event id: deterministic in (source, the sender's id), safe in URLs and Redis keys."""
    digest = hashlib.sha256(f"{source}\0{external_id}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def body_digest(body: bytes) -> str:
    """The default external id when a source gives none: the body's SHA-256."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Event:
    """One accepted event, as stored and as rule matching sees it."""

    id: str
    source: str
    type: str
    external_id: str
    received_at: float
    headers: Mapping[str, str] = field(default_factory=dict)
    payload: Any = None
    partition_key: str | None = None  # what the source orders it by (`partition_key:`); None: its own id

    @property
    def ordering_key(self) -> str:
        """The key that decides the event's partition: events with the same one are processed in arrival order."""
        return self.partition_key or self.id

    @property
    def dedupe_id(self) -> str:
        """What a repeat of this event is recognised by: its source and external id. For a provider's delivery
        id that is also the event id; an event known only by its body's digest gets an id of its own each time
        it is accepted, so a byte-identical notification after the dedupe window (Alertmanager's
        repeat_interval) is a new event, while one within the window is a duplicate."""
        return event_id_for(self.source, self.external_id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able document (also what rule `when:` paths are evaluated against)."""
        # Shallow on purpose: asdict() deep-copies the payload, which costs more than the rest of ingest.
        doc = {"id": self.id, "source": self.source, "type": self.type, "external_id": self.external_id,
               "received_at": self.received_at, "headers": dict(self.headers), "payload": self.payload}
        if self.partition_key is not None:
            doc["partition_key"] = self.partition_key
        return doc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from `to_dict` output."""
        return cls(**{k: data[k] for k in ("id", "source", "type", "external_id", "received_at")},
                   headers=dict(data.get("headers") or {}), payload=data.get("payload"),
                   partition_key=data.get("partition_key"))


def kept_headers(headers: Mapping[str, str], extra: tuple[str, ...]) -> dict[str, str]:
    """The request headers stored with the event: a fixed few plus those the source names (lower-cased)."""
    wanted = {h.lower() for h in ALWAYS_KEPT + extra}
    return {k.lower(): v for k, v in headers.items() if k.lower() in wanted}


def decode_json(data: bytes | str) -> Any:
    """Parse a JSON body; ValueError, with a message saying what is wrong and where it can, when it is not JSON
    or is JSON that different parsers read differently: NaN or Infinity (not JSON, and would make what
    Hookline stores invalid JSON), a number too large for a double, a key repeated in one object (which value
    counts depends on the reader: a signature checker and a rule could see different payloads), a lone
    surrogate such as `\\ud800` (not text: it cannot be stored, rendered or sent), or nesting deeper than
    MAX_DEPTH (a deeper document would exhaust the recursion of the parser, the schema check, the store's
    encoder or the templates)."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    _check_tree(value, strings=_may_hold_surrogates(data))
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (JSON numbers are finite: no NaN, Infinity or -Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {_shown(text)} is too large (beyond a 64-bit float)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {_shown(key)!r} in one object (each key may appear once)")
            seen.add(key)
    return obj


def _may_hold_surrogates(data: bytes | str) -> bool:
    """False only when the raw body cannot have produced a surrogate, so the strings need no check."""
    if isinstance(data, str):
        return _SURROGATE_HINT_TEXT.search(data) is not None
    if json.detect_encoding(data) not in ("utf-8", "utf-8-sig"):
        return True  # UTF-16 and UTF-32 bodies (rare) hide escapes from the byte pattern: check every string
    return _SURROGATE_HINT.search(data) is not None


def _check_tree(value: Any, strings: bool) -> None:
    """Refuse nesting deeper than MAX_DEPTH and, when `strings`, surrogate code points in keys or strings;
    iterative, as the check must not recurse itself."""
    if strings and isinstance(value, str) and _SURROGATE.search(value):
        raise ValueError(_surrogate_message(value))
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            if strings and any(_SURROGATE.search(key) for key in item):
                raise ValueError(_surrogate_message(value))
            children: Any = item.values()
        else:
            children = item
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif strings and isinstance(child, str) and _SURROGATE.search(child):
                raise ValueError(_surrogate_message(value))


def _surrogate_message(value: Any) -> str:
    """`path: problem` for the first surrogate found (`a/0/b`, `a/(key)` for a key); run only once the tree
    check found one, so walking the document again costs nothing on the accepted path."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            texts = [(key, (*path, "(key)")) for key in item]
            stack.extend((child, (*path, _shown(key))) for key, child in item.items())
        elif isinstance(item, list):
            texts = []
            stack.extend((child, (*path, str(i))) for i, child in enumerate(item))
        else:
            texts = [(item, path)] if isinstance(item, str) else []
        for text, where in texts:
            if found := _SURROGATE.search(text):
                return (f"{'/'.join(where) or '(root)'}: lone surrogate \\u{ord(found.group()):04x} in a string "
                        "(not a character; send text as UTF-8, or escape it as a \\uXXXX surrogate pair)")
    return "lone surrogate in a string"


def _shown(text: str, limit: int = 40) -> str:
    # Error messages go back to the client and into logs: a megabyte-long key or number is cut short.
    return text if len(text) <= limit else text[:limit] + "…"
