"""`POST /hooks/<source>` against a real Redis: acceptance, dedupe, hand-over and every error code."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from flask import request
from rq import SimpleWorker
from werkzeug.test import Client

from tests import signing
from tests.conftest import API_TOKEN, SECRETS
from tests.pending import drains_held, pending_ids
from tests.waiting import wait_for
from webhooks import create_app
from webhooks.ingest import IngestEdge
from workers.core.events import event_id_for
from workers.entry.runtime import Runtime, set_runtime
from workers.store.keys import seen_key
from workers.tools.localredis import free_port, start_redis
from workers.wiring import pipeline
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import Settings

ORDER = {"id": 450789469, "name": "#1001", "total_price": "25.00", "customer": {"phone": "+61411111111"}}


@pytest.fixture
def calendar_source(runtime: Runtime) -> None:
    """A Standard Webhooks source beside the shipped ones (none of them signs that way any more)."""
    path = Path(runtime.settings.rules_dir) / "sources.yaml"
    path.write_text(path.read_text() + "\n  calendar:\n    provider: standard-webhooks\n"
                    "    secret: \"${CALENDAR_WEBHOOK_SECRET}\"\n    event_type: {path: type}\n")
    runtime.rules = RulesDir(Path(runtime.settings.rules_dir), runtime.settings)
    assert runtime.rules.reload(), runtime.rules.errors


def shop_request(payload: object = ORDER, webhook_id: str = "wh-1", secret: str = SECRETS["SHOP_WEBHOOK_SECRET"],
                 topic: str = "orders/create") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        **signing.shopify(secret, body),
    }
    return body, headers


def post_shop(client, **kwargs):  # noqa: ANN001, ANN201
    body, headers = shop_request(**kwargs)
    return client.post("/hooks/shop", data=body, headers=headers)


def api_get(client, path: str):  # noqa: ANN001, ANN201
    return client.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})


def test_signed_event_is_accepted_stored_and_readable(client, redis_client: redis.Redis) -> None:
    response = post_shop(client)
    assert response.status_code == 202
    event_id = response.json["event_id"]
    stored = api_get(client, f"/api/events/{event_id}").json
    assert stored["source"] == "shop"
    assert stored["type"] == "orders/create"
    assert stored["external_id"] == "wh-1"
    assert stored["payload"] == ORDER
    assert stored["status"] == "received"
    assert stored["headers"]["x-shopify-topic"] == "orders/create"
    assert "x-shopify-hmac-sha256" not in stored["headers"]
    assert pending_ids(redis_client) == [event_id]


def test_repeat_is_answered_as_duplicate_and_not_handed_over_again(client, redis_client: redis.Redis) -> None:
    first = post_shop(client)
    second = post_shop(client)
    assert second.status_code == 200
    assert second.json == {"event_id": first.json["event_id"], "duplicate": True}
    assert len(pending_ids(redis_client)) == 1


def test_event_id_defaults_to_the_body_digest(client, redis_client: redis.Redis, secrets_env) -> None:  # noqa: ANN001
    body = json.dumps({"version": "4", "status": "firing", "alerts": [], "groupKey": "g"}).encode()
    resolved = json.dumps({"version": "4", "status": "resolved", "alerts": [], "groupKey": "g"}).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    headers = {"Authorization": f"Bearer {secrets_env['ALERTMANAGER_TOKEN']}", "Content-Type": "application/json"}

    def post(data: bytes):  # noqa: ANN202 - Flask's response
        return client.post("/hooks/alerts", data=data, headers=headers)

    first, again, other = post(body), post(body), post(resolved)
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    stored = api_get(client, f"/api/events/{first.json['event_id']}").json
    assert (stored["external_id"], stored["type"]) == (digest, "firing")  # the body's own SHA-256
    assert again.json == {"event_id": first.json["event_id"], "duplicate": True}  # within the window: the first's id
    assert other.json["event_id"] != first.json["event_id"]
    assert api_get(client, f"/api/events/{other.json['event_id']}").json["external_id"] == (
        "sha256:" + hashlib.sha256(resolved).hexdigest())

    # After the window the same bytes are a new event: the same digest, an id of its own each time it is accepted.
    marker = seen_key(event_id_for("alerts", digest))
    redis_client.pexpire(marker, 1)
    wait_for(lambda: not redis_client.exists(marker), "the dedupe window to pass")
    later = post(body)
    assert later.status_code == 202
    assert later.json["event_id"] not in (first.json["event_id"], other.json["event_id"])
    assert api_get(client, f"/api/events/{later.json['event_id']}").json["external_id"] == digest
    assert post(body).json == {"event_id": later.json["event_id"], "duplicate": True}  # now the new one's id
    assert sorted(pending_ids(redis_client)) == sorted([first.json["event_id"], other.json["event_id"],
                                                        later.json["event_id"]])


def test_standard_webhooks_source_signed_by_the_library(client, secrets_env, calendar_source) -> None:  # noqa: ANN001
    body = json.dumps({"type": "booking.created", "data": {"uid": "b1"}}).encode()
    headers = signing.standard(secrets_env["CALENDAR_WEBHOOK_SECRET"], body, int(time.time()), "msg_2Kd")
    response = client.post("/hooks/calendar", data=body, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 202
    stored = api_get(client, f"/api/events/{response.json['event_id']}").json
    assert (stored["type"], stored["external_id"]) == ("booking.created", "msg_2Kd")


def test_twenty_concurrent_deliveries_give_one_202_and_one_hand_over(live_server: str, runtime: Runtime,
                                                                     redis_client: redis.Redis) -> None:
    body, headers = shop_request(webhook_id="same-event")
    barrier = threading.Barrier(20)
    codes: list[int] = []

    def deliver() -> None:
        barrier.wait()
        codes.append(requests.post(f"{live_server}/hooks/shop", data=body, headers=headers, timeout=10).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 19 + [202]
    assert len(pending_ids(redis_client)) == 1
    assert pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).count == 1


def test_handed_over_events_are_processed_by_the_worker(client, work, redis_client: redis.Redis) -> None:  # noqa: ANN001
    ids = [post_shop(client, webhook_id=f"wh-{i}").json["event_id"] for i in range(5)]
    work()
    for event_id in ids:
        assert api_get(client, f"/api/events/{event_id}").json["status"] == "processed"
    assert pending_ids(redis_client) == []
    assert drains_held(redis_client) == []


# --- every error code ------------------------------------------------------------------------------


def assert_error(response, status: int, code: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert response.json["error"] == code
    assert response.json["message"]


def test_bad_json_is_400(client) -> None:  # noqa: ANN001
    body = b'{"id": 1,'
    headers = {"Content-Type": "application/json", **signing.shopify(SECRETS["SHOP_WEBHOOK_SECRET"], body)}
    assert_error(client.post("/hooks/shop", data=body, headers=headers), 400, "bad_json")


@pytest.mark.parametrize(("body", "message"), [
    (b'{"id": NaN}', "body is not valid JSON: NaN is not a JSON value"),
    (b'{"id": 1, "total": Infinity}', "body is not valid JSON: Infinity is not a JSON value"),
    (b'{"id": 1, "total": -Infinity}', "body is not valid JSON: -Infinity is not a JSON value"),
    (b'{"id": 1, "total": 1e400}', "body is not valid JSON: number 1e400 is too large"),
    (b'{"id": 1, "id": 2}', "body is not valid JSON: duplicate key 'id' in one object"),
    (b'{"id": 1, "alertname": "\\ud800X"}', "body is not valid JSON: alertname: lone surrogate \\ud800 in a string"),
])
def test_json_that_parsers_read_differently_is_400(client, body: bytes, message: str) -> None:  # noqa: ANN001
    # NaN used to be stored and served back as invalid JSON; a repeated key let two readers see two payloads;
    # a lone surrogate failed the whole event later, when its message was counted.
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               **signing.shopify(SECRETS["SHOP_WEBHOOK_SECRET"], body)}
    response = client.post("/hooks/shop", data=body, headers=headers)
    assert_error(response, 400, "bad_json")
    assert response.json["message"].startswith(message)


@pytest.mark.parametrize("depth", [65, 5000])  # 5000 used to exhaust the parser's recursion: a 500
def test_json_nested_too_deeply_is_400(client, depth: int) -> None:  # noqa: ANN001
    body = ("[" * depth + "]" * depth).encode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               **signing.shopify(SECRETS["SHOP_WEBHOOK_SECRET"], body)}
    response = client.post("/hooks/shop", data=body, headers=headers)
    assert_error(response, 400, "bad_json")
    assert "nested more than 64 levels deep" in response.json["message"]


def test_bad_signature_is_401_without_a_hint(client) -> None:  # noqa: ANN001
    response = post_shop(client, secret="not-the-secret")
    assert_error(response, 401, "unauthorized")
    assert response.json["message"] == "signature verification failed"


def test_missing_signature_is_401(client) -> None:  # noqa: ANN001
    response = client.post("/hooks/shop", json=ORDER, headers={"X-Shopify-Topic": "orders/create"})
    assert_error(response, 401, "unauthorized")


def test_stale_timestamp_is_401(client, secrets_env, calendar_source) -> None:  # noqa: ANN001
    body = json.dumps({"type": "booking.created", "data": {}}).encode()
    headers = signing.standard(secrets_env["CALENDAR_WEBHOOK_SECRET"], body, int(time.time()) - 600)
    response = client.post("/hooks/calendar", data=body, headers={**headers, "Content-Type": "application/json"})
    assert_error(response, 401, "unauthorized")
    assert response.json["message"] == "signature verification failed"


def test_unknown_source_is_404(client) -> None:  # noqa: ANN001
    assert_error(client.post("/hooks/nope", json={}), 404, "unknown_source")


def test_wrong_method_is_405(client) -> None:  # noqa: ANN001
    assert_error(client.get("/hooks/shop"), 405, "method_not_allowed")


def test_body_over_the_limit_is_413(client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    big = {"id": 1, "pad": "x" * (1024 * 1024)}
    assert_error(post_shop(client, payload=big), 413, "too_large")
    assert pending_ids(redis_client) == []


def test_body_over_the_limit_is_refused_from_content_length_without_reading(live_server: str) -> None:
    import socket

    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /hooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 50000000\r\n\r\n{")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_not_json_is_415(client) -> None:  # noqa: ANN001
    body = b"id=1"
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               **signing.shopify(SECRETS["SHOP_WEBHOOK_SECRET"], body)}
    assert_error(client.post("/hooks/shop", data=body, headers=headers), 415, "unsupported_media_type")


def test_payload_failing_the_source_schema_is_422_with_the_path(client) -> None:  # noqa: ANN001
    response = post_shop(client, payload={"name": "#1001"})
    assert_error(response, 422, "schema_mismatch")
    assert any("id" in e for e in response.json["errors"])


def test_missing_event_type_is_422(client) -> None:  # noqa: ANN001
    body, headers = shop_request()
    del headers["X-Shopify-Topic"]
    response = client.post("/hooks/shop", data=body, headers=headers)
    assert_error(response, 422, "schema_mismatch")
    assert "X-Shopify-Topic" in response.json["errors"][0]


def test_redis_down_is_503_and_nothing_is_stored(tmp_path, rules_dir, secrets_env) -> None:  # noqa: ANN001
    port = free_port()
    proc, url = start_redis(tmp_path / "redis", port=port)
    try:
        rt = Runtime.build(Settings(redis_url=url, rules_dir=str(rules_dir), api_token=API_TOKEN))
        client = create_app(runtime=rt).test_client()
        proc.terminate()
        proc.wait(10)
        assert_error(post_shop(client), 503, "unavailable")
        assert client.get("/readyz").status_code == 503
        proc, url = start_redis(tmp_path / "redis", port=port)  # same data directory, AOF on
        assert redis.Redis.from_url(url).dbsize() == 0
        assert post_shop(client).status_code == 202  # and it recovers by itself
    finally:
        proc.terminate()
        proc.wait(10)


def test_accepted_events_survive_a_redis_crash_and_are_processed_after(tmp_path, rules_dir,  # noqa: ANN001
                                                                        secrets_env) -> None:  # noqa: ANN001
    # `hookline up`'s Redis (AOF, fsync on every write): a 202 answered just before a crash is not forgotten.
    port = free_port()
    proc, url = start_redis(tmp_path / "redis", port=port)
    try:
        rt = Runtime.build(Settings(redis_url=url, rules_dir=str(rules_dir), api_token=API_TOKEN))
        set_runtime(rt)
        client = create_app(runtime=rt).test_client()
        ids = [post_shop(client, webhook_id=f"crash-{i}", payload=ORDER | {"id": i}).json["event_id"]
               for i in range(5)]
        proc.kill()  # SIGKILL: no shutdown, no final write
        proc.wait(10)
        proc, url = start_redis(tmp_path / "redis", port=port)
        assert [e.status for e in map(rt.store.events.get_event, ids)] == ["received"] * 5
        queues = [pipeline.queue(rt.rq_connection, q) for q in pipeline.ALL_QUEUES]
        SimpleWorker(queues, connection=rt.rq_connection).work(burst=True)  # the drain job survived too
        assert [rt.store.events.get_event(e).status for e in ids] == ["processed"] * 5
    finally:
        proc.terminate()
        proc.wait(10)


# --- API and health --------------------------------------------------------------------------------


def test_event_api_requires_the_token(client) -> None:  # noqa: ANN001
    event_id = post_shop(client).json["event_id"]
    assert client.get(f"/api/events/{event_id}").status_code == 401
    wrong = client.get(f"/api/events/{event_id}", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "unauthorized")
    assert api_get(client, f"/api/events/{event_id}").status_code == 200
    assert_error(api_get(client, "/api/events/evt_missing"), 404, "not_found")


def test_healthz_and_readyz(client) -> None:  # noqa: ANN001
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    # Anyone sees whether it is ready; the source names and the rest are for the operator.
    assert ready.json == {"status": "ready", "checks": {"redis": True, "rules_loaded": True}}
    assert client.get("/readyz", headers={"Authorization": "Bearer nope"}).json == ready.json
    detailed = api_get(client, "/readyz")
    assert detailed.status_code == 200
    assert detailed.json["checks"] == {"redis": True, "rules_loaded": True}
    assert set(detailed.json["sources"]) == {"shop", "payments", "alerts", "grafana", "bookings", "calendly"}
    assert set(detailed.json) == {"status", "checks", "sources", "config_errors", "alerts", "paused_outboxes"}


def test_readyz_keeps_config_errors_and_alerts_behind_the_token(client, runtime: Runtime) -> None:  # noqa: ANN001
    rules = runtime.rules.directory
    (rules / "sources.yaml").write_text("sources:\n  broken: {verify: {scheme: nope}}\n")
    runtime.rules._checked = 0.0  # the next look notices the edit
    runtime.store.account.raise_alert("insufficient_credit", "no credit", time.time())
    public = client.get("/readyz")
    assert public.status_code == 200 and public.json == {"status": "ready",
                                                         "checks": {"redis": True, "rules_loaded": True}}
    detailed = api_get(client, "/readyz").json
    assert any("broken" in e for e in detailed["config_errors"])
    assert detailed["alerts"]["insufficient_credit"]["message"] == "no credit"


@pytest.mark.parametrize("path", ["/hooks/shop", "/api/events/x", "/nowhere"])
def test_every_error_is_json(client, path: str) -> None:  # noqa: ANN001
    response = client.delete(path)
    assert response.is_json
    assert set(response.json) >= {"error", "message"}


def test_a_webhook_is_answered_without_flasks_request_machinery(app, client) -> None:  # noqa: ANN001
    # The ingest edge answers webhooks before Flask (about a third of a webhook's CPU under gunicorn): no
    # Flask hook runs for them, while every other request, other methods on the same path included, is Flask's.
    seen = []
    app.before_request(lambda: seen.append(request.method + " " + request.path) and None)
    assert post_shop(client, webhook_id="wh-edge").status_code == 202
    assert client.post("/hooks/nope", data=b"{}", headers={"Content-Type": "application/json"}).status_code == 404
    assert seen == []
    assert client.get("/hooks/shop").status_code == 405
    assert client.get("/healthz").status_code == 200
    assert seen == ["GET /hooks/shop", "GET /healthz"]


def test_the_flask_view_answers_as_the_edge_does(app, client) -> None:  # noqa: ANN001
    # The route stays in Flask's url_map (the OpenAPI document); whoever reaches its view gets the same answers.
    edge_app = app.wsgi_app.app
    assert isinstance(edge_app, IngestEdge)
    flask_only = Client(edge_app.app)  # Flask's own wsgi_app, behind the edge
    cases = [
        lambda c, n: post_shop(c, webhook_id=f"wh-view-{n}"),
        lambda c, n: [post_shop(c, webhook_id=f"wh-view-again-{n}") for _ in range(2)][1],  # a duplicate
        lambda c, n: post_shop(c, webhook_id=f"wh-view-bad-{n}", secret="wrong"),
        lambda c, n: post_shop(c, payload={"no": "id"}, webhook_id=f"wh-view-schema-{n}"),
        lambda c, n: c.post("/hooks/shop", data=b"{}", headers={"Content-Type": "text/plain"}),
        lambda c, n: c.post("/hooks/nope", data=b"{}", headers={"Content-Type": "application/json"}),
    ]
    for case in cases:
        edge, view = case(client, "edge"), case(flask_only, "view")
        assert (edge.status_code, edge.headers["Content-Type"]) == (view.status_code, view.headers["Content-Type"])
        assert {k: v for k, v in edge.json.items() if k != "event_id"} == \
            {k: v for k, v in view.json.items() if k != "event_id"}
