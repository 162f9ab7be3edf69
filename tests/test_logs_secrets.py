"""No log line, at any level and from any logger (Hookline's, werkzeug's, RQ's), holds a full phone number, a webhook
secret, the API token or the receipt token, through a whole flow: signed webhook, refused ones, the worker sending
to the simulator, a pushed receipt, the API with a right and a wrong token; nor does any line as JSON. The lines
an operator follows are there: one per accepted event, one per message reaching sent and its final state."""

from __future__ import annotations

import json
import logging
import time

import pytest

from tests import signing
from tests.conftest import API_TOKEN, EXAMPLES_DIR, ORIGIN_SECRET, RECEIPT_TOKEN, SECRETS, Simulator
from tests.origin_server import Origin
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.tools.trace import mask
from workers.wiring.logs import JsonFormatter

PHONE = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())["customer"]["phone"]
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
LOGGERS = ("", "hookline", "werkzeug", "rq", "rq.worker", "rq.queue", "workers", "webhooks", "urllib3", "flask.app")


def _text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), record.exc_text or "", record.stack_info or ""]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
    parts += [str(v) for k, v in vars(record).items() if k not in _STANDARD]  # fields passed with `extra=`
    return "\n".join(parts)


def test_no_log_line_holds_a_number_secret_or_token(e2e: Runtime, client, work, simulator: Simulator,  # noqa: ANN001
                                                    origin: Origin, caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    body = (EXAMPLES_DIR / "shop-order.json").read_bytes()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "logs-1"}
    shop_secret = SECRETS["SHOP_WEBHOOK_SECRET"]
    wrong = client.post("/hooks/shop", data=body, headers=headers | signing.shopify("wrong", body))
    assert wrong.status_code == 401
    bad_json = b'{"id": 1, "phone": "' + PHONE.encode() + b'", "x": NaN}'
    assert client.post("/hooks/shop", data=bad_json, headers=headers | signing.shopify(shop_secret, bad_json)
                       ).status_code == 400
    accepted = client.post("/hooks/shop", data=body, headers=headers | signing.shopify(shop_secret, body))
    assert accepted.status_code == 202
    event_id = accepted.json["event_id"]
    assert client.post("/hooks/shop", data=body, headers=headers | signing.shopify(shop_secret, body)
                       ).status_code == 200
    assert client.post("/hooks/alerts", json={"status": "firing"},
                       headers={"Authorization": "Bearer " + SECRETS["ALERTMANAGER_TOKEN"] + "x"}).status_code == 401
    work()
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    [msg] = client.get(f"/api/events/{event_id}", headers=api).json["messages"]
    assert msg["state"] == "sent"
    assert client.get(f"/api/events/{event_id}", headers={"Authorization": f"Bearer {API_TOKEN}x"}).status_code == 401
    assert client.get("/api/approvals", headers={"Authorization": "Bearer"}).status_code == 401

    time.sleep(0.3)  # the simulator's receipt becomes final
    receipt = e2e.client.receipt(msg["provider_id"])
    form = {k: "" if v is None else str(v) for k, v in receipt.items()} | {"user_id": "123456"}
    assert client.post(f"/clicksend/receipts/{RECEIPT_TOKEN}x", data=form).status_code == 401
    e2e.store.account.remember_account(user_id=123456)
    assert client.post(f"/clicksend/receipts/{RECEIPT_TOKEN}", data=form).json == {"ok": True, "queued": True}
    assert client.post(f"/clicksend/receipts?token={RECEIPT_TOKEN}", json=receipt | {"user_id": 123456}).json[
        "queued"]
    jobs.poll_feedback()
    work()
    assert client.get(f"/api/events/{event_id}", headers=api).json["messages"][0]["state"] == "delivered"

    records = caplog.records
    assert len(records) > 10, [r.getMessage() for r in records]  # the capture saw the flow
    assert any(r.levelno == logging.DEBUG for r in records)
    forbidden = {"recipient number": PHONE, "number without +": PHONE.lstrip("+"),
                 "API token": API_TOKEN, "receipt token": RECEIPT_TOKEN, "callback secret": ORIGIN_SECRET,
                 **{name: value for name, value in SECRETS.items()}}
    leaks = [(what, r.name, r.levelname, r.getMessage()[:200]) for r in records for what, value in forbidden.items()
             if value in _text(r)]
    assert {"hookline.ingest", "rq.worker"} <= {r.name for r in records}
    assert not leaks, leaks
    as_json = [JsonFormatter().format(r) for r in records]
    assert not [(what, line[:200]) for line in as_json for what, value in forbidden.items()
                if value in line or value in json.loads(line)["message"]]

    accepted = [r for r in records if r.name == "hookline.ingest" and r.getMessage().startswith("accepted event")]
    assert [(r.levelname, getattr(r, "event_id", None)) for r in accepted] == [("INFO", event_id)]
    outcomes = [json.loads(line) for line, r in zip(as_json, records, strict=True) if r.name == "hookline.messages"]
    assert [(o["state"], o["message_id"], o["event_id"], o["to"]) for o in outcomes] == [
        ("sent", msg["id"], event_id, mask(PHONE)), ("delivered", msg["id"], event_id, mask(PHONE))]
    assert all(o["level"] == "INFO" and mask(PHONE) in o["message"] for o in outcomes)
