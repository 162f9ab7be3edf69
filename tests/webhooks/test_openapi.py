"""The OpenAPI document is true: it lists every route of the app and nothing else, and what the app really
answers (a whole flow's events, messages, callbacks, approvals, opt-outs, errors) validates against it."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import jsonschema
import pytest

from tests.conftest import API_TOKEN, RECEIPT_TOKEN, Simulator
from tests.messages import message
from tests.test_end_to_end import post_order
from tests.waiting import wait_for
from webhooks import openapi
from workers.entry import jobs
from workers.entry.runtime import Runtime

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _offset_time(value: object) -> bool:
    """ISO-8601 with an offset (jsonschema's own date-time check needs a package Hookline does not use)."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def template(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule)


def test_every_route_is_documented_and_nothing_else(app, client) -> None:  # noqa: ANN001
    doc = client.get("/api/openapi.json").json
    routes = {(template(r.rule), m.lower()) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}
              if not r.rule.startswith(openapi.UNDOCUMENTED) and r.endpoint != "static"}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == routes
    assert any(r.rule.startswith("/ui/") for r in app.url_map.iter_rules())  # the pages exist, left out on purpose
    used = {r.endpoint for r in openapi.documented_rules(app)}
    assert set(openapi.OPERATIONS) == used  # no operation described for a route that is gone
    assert doc["openapi"].startswith("3.1")


def validate(doc: dict[str, Any], path: str, method: str, response: Any) -> None:
    """`response` (a Flask test response) is one its operation documents, in the documented shape."""
    documented = doc["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, (path, method, response.status_code, response.json)
    content = documented[str(response.status_code)]["content"]
    if "text/plain" in content:
        assert response.mimetype == "text/plain"
        return
    schema = content["application/json"]["schema"] | {"components": doc["components"]}
    jsonschema.Draft202012Validator(schema, format_checker=_FORMATS).validate(response.json)


def test_real_answers_validate_against_their_documented_schemas(e2e: Runtime, client, work,  # noqa: ANN001
                                                                 simulator: Simulator) -> None:
    doc = client.get("/api/openapi.json").json
    seen: list[tuple[str, str, int]] = []

    def check(method: str, path: str, url: str, **kwargs: Any) -> Any:
        response = getattr(client, method)(url, **kwargs)
        validate(doc, path, method, response)
        seen.append((path, method, response.status_code))
        return response

    event_id = post_order(client, "openapi-1")
    work()
    [msg] = client.get(f"/api/events/{event_id}", headers=AUTH).json["messages"]
    wait_for(lambda: simulator.state.unread_receipts("sms"), "the simulator's receipt to become final")
    jobs.poll_feedback()
    work()  # delivered, callbacks made
    now = time.time()
    e2e.store.messages.create_messages([message(id="msg_held", event_id=event_id, state="held", to="+61422222222",
                                                body="hold me", reasons=["cost over 0.50"])], now)
    e2e.store.messages.create_messages([message(id="msg_held2", event_id=event_id, state="held", to="+61433333333",
                                                body="and me", rule="other")], now)
    e2e.store.account.raise_alert("insufficient_credit", "no credit", now)

    detail = check("get", "/api/events/{event_id}", f"/api/events/{event_id}", headers=AUTH).json
    assert {m["state"] for m in detail["messages"]} == {"delivered", "held"}
    delivered = next(m for m in detail["messages"] if m["state"] == "delivered")
    assert delivered["callbacks"] and delivered["receipt"] and delivered["to"].count("•") > 0
    check("get", "/api/events/{event_id}", f"/api/events/{event_id}?reveal=1", headers=AUTH)
    check("get", "/api/events/{event_id}", "/api/events/evt_none", headers=AUTH)
    check("get", "/api/events", "/api/events?source=shop&limit=1", headers=AUTH)
    check("get", "/api/events", "/api/events?status=bogus", headers=AUTH)
    check("get", "/api/events", "/api/events", headers={})
    check("get", "/api/messages", "/api/messages?limit=2", headers=AUTH)
    check("get", "/api/messages", "/api/messages?state=held&reveal=1", headers=AUTH)
    check("get", "/api/messages/{message_id}", f"/api/messages/{msg['id']}", headers=AUTH)
    check("get", "/api/messages/{message_id}", "/api/messages/msg_none", headers=AUTH)
    check("get", "/api/approvals", "/api/approvals", headers=AUTH)
    check("post", "/api/approvals/{message_id}/{action}", "/api/approvals/msg_held/approve", json={"by": "ann"},
          headers=AUTH)
    check("post", "/api/approvals/{message_id}/{action}", "/api/approvals/msg_held/approve", headers=AUTH)  # 409
    check("post", "/api/approvals/{message_id}/{action}", "/api/approvals/msg_none/reject", headers=AUTH)
    check("post", "/api/approvals/{action}", "/api/approvals/reject", json={"rule": "other"}, headers=AUTH)
    check("post", "/api/approvals/{action}", "/api/approvals/reject", json={}, headers=AUTH)
    check("post", "/api/optouts", "/api/optouts", json={"number": "+61411111111", "note": "asked"}, headers=AUTH)
    check("post", "/api/optouts", "/api/optouts", json={"number": "12"}, headers=AUTH)
    check("get", "/api/optouts", "/api/optouts", headers=AUTH)
    check("delete", "/api/optouts/{number}", "/api/optouts/+61411111111", headers=AUTH)
    check("delete", "/api/optouts/{number}", "/api/optouts/+61411111111", headers=AUTH)
    check("get", "/healthz", "/healthz")
    check("get", "/readyz", "/readyz")
    check("get", "/readyz", "/readyz", headers=AUTH)
    check("get", "/metrics", "/metrics", headers=AUTH)
    check("post", "/hooks/{source_name}", "/hooks/nowhere", json={})
    check("post", "/hooks/{source_name}", "/hooks/shop", json={})
    check("post", "/clicksend/receipts/{token}", "/clicksend/receipts/wrong", data={"x": "1"})
    check("post", "/clicksend/inbound", f"/clicksend/inbound?token={RECEIPT_TOKEN}", data={"x": "1"})
    assert {s for _, _, s in seen} >= {200, 201, 400, 401, 404, 409}


@pytest.mark.parametrize("url", ["/api/events", "/api/messages"])
def test_listings_answer_offset_times_and_a_null_next_at_the_end(e2e: Runtime, client, work, url: str) -> None:  # noqa: ANN001
    post_order(client, "times-1")
    work()
    page = client.get(url, headers=AUTH).json
    assert page["next"] is None
    [item] = page[url.rsplit("/", 1)[1]]
    stamp = item["received_at" if "events" in url else "updated_at"]
    assert datetime.fromisoformat(stamp).utcoffset() is not None and abs(
        datetime.fromisoformat(stamp).timestamp() - time.time()) < 3600
