"""The event record: what one accepted webhook becomes, and how its id is derived.

Pure: no I/O; the receive time is passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Headers worth keeping with every event (besides the ones a source names in keep_headers).
ALWAYS_KEPT = ("content-type", "user-agent")


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
