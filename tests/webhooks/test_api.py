"""The operator API: messages by state, one message with its timeline, and the suppression list."""

from __future__ import annotations

import time

from tests.conftest import API_TOKEN
from tests.messages import message
from workers.entry.runtime import Runtime

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def make_queued(rt: Runtime, mid: str) -> None:
    rt.store.messages.create_messages([message(id=mid, event_id="evt_api", state="queued", reasons=["x"],
                                               to="+61411111111", body="hi")], time.time())


def test_messages_by_state_and_one_message(client, runtime: Runtime) -> None:  # noqa: ANN001
    make_queued(runtime, "msg_api1")
    listed = client.get("/api/messages?state=queued", headers=AUTH).json
    assert [m["id"] for m in listed["messages"]] == ["msg_api1"]
    one = client.get("/api/messages/msg_api1", headers=AUTH).json
    assert [t["to"] for t in one["timeline"]] == ["planned", "queued"]
    assert one["callbacks"] == []
    assert client.get("/api/messages?state=bogus", headers=AUTH).status_code == 400
    assert client.get("/api/messages/msg_none", headers=AUTH).status_code == 404
    assert client.get("/api/messages?state=queued").status_code == 401


def test_optouts_through_the_api(client, runtime: Runtime) -> None:  # noqa: ANN001
    added = client.post("/api/optouts", json={"number": "+61 411 111 111", "note": "asked by phone"}, headers=AUTH)
    assert added.status_code == 201 and added.json["number"] == "+61411111111"
    assert list(client.get("/api/optouts", headers=AUTH).json) == ["+61411111111"]
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
        assert client.post("/api/approvals/msg_none/approve", data=body, headers=headers).status_code == 409
    bad_ids = client.post("/api/approvals/approve", json={"ids": "msg_1"}, headers=AUTH)
    assert bad_ids.status_code == 400 and bad_ids.json["message"] == "ids must be a list of message ids"
