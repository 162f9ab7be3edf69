"""Building the event from a request: the code the HTTP edge and the dry run share."""

from __future__ import annotations

import json

import pytest
import yaml

from workers.core.events import body_digest, event_id_for
from workers.core.intake import build_event
from workers.core.sources import Source, parse_sources
from workers.errors import BadJSON, EventTypeMissing, IngestError, PayloadInvalid

SOURCES = parse_sources(yaml.safe_load("""
sources:
  shop:
    verify: {scheme: shopify, secret: s}
    event_type: {header: X-Shopify-Topic}
    event_id: {header: X-Shopify-Webhook-Id}
    keep_headers: [X-Shopify-Shop-Domain]
    schema: {type: object, required: [id]}
  alerts:
    verify: {scheme: bearer, secret: t}
    event_type: {path: status}
"""), {})
SHOP: Source = SOURCES["shop"]
ALERTS: Source = SOURCES["alerts"]
NOW = 1_750_000_000.0


def test_ids_and_type_come_from_the_headers_read_in_any_case_and_only_kept_headers_are_stored() -> None:
    headers = {"x-shopify-topic": "orders/create", "X-SHOPIFY-WEBHOOK-ID": "wh-1", "X-Shopify-Hmac-Sha256": "sig",
               "X-Shopify-Shop-Domain": "a.example", "Content-Type": "application/json", "Cookie": "c"}
    event = build_event(SHOP, headers, b'{"id": 1}', NOW)
    assert (event.type, event.external_id, event.id) == ("orders/create", "wh-1", event_id_for("shop", "wh-1"))
    assert (event.source, event.received_at, event.payload) == ("shop", NOW, {"id": 1})
    assert event.headers == {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "wh-1",
                             "x-shopify-shop-domain": "a.example", "content-type": "application/json"}


def test_without_an_id_the_body_digest_is_the_external_id_and_the_type_may_come_from_the_body() -> None:
    body = json.dumps({"status": "firing"}).encode()
    event = build_event(ALERTS, {}, body, NOW)
    assert (event.type, event.external_id) == ("firing", body_digest(body))


def test_a_given_event_type_overrides_the_sources_reading() -> None:
    assert build_event(SHOP, {}, b'{"id": 1}', NOW, event_type="orders/paid").type == "orders/paid"


@pytest.mark.parametrize(
    ("body", "headers", "error", "status", "code"),
    [
        (b'{"id": 1,', {}, BadJSON, 400, "bad_json"),
        (b"\xff\xfe{", {}, BadJSON, 400, "bad_json"),
        (b'{"name": "#1001"}', {"X-Shopify-Topic": "orders/create"}, PayloadInvalid, 422, "schema_mismatch"),
        (b'{"id": 1}', {}, EventTypeMissing, 422, "schema_mismatch"),
    ],
)
def test_refusals_are_the_ingest_errors_the_edge_answers(body: bytes, headers: dict[str, str],
                                                         error: type[IngestError], status: int, code: str) -> None:
    with pytest.raises(error) as info:
        build_event(SHOP, headers, body, NOW)
    assert (info.value.status, info.value.code) == (status, code)


def test_refusal_messages_say_what_is_wrong() -> None:
    with pytest.raises(BadJSON) as bad:
        build_event(SHOP, {}, b'{"id": 1,', NOW)
    assert bad.value.message == f"body is not valid JSON: {bad.value.reason}"
    assert bad.value.reason.startswith("Expecting property name")
    with pytest.raises(PayloadInvalid) as schema:
        build_event(SHOP, {}, b'{"name": "#1001"}', NOW)
    assert (schema.value.message, schema.value.errors) == ("payload does not match the shop schema",
                                                           ["(root): 'id' is a required property"])
    with pytest.raises(EventTypeMissing) as untyped:
        build_event(ALERTS, {}, b'{"status": ["firing"]}', NOW)
    assert untyped.value.errors == ["path status is missing or not a scalar"]


def test_a_sources_partition_key_is_read_from_the_payload_and_kept_with_the_event() -> None:
    [bookings] = parse_sources(yaml.safe_load("""
sources:
  bookings:
    verify: {scheme: none}
    event_type: {path: kind}
    partition_key: {path: booking.uid}
"""), {}).values()
    event = build_event(bookings, {}, b'{"kind": "moved", "booking": {"uid": "b-7"}}', NOW)
    assert (event.partition_key, event.ordering_key) == ("b-7", "b-7")
    assert event.to_dict()["partition_key"] == "b-7"
    # Without the key in the body it is ordered by nothing but itself, like an event of a source without one.
    lone = build_event(bookings, {}, b'{"kind": "moved"}', NOW)
    assert (lone.partition_key, lone.ordering_key) == (None, lone.id)
    assert build_event(SHOP, {"X-Shopify-Topic": "t"}, b'{"id": 1}', NOW).ordering_key.startswith("evt_")
