"""The whole path with real parts: a signed webhook → RQ worker → simulator over HTTP → delivery receipt
(polled, or pushed) → a signed callback received and verified by a real local origin server."""

from __future__ import annotations

import json
import time

from tests import signing
from tests.conftest import API_TOKEN, EXAMPLES_DIR, RECEIPT_TOKEN, SECRETS, Simulator
from tests.origin_server import Origin
from tests.waiting import wait_for
from workers.entry import jobs
from workers.entry.runtime import Runtime


def post_order(client, webhook_id: str = "e2e-1", payload: dict | None = None) -> str:  # noqa: ANN001
    body = json.dumps(payload).encode() if payload else (EXAMPLES_DIR / "shop-order.json").read_bytes()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Webhook-Id": webhook_id, **signing.shopify(SECRETS["SHOP_WEBHOOK_SECRET"], body)}
    response = client.post("/hooks/shop", data=body, headers=headers)
    assert response.status_code == 202, response.json
    return response.json["event_id"]


def event_view(client, event_id: str) -> dict:  # noqa: ANN001
    return client.get(f"/api/events/{event_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}).json


def test_webhook_to_sent_to_polled_receipt_to_verified_callbacks(e2e: Runtime, client, work,  # noqa: ANN001
                                                                  simulator: Simulator, origin: Origin) -> None:
    event_id = post_order(client)
    work()  # drain → plan → queue → flush → ClickSend (simulator) → sent → callback "sent"
    [msg] = event_view(client, event_id)["messages"]
    assert msg["state"] == "sent" and msg["provider_id"]
    assert simulator.state.ledger == {msg["id"]: 1}

    wait_for(lambda: simulator.state.unread_receipts("sms"), "the simulator's receipt to become final")
    assert jobs.poll_feedback()["receipts"] == {"delivered": 1}
    work()  # callback "delivered"
    view = event_view(client, event_id)
    [msg] = view["messages"]
    assert msg["state"] == "delivered"
    assert [t["to"] for t in msg["timeline"] if "to" in t and t.get("kind") is None] == [
        "planned", "queued", "sending", "sent", "delivered"]

    assert [(r["json"]["state"], r["verified"], r["path"]) for r in origin.received] == [
        ("sent", True, "/orders/450789469/sms"), ("delivered", True, "/orders/450789469/sms")]
    assert all(r["json"]["message"] == msg["id"] for r in origin.received)
    assert {c["state"]: c["status"] for c in msg["callbacks"]} == {"sent": "delivered", "delivered": "delivered"}
    # Receipts newer than a minute stay unread (one may have arrived while paging): seen again, harmlessly.
    assert jobs.poll_feedback()["receipts"] == {"duplicate": 1}
    later = time.time() + 120
    assert e2e.feedback.poll_receipts(later) == {"duplicate": 1}  # now older: marked read
    assert e2e.feedback.poll_receipts(later) == {}


def test_pushed_receipt_is_applied_through_the_same_code(e2e: Runtime, client, work,  # noqa: ANN001
                                                         simulator: Simulator, origin: Origin) -> None:
    event_id = post_order(client, "e2e-push")
    work()
    [msg] = event_view(client, event_id)["messages"]
    def final_receipt() -> dict | None:
        found = e2e.client.receipt(msg["provider_id"])
        return found if found["status_code"] != 200 else None

    receipt = wait_for(final_receipt, "the simulator's receipt to become final")
    form = {k: "" if v is None else str(v) for k, v in receipt.items()} | {"user_id": "123456",
                                                                          "status": "Delivered"}
    wrong_token = client.post("/clicksend/receipts/nope", data=form)
    assert wrong_token.status_code == 401
    unknown_account = client.post(f"/clicksend/receipts/{RECEIPT_TOKEN}", data=form)
    assert unknown_account.status_code == 503  # nothing cached yet: ClickSend retries the push
    e2e.store.account.remember_account(user_id=123456)
    wrong_account = client.post(f"/clicksend/receipts/{RECEIPT_TOKEN}", data=form | {"user_id": "999"})
    assert wrong_account.status_code == 403
    # The web edge checks the account the workers' poller cached and hands the receipt over; it never calls out.
    pushed = client.post(f"/clicksend/receipts/{RECEIPT_TOKEN}", data=form)
    assert pushed.json == {"ok": True, "queued": True}
    again = client.post(f"/clicksend/receipts?token={RECEIPT_TOKEN}", json=receipt | {"user_id": 123456})
    assert again.json == {"ok": True, "queued": True}
    assert event_view(client, event_id)["messages"][0]["state"] == "sent"  # nothing applied in the request
    work()
    assert event_view(client, event_id)["messages"][0]["state"] == "delivered"
    assert [r["json"]["state"] for r in origin.delivered()] == ["sent", "delivered"]


def test_stop_then_start_from_a_number(e2e: Runtime, client, work, simulator: Simulator,  # noqa: ANN001
                                       origin: Origin) -> None:
    first = post_order(client, "stop-1")
    work()
    [msg] = event_view(client, first)["messages"]
    simulator.state.add_inbound("+61411111111", "Stop please", original_message_id=msg["provider_id"])
    assert jobs.poll_feedback()["inbound"] == {"opted_out": 1}
    assert "+61411111111" in e2e.store.optouts.optouts()
    work()
    replies = [r["json"] for r in origin.delivered() if r["json"]["state"] == "reply"]
    assert len(replies) == 1  # the source asked for replies to be forwarded

    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text()) | {"id": 2, "name": "#1002"}
    second = post_order(client, "stop-2", payload)
    work()
    [suppressed] = event_view(client, second)["messages"]
    assert suppressed["state"] == "suppressed"
    [why] = [t["reason"] for t in suppressed["timeline"] if t.get("to") == "suppressed"]
    assert "opted out" in why
    assert "suppressed" in [r["json"]["state"] for r in origin.delivered()]

    simulator.state.add_inbound("+61411111111", "START")
    assert jobs.poll_feedback()["inbound"] == {"duplicate": 1, "opted_in": 1}  # the STOP, seen again
    third = post_order(client, "stop-3", payload | {"id": 3, "name": "#1003"})
    work()
    assert event_view(client, third)["messages"][0]["state"] == "sent"
    assert len(simulator.state.ledger) == 2  # the suppressed one never reached ClickSend


def test_trace_prints_the_whole_story(e2e: Runtime, client, work) -> None:  # noqa: ANN001
    from workers.tools.trace import trace

    event_id = post_order(client, "trace-1")
    work()
    text = trace(e2e.store, event_id)
    assert f"event {event_id}" in text
    assert "+6141•••••11" in text and "+61411111111" not in text  # numbers masked for people
    assert "queued → sending" in text and "callback" in text


def test_a_stop_pushed_by_clicksend_suppresses_the_number(e2e: Runtime, client, work,  # noqa: ANN001
                                                          simulator: Simulator, origin: Origin) -> None:
    first = post_order(client, "push-stop-1")
    work()
    [msg] = event_view(client, first)["messages"]
    e2e.store.account.remember_account(user_id=123456)  # as the poller records it: pushes must carry it
    # ClickSend's inbound push for a reply to that message, form-encoded, to the secret URL.
    form = {"timestamp": str(int(time.time())), "from": "+61411111111", "body": "STOP", "to": "+61400000000",
            "original_body": msg["body"], "original_message_id": msg["provider_id"], "custom_string": msg["id"],
            "message_id": "PUSHED-INBOUND-1", "user_id": "123456", "subaccount_id": "654321"}
    pushed = client.post(f"/clicksend/inbound/{RECEIPT_TOKEN}", data=form)
    assert pushed.json == {"ok": True, "queued": True}
    assert e2e.store.optouts.optouts() == {}  # the edge only hands it over
    work()  # apply_push, then the reply's callback
    assert list(e2e.store.optouts.optouts()) == ["+61411111111"]
    assert e2e.store.optouts.optouts()["+61411111111"]["via"] == "reply"
    [reply] = [t for t in e2e.store.messages.get_message(msg["id"]).timeline if t.get("kind") == "reply"]
    assert (reply["via"], reply["keyword"], reply["reason"]) == ("push", "stop", "reply: STOP")
    assert [r["json"]["state"] for r in origin.delivered()] == ["sent", "reply"]
    assert client.post(f"/clicksend/inbound/{RECEIPT_TOKEN}", data=form).status_code == 200  # pushed again
    work()
    assert [r["json"]["state"] for r in origin.delivered()] == ["sent", "reply"]  # applied once

    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text()) | {"id": 2, "name": "#1002"}
    later = post_order(client, "push-stop-2", payload)
    work()
    [suppressed] = event_view(client, later)["messages"]
    assert suppressed["state"] == "suppressed"
    [why] = [t["reason"] for t in suppressed["timeline"] if t.get("to") == "suppressed"]
    assert why == "recipient opted out (replied STOP or added by an operator)"
    assert simulator.state.ledger == {msg["id"]: 1}  # the later message never reached ClickSend
    assert [r["json"]["state"] for r in origin.delivered()] == ["sent", "reply", "suppressed"]
