"""`GET /metrics` after real work: webhooks in, messages sent to the simulator over HTTP, receipts polled,
callbacks delivered to a real origin, a 429; part of it done by a second process on the same Redis. The scrape
is parsed with prometheus_client's own text parser and every value asserted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from importlib import metadata

from prometheus_client.parser import text_string_to_metric_families

from tests import signing
from tests.conftest import API_TOKEN, EXAMPLES_DIR, ROOT, SECRETS, Simulator, use_policies
from tests.origin_server import Origin
from tests.waiting import wait_for
from workers.core.lifecycle import State
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.wiring import handover, pipeline

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
BODY = (EXAMPLES_DIR / "shop-order.json").read_bytes()
SEND = "POST /v3/sms/send"

# A second process on the same Redis, as another gunicorn or RQ worker (or another host) would be: it takes
# webhooks through its own app and works its own jobs, counting into the same hashes.
CHILD = """
import sys
from rq import SimpleWorker
from tests import signing
from webhooks import create_app
from workers.entry.runtime import Runtime, set_runtime
from workers.wiring import pipeline
from workers.wiring.settings import Settings

rt = Runtime.build(Settings.from_env())
set_runtime(rt)
client = create_app(runtime=rt).test_client()
body = open(sys.argv[1], "rb").read()
for n in range(2):
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Webhook-Id": f"child-{n}", **signing.shopify(sys.argv[2], body)}
    assert client.post("/hooks/shop", data=body, headers=headers).status_code == 202
SimpleWorker([pipeline.queue(rt.rq_connection, q) for q in pipeline.ALL_QUEUES],
             connection=rt.rq_connection).work(burst=True)
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client) -> Samples:  # noqa: ANN001
    """Every sample of the scrape, by name and labels."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def post(client, webhook_id: str, secret: str = SECRETS["SHOP_WEBHOOK_SECRET"], source: str = "shop") -> int:  # noqa: ANN001
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Webhook-Id": webhook_id, **signing.shopify(secret, BODY)}
    return int(client.post(f"/hooks/{source}", data=BODY, headers=headers).status_code)


def run_child(rt: Runtime) -> None:
    settings = rt.settings
    env = os.environ | {"REDIS_URL": settings.redis_url, "HOOKLINE_RULES_DIR": settings.rules_dir,
                        "CLICKSEND_BASE_URL": str(settings.clicksend_base_url), "HOOKLINE_SEND_RATE": "1000",
                        "HOOKLINE_API_TOKEN": API_TOKEN, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", CHILD, str(EXAMPLES_DIR / "shop-order.json"),
                    SECRETS["SHOP_WEBHOOK_SECRET"]], env=env, cwd=ROOT, check=True, timeout=300)


def test_counts_from_two_processes_after_real_work(e2e: Runtime, client, work, simulator: Simulator,  # noqa: ANN001
                                                   origin: Origin) -> None:
    use_policies(e2e, "policies:\n  default: {approval: auto, daily_budget: 40.00}\n  paging: {approval: auto}\n")
    assert client.get("/metrics").status_code == 401
    run_child(e2e)
    assert [post(client, "parent-1"), post(client, "parent-1"), post(client, "parent-2", "wrong"),
            post(client, "parent-3", source="nope")] == [202, 200, 401, 404]
    work()
    assert len(simulator.state.ledger) == 3
    wait_for(lambda: len(simulator.state.unread_receipts("sms")) == 3, "the three receipts to become final")
    assert jobs.poll_feedback()["receipts"] == {"delivered": 3}
    work()  # the "delivered" callbacks

    m = scrape(client)
    assert value(m, "hookline_build_info", version=metadata.version("hookline")) == 1
    events = "hookline_events_received_total"
    assert value(m, events, source="shop", result="accepted", status="202") == 3  # two of them the child's
    assert value(m, events, source="shop", result="duplicate", status="200") == 1
    assert value(m, events, source="shop", result="refused", status="401") == 1
    assert value(m, events, source="(unknown)", result="refused", status="404") == 1
    outcome = "hookline_messages_outcome_total"
    assert value(m, outcome, channel="sms", rule="order-confirmation", state="sent") == 3
    assert value(m, outcome, channel="sms", rule="order-confirmation", state="delivered") == 3
    assert value(m, "hookline_messages", state="delivered") == 3
    # One send call per message: each drain sends what it planned, and the two events the child posted are in
    # two partitions (a shop event without a partition key is spread by its own id).
    assert value(m, "hookline_clicksend_requests_total", endpoint=SEND, status="200") == 3
    assert value(m, "hookline_clicksend_request_seconds_count", endpoint=SEND, status="200") == 3
    assert value(m, "hookline_clicksend_request_seconds_bucket", endpoint=SEND, status="200", le="+Inf") == 3
    assert value(m, "hookline_clicksend_request_seconds_sum", endpoint=SEND, status="200") > 0
    assert value(m, "hookline_receipts_applied_total", via="poll", result="delivered") == 3
    assert value(m, "hookline_callbacks_total", source="shop", result="delivered") == 6  # sent and delivered
    assert value(m, "hookline_callbacks_exhausted") == 0
    prices = [Decimal(str(client.get(f"/api/messages/{mid}", headers=AUTH).json["price"]))
              for mid in simulator.state.ledger]
    assert Decimal(str(value(m, "hookline_spend_today"))) == sum(prices) > 0
    assert value(m, "hookline_daily_budget", policy="default") == 40.0
    assert ("hookline_clicksend_rate_limited_total", frozenset({("endpoint", SEND)})) not in m

    simulator.state.faults.rate_429 = 1.0
    assert post(client, "parent-4") == 202
    work()
    m = scrape(client)
    # The drain's send met a 429; a flush job waited out its Retry-After and met another, which, one right
    # after the other, is left to RQ's scheduler (not run by this worker).
    assert value(m, "hookline_clicksend_rate_limited_total", endpoint=SEND) == 2
    assert value(m, "hookline_clicksend_requests_total", endpoint=SEND, status="429") == 2
    assert value(m, "hookline_outbox_paused", channel="sms") == 1
    assert value(m, "hookline_outbox_depth", channel="sms") == 1
    assert value(m, events, source="shop", result="accepted", status="202") == 4


def test_oldest_hold_age_is_shown_until_the_hold_is_decided(runtime: Runtime, client, work) -> None:  # noqa: ANN001
    use_policies(runtime, "policies:\n  default: {approval: manual}\n  paging: {approval: manual}\n")
    assert value(scrape(client), "hookline_oldest_hold_age_seconds") == 0
    assert post(client, "held-1") == 202
    work((pipeline.EVENTS_QUEUE,))
    [held] = runtime.store.messages.messages_in_state(State.HELD)
    assert value(scrape(client), "hookline_oldest_hold_age_seconds") > 0
    rejected = client.post(f"/api/approvals/{held}/reject", json={"by": "test"}, headers=AUTH)
    assert rejected.status_code == 200, rejected.json
    m = scrape(client)
    assert value(m, "hookline_oldest_hold_age_seconds") == 0
    assert value(m, "hookline_messages_outcome_total", channel="sms", rule="order-confirmation",
                 state="rejected") == 1
    assert value(m, "hookline_messages", state="held") == 0


def test_a_callback_that_gave_up_is_counted_until_it_is_replayed(e2e: Runtime, client, work,  # noqa: ANN001
                                                                  origin: Origin) -> None:
    origin.script = [(500, {})] * 3  # the "sent" callback gives up after its three attempts (max_attempts: 3)
    assert post(client, "exhaust-1") == 202
    work((pipeline.EVENTS_QUEUE, pipeline.SEND_QUEUE))
    [mid] = e2e.store.messages.messages_in_state(State.SENT)
    [cid] = e2e.store.callbacks.message_callback_ids(mid)
    sender, now = e2e.callback_sender(), time.time()
    assert [sender.deliver(cid, now + 1000 * i) for i in range(3)] == ["pending", "pending", "exhausted"]
    m = scrape(client)
    assert value(m, "hookline_callbacks_exhausted") == 1
    assert value(m, "hookline_callbacks_total", source="shop", result="retry") == 2
    assert value(m, "hookline_callbacks_total", source="shop", result="exhausted") == 1
    assert handover.replay(e2e.store, e2e.enqueuer, [cid], "test", time.time())
    work((pipeline.CALLBACKS_QUEUE,))
    m = scrape(client)
    assert value(m, "hookline_callbacks_exhausted") == 0
    assert value(m, "hookline_callbacks_total", source="shop", result="delivered") == 1
