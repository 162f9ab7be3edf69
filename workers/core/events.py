"""The event record: what one accepted webhook becomes, how its id is derived, and how its body is decoded.

Pure: no I/O; the receive time is passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Headers worth keeping with every event (besides the ones a source names in keep_headers).
ALWAYS_KEPT = ("content-type", "user-agent")
MAX_DEPTH = 64  # real webhooks nest a handful of levels; far deeper ones would exhaust recursion downstream


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able document (also what rule `when:` paths are evaluated against)."""
        # Shallow on purpose: asdict() deep-copies the payload, which costs more than the rest of ingest.
        return {"id": self.id, "source": self.source, "type": self.type, "external_id": self.external_id,
                "received_at": self.received_at, "headers": dict(self.headers), "payload": self.payload}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from `to_dict` output."""
        return cls(**{k: data[k] for k in ("id", "source", "type", "external_id", "received_at")},
                   headers=dict(data.get("headers") or {}), payload=data.get("payload"))


def kept_headers(headers: Mapping[str, str], extra: tuple[str, ...]) -> dict[str, str]:
    """The request headers stored with the event: a fixed few plus those the source names (lower-cased)."""
    wanted = {h.lower() for h in ALWAYS_KEPT + extra}
    return {k.lower(): v for k, v in headers.items() if k.lower() in wanted}


def decode_json(data: bytes | str) -> Any:
    """Parse a JSON body; ValueError when it is not JSON or nests deeper than MAX_DEPTH (a deeper document
    would exhaust the recursion of the parser, the schema check, the store's encoder or the templates)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    deepest, stack = 0, [(value, 1)]
    while stack:  # iterative: the depth check must not recurse itself
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)
    return value
