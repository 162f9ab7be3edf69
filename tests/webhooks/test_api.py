"""The operator API: events and messages listed and one by one, masked numbers, offset times, 404s, and the
suppression list."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.conftest import API_TOKEN
from tests.messages import message
from workers.core.events import Event
from workers.entry.runtime import Runtime

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def make_queued(rt: Runtime, mid: str) -> None:
    rt.store.messages.create_messages([message(id=mid, event_id="evt_api", state="queued", reasons=["x"],
                                               to="+61411111111", body="hi")], time.time())


def test_messages_by_state_and_one_message(client, runtime: Runtime) -> None:  # noqa: ANN001
    ingest(runtime, "evt_api", time.time())
    make_queued(runtime, "msg_api1")
    listed = client.get("/api/messages?state=queued", headers=AUTH).json
    assert [m["id"] for m in listed["messages"]] == ["msg_api1"]
    one = client.get("/api/messages/msg_api1", headers=AUTH).json
    assert [t["to"] for t in one["timeline"]] == ["planned", "queued"]
    assert one["callbacks"] == []
    assert client.get("/api/messages?state=bogus", headers=AUTH).status_code == 400
    for query, found in (("source=shop", ["msg_api1"]), ("source=alerts", []), ("q=msg_api1", ["msg_api1"]),
                         ("q=evt_api", ["msg_api1"]), ("q=evt_api&source=alerts", []), ("q=msg_other", [])):
        assert [m["id"] for m in client.get(f"/api/messages?{query}", headers=AUTH).json["messages"]] == found, query
    assert client.get("/api/messages/msg_none", headers=AUTH).status_code == 404
    assert client.get("/api/messages?state=queued").status_code == 401


def test_optouts_through_the_api(client, runtime: Runtime) -> None:  # noqa: ANN001
    added = client.post("/api/optouts?reveal=1", json={"number": "+61 411 111 111", "note": "asked by phone"},
                        headers=AUTH)
    assert added.status_code == 201 and added.json["number"] == "+61411111111"
    [listed] = client.get("/api/optouts", headers=AUTH).json["optouts"]
    assert listed["number"] == "+6141•••••11" and listed["via"] == "operator" and listed["detail"] == "asked by phone"
    assert client.get("/api/optouts?reveal=1", headers=AUTH).json["optouts"][0]["number"] == "+61411111111"
    assert client.post("/api/optouts", json={"number": "12"}, headers=AUTH).status_code == 422
    assert client.delete("/api/optouts/+61411111111", headers=AUTH).status_code == 200
    assert client.delete("/api/optouts/+61411111111", headers=AUTH).status_code == 404
    assert client.get("/api/optouts").status_code == 401


def test_metrics_expose_states_outboxes_and_alerts(client, runtime: Runtime) -> None:  # noqa: ANN001
    make_queued(runtime, "msg_m1")
    runtime.store.account.raise_alert("insufficient_credit", "no credit", time.time())
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert 'hookline_messages{state="queued"} 1.0' in text
    assert 'hookline_outbox_depth{channel="sms"} 1.0' in text
    assert 'hookline_alert{name="insufficient_credit"} 1.0' in text
    assert "alerts" not in client.get("/readyz").json  # for the operator only
    ready = client.get("/readyz", headers=AUTH).json
    assert ready["alerts"]["insufficient_credit"]["message"] == "no credit"


def test_json_that_is_not_an_object_gets_a_4xx_not_a_500(client) -> None:  # noqa: ANN001
    for body in (b"1e999", b"[1]", b'"x"', b"null", b"[" * 5000 + b"]" * 5000):
        headers = {**AUTH, "Content-Type": "application/json"}
        assert client.post("/api/approvals/approve", data=body, headers=headers).status_code == 400
        assert client.post("/api/optouts", data=body, headers=headers).status_code == 422
        assert client.post("/api/approvals/msg_none/approve", data=body, headers=headers).status_code == 404
    bad_ids = client.post("/api/approvals/approve", json={"ids": "msg_1"}, headers=AUTH)
    assert bad_ids.status_code == 400 and bad_ids.json["message"] == "ids must be a list of message ids"


def ingest(rt: Runtime, eid: str, at: float, source: str = "shop", external: str = "") -> None:
    event = Event(eid, source, "orders/create", external or f"ext-{eid}", at, {}, {"phone": "+61400000000"})
    assert rt.store.events.ingest(event, 60, 3600, rt.settings.partitions).created


def test_events_listed_newest_first_filtered_and_paged_by_cursor(client, runtime: Runtime) -> None:  # noqa: ANN001
    now = time.time()
    for i, source in enumerate(["shop", "alerts", "shop", "shop"]):
        ingest(runtime, f"evt_l{i}", now - 10 + i, source, external="order-7" if i == 1 else "")
    first = client.get("/api/events?source=shop&limit=2", headers=AUTH).json
    assert [e["id"] for e in first["events"]] == ["evt_l3", "evt_l2"] and first["next"]
    second = client.get(f"/api/events?source=shop&limit=2&cursor={first['next']}", headers=AUTH).json
    assert [e["id"] for e in second["events"]] == ["evt_l0"] and second["next"] is None
    assert [e["id"] for e in client.get("/api/events?q=order-7", headers=AUTH).json["events"]] == ["evt_l1"]
    since = datetime.fromtimestamp(now - 8.5, tz=UTC).isoformat()
    until = datetime.fromtimestamp(now - 7.5, tz=UTC).isoformat()
    ranged = client.get("/api/events", query_string={"since": since, "until": until}, headers=AUTH).json
    assert [e["id"] for e in ranged["events"]] == ["evt_l2"]
    assert ranged["events"][0]["payload"] == {"phone": "+61400000000"}  # the sender's document, as sent
    for bad in ("status=done", "limit=0", "limit=501", "cursor=xyz", "since=yesterday", "colour=red"):
        refused = client.get(f"/api/events?{bad}", headers=AUTH)
        assert refused.status_code == 400 and refused.json["error"] == "bad_request", bad
        assert bad.split("=")[0] in refused.json["message"]
    assert client.get("/api/events").status_code == 401


def test_numbers_are_masked_the_same_everywhere_unless_revealed(client, runtime: Runtime) -> None:  # noqa: ANN001
    ingest(runtime, "evt_api", time.time())
    runtime.store.messages.create_messages([message(id="msg_h", event_id="evt_api", state="held", to="+61411111111",
                                                    body="hi")], time.time())
    masked = "+6141•••••11"
    views = {
        "event": lambda q: client.get(f"/api/events/evt_api{q}", headers=AUTH).json["messages"][0]["to"],
        "message": lambda q: client.get(f"/api/messages/msg_h{q}", headers=AUTH).json["to"],
        "listing": lambda q: client.get(f"/api/messages?state=held{q.replace('?', '&')}",
                                        headers=AUTH).json["messages"][0]["to"],
        "approvals": lambda q: client.get(f"/api/approvals{q}", headers=AUTH).json["approvals"][0]["to"],
    }
    assert {name: view("") for name, view in views.items()} == dict.fromkeys(views, masked)
    assert {name: view("?reveal=1") for name, view in views.items()} == dict.fromkeys(views, "+61411111111")


def test_times_are_iso_with_offset_and_unknown_ids_404_in_the_error_shape(client, runtime: Runtime) -> None:  # noqa: ANN001
    make_queued(runtime, "msg_t")
    one = client.get("/api/messages/msg_t", headers=AUTH).json
    for stamp in (one["created_at"], one["updated_at"], *(t["at"] for t in one["timeline"])):
        assert datetime.fromisoformat(stamp).utcoffset() is not None
    for url in ("/api/events/evt_none", "/api/messages/msg_none"):
        missing = client.get(url, headers=AUTH)
        assert missing.status_code == 404 and set(missing.json) == {"error", "message"}
    unknown = client.post("/api/approvals/msg_none/approve", headers=AUTH)
    assert unknown.status_code == 404 and unknown.json["error"] == "not_found"
    not_held = client.post("/api/approvals/msg_t/approve", headers=AUTH)
    assert not_held.status_code == 409 and not_held.json["results"] == {"msg_t": "not held (queued)"}
    assert client.post("/api/approvals/approve", json={"ids": ["msg_x", "msg_y"]}, headers=AUTH).status_code == 404
    assert client.post("/api/approvals/msg_t/maybe", headers=AUTH).status_code == 404
