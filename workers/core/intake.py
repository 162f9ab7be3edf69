"""What one webhook request becomes: the event built from a source, the request's headers and raw body.

Owns the part of ingest that the HTTP edge (`webhooks.ingest`) and the dry run (`hookline rules test`) share:
JSON decoding, the schema check, reading the event type and id, the digest fallback and the headers kept.
Pure: no I/O, the receive time is passed in. Signatures are checked before this, by `webhooks.signatures`
(the dry run checks none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from workers.core.events import Event, body_digest, decode_json, event_id_for, kept_headers
from workers.core.sources import Extract, Source
from workers.errors import BadForm, BadJSON, EventTypeMissing, PayloadInvalid


def build_event(source: Source, headers: Mapping[str, str], body: bytes, now: float, *,
                event_type: str | None = None) -> Event:
    """The Event this request becomes, received at `now`. `event_type` overrides the source's own reading
    (the dry run's `--type`). Raises BadJSON (400) when the body is not acceptable JSON, PayloadInvalid (422)
    when it fails the source's schema, EventTypeMissing (422) when no event type is found."""
    payload = decode_form(body) if source.body == "form" else _json(body)
    problems = source.payload_errors(payload)
    if problems:
        raise PayloadInvalid(f"payload does not match the {source.name} schema", problems)
    lookup = _Folded(headers)
    event_type = event_type or source.event_type.read(lookup, payload)
    if not event_type:
        raise EventTypeMissing(_where(source.event_type))
    delivery_id = source.event_id.read(lookup, payload) if source.event_id else None
    external_id = delivery_id or body_digest(body)
    # A delivery id names one event however often it is sent; a digest names a body, which may be sent again
    # as a new event once the dedupe window has passed (see Event.dedupe_id).
    event_id = event_id_for(source.name, external_id if delivery_id else f"{external_id}@{now!r}")
    return Event(
        id=event_id,
        source=source.name,
        type=event_type,
        external_id=external_id,
        received_at=now,
        headers=kept_headers(headers, source.keep_headers + _id_headers(source)),
        payload=payload,
        # A key the request lacks orders the event by nothing: its own id, like a source without the setting.
        partition_key=source.partition_key.read(lookup, payload) if source.partition_key else None,
    )


def _json(body: bytes) -> Any:
    try:
        return decode_json(body)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadJSON(str(exc)) from None


def decode_form(body: bytes) -> dict[str, str | list[str]]:
    """An `application/x-www-form-urlencoded` body (Twilio's, WooCommerce's ping) as the payload rules see: each
    name once, a repeated name as the list of its values in order. Raises BadForm for bytes that are not UTF-8
    or a name or value holding a lone surrogate."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadForm(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    out: dict[str, str | list[str]] = {}
    for name, value in pairs:
        if name in out:
            kept = out[name]
            out[name] = [*kept, value] if isinstance(kept, list) else [kept, value]
        else:
            out[name] = value
    return out


class _Folded(dict[str, str]):
    """Headers looked up regardless of case, as HTTP names are; the first of repeated headers wins, as in
    werkzeug's `request.headers.get`."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__()
        for name, value in headers.items():
            self.setdefault(name.lower(), value)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def _where(extract: Extract) -> str:
    if extract.header:
        return f"header {extract.header} is missing"
    return f"path {extract.path} is missing or not a scalar"


def _id_headers(source: Source) -> tuple[str, ...]:
    return tuple(e.header for e in (source.event_id, source.event_type) if e is not None and e.header)
