"""Policies applied to real messages in Redis, and the approval queue through the API, the pages and the CLI."""

from __future__ import annotations

import json
import re
import threading
import time
from decimal import Decimal

import pytest
from click.testing import CliRunner

from tests.conftest import API_TOKEN, EXAMPLES_DIR, Simulator, use_policies
from tests.flow.test_sender import drain
from tests.messages import message
from workers.core.events import Event
from workers.core.messages import Message
from workers.entry.cli import main
from workers.entry.runtime import Runtime
from workers.flow import admission
from workers.wiring.handover import Verdict, decide

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def order_event(rt: Runtime, n: int, phone: str = "+61411111111", body_id: int | None = None,
                type_: str = "orders/create") -> str:
    """Process a shop order event (`type_` orders/cancelled for the order-cancelled rule); its one message id."""
    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())
    payload |= {"id": body_id if body_id is not None else n, "name": f"#{body_id or n}"}
    payload["customer"] = payload["customer"] | {"phone": phone}
    event = Event(id=f"evt_order_{n}", source="shop", type=type_, external_id=str(n),
                  received_at=time.time(), payload=payload)
    rt.store.events.ingest(event, 3600, 3600, rt.settings.partitions)
    rt.processing.process_events([event.id], time.time())
    [mid] = rt.store.messages.event_message_ids(event.id)
    return mid


@pytest.fixture
def manual(runtime: Runtime, simulator: Simulator) -> Runtime:
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url, send_rate=1000.0)
    runtime._client = None
    use_policies(runtime, "policies:\n  default: {approval: manual, approval_expires: 1h}\n  paging: {}\n")
    return runtime


def test_manual_policy_holds_with_its_reason(manual: Runtime) -> None:
    mid = order_event(manual, 1)
    msg = manual.store.messages.get_message(mid)
    assert msg.state == "held"
    assert msg.timeline[-1]["reason"] == "policy default: approval is manual"
    assert msg.estimate == Decimal("0.0792")


def test_approve_and_reject_through_the_api(manual: Runtime, client, work, simulator: Simulator) -> None:  # noqa: ANN001
    a, b = order_event(manual, 1), order_event(manual, 2, "+61422222222")
    listed = client.get("/api/approvals", headers=AUTH).json["approvals"]
    assert {x["id"] for x in listed} == {a, b}
    first = next(x for x in listed if x["id"] == a)
    assert first["to"] == "+6141•••••11" and first["reasons"] == ["policy default: approval is manual"]
    assert first["body"].startswith("Hi Bob") and first["segments"] == 1 and first["estimate"] == "0.0792"

    assert client.post(f"/api/approvals/{a}/approve", json={"note": "ok", "by": "ann"}).status_code == 401
    approved = client.post(f"/api/approvals/{a}/approve", json={"note": "looks fine", "by": "ann"}, headers=AUTH)
    assert approved.json == {"results": {a: "approved"}}
    again = client.post(f"/api/approvals/{a}/approve", json={"by": "bob"}, headers=AUTH)
    # The web edge records the decision and hands over: the workers fire it.
    assert again.status_code == 409 and again.json["results"][a] == "not held (scheduled)"
    rejected = client.post(f"/api/approvals/{b}/reject", json={"note": "wrong number", "by": "ann"}, headers=AUTH)
    assert rejected.json == {"results": {b: "rejected"}}
    work()
    drain(manual)
    msg_a, msg_b = manual.store.messages.get_message(a), manual.store.messages.get_message(b)
    assert (msg_a.state, msg_a.approved_by, msg_a.approval_note) == ("sent", "ann", "looks fine")
    assert msg_b.state == "rejected" and msg_b.rejected_by == "ann"
    assert simulator.state.ledger == {a: 1}


def test_bulk_approval_by_rule(manual: Runtime, client, work, simulator: Simulator) -> None:  # noqa: ANN001
    confirmations = [order_event(manual, i, f"+6141111111{i}") for i in range(3)]
    cancellations = [order_event(manual, 10 + i, f"+6142222222{i}", type_="orders/cancelled") for i in range(2)]
    held = {m.id: m.rule for m in manual.store.messages.held()}
    assert held == dict.fromkeys(confirmations, "order-confirmation") | dict.fromkeys(cancellations, "order-cancelled")

    result = client.post("/api/approvals/approve", json={"rule": "order-confirmation", "by": "ann"}, headers=AUTH)
    assert result.status_code == 200
    assert result.json["results"] == dict.fromkeys(confirmations, "approved")  # that rule's holds, and only them
    waiting = client.get("/api/approvals", headers=AUTH).json["approvals"]
    assert sorted(a["id"] for a in waiting) == sorted(cancellations)
    work()
    drain(manual)
    for mid in confirmations:
        msg = manual.store.messages.get_message(mid)
        assert (msg.state, msg.approved_by) == ("sent", "ann")
    for mid in cancellations:
        msg = manual.store.messages.get_message(mid)
        assert (msg.state, msg.approved_by) == ("held", None)  # another rule's holds: untouched
        assert [t["to"] for t in msg.timeline] == ["planned", "held"]
    assert simulator.state.ledger == dict.fromkeys(confirmations, 1)


def test_two_simultaneous_approvals_send_once(manual: Runtime, work, simulator: Simulator) -> None:  # noqa: ANN001
    mid = order_event(manual, 1)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def approve() -> None:
        barrier.wait()
        results.append(decide(manual.store, manual.enqueuer, [mid], Verdict.APPROVE, "someone", "", time.time())[mid])

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("approved") == 1
    work()
    drain(manual)
    assert simulator.state.ledger == {mid: 1}


def test_holds_expire_and_cannot_be_approved_after(manual: Runtime) -> None:
    mid = order_event(manual, 1)
    assert manual.approvals.expire(time.time() + 60) == []
    assert manual.approvals.expire(time.time() + 3601) == [mid]
    assert manual.store.messages.message_state(mid) == "expired"
    result = decide(manual.store, manual.enqueuer, [mid], Verdict.APPROVE, "ann", "", time.time())
    assert result == {mid: "not held (expired)"}


def sign_in(browser, name: str, token: str):  # noqa: ANN001, ANN201
    """Sign in as a person would: fetch the form (and its CSRF token), then send it."""
    form = browser.get("/ui/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return browser.post("/ui/login", data={"name": name, "token": token, "csrf": csrf})


def test_approval_pages_need_the_token_and_csrf(manual: Runtime, app, work) -> None:  # noqa: ANN001
    mid = order_event(manual, 1)
    browser = app.test_client()
    assert browser.get("/ui/approvals").status_code == 401
    assert sign_in(browser, "Ann", "wrong").status_code == 401
    assert browser.post(f"/ui/approvals/{mid}/approve", data={"note": "x"}).status_code == 401
    assert sign_in(browser, "Ann", API_TOKEN).status_code == 302
    page = browser.get("/ui/approvals")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Hi Bob, thanks for your order" in html and "+6141•••••11" in html and "+61411111111" not in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    assert browser.post(f"/ui/approvals/{mid}/approve", data={"note": "x"}).status_code == 403
    assert browser.post(f"/ui/approvals/{mid}/approve", data={"note": "x", "csrf": "forged"}).status_code == 403
    assert manual.store.messages.message_state(mid) == "held"
    done = browser.post(f"/ui/approvals/{mid}/approve", data={"note": "from the page", "csrf": csrf})
    assert done.status_code == 302
    assert manual.store.messages.message_state(mid) == "scheduled"  # recorded; the workers fire it
    work(queues=("hookline-events",))
    msg = manual.store.messages.get_message(mid)
    assert (msg.state, msg.approved_by, msg.approval_note) == ("queued", "Ann", "from the page")
    assert "approved" in browser.get("/ui/approvals").get_data(as_text=True)  # the flash message
    assert "queued" in browser.get("/ui/").get_data(as_text=True)


def test_approvals_cli(manual: Runtime, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("REDIS_URL", manual.settings.redis_url)
    monkeypatch.setenv("HOOKLINE_RULES_DIR", manual.settings.rules_dir)
    monkeypatch.setenv("CLICKSEND_BASE_URL", manual.settings.clicksend_base_url)
    mid = order_event(manual, 1)
    runner = CliRunner()
    assert mid in runner.invoke(main, ["approvals", "list"]).output
    out = runner.invoke(main, ["approvals", "reject", mid, "--note", "test", "--by", "cli-user"])
    assert out.exit_code == 0 and f"{mid}: rejected" in out.output
    assert runner.invoke(main, ["approvals", "approve", mid]).exit_code == 1


def test_budget_holds_are_exact_under_concurrent_sends(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {daily_budget: 0.50, max_per_recipient: {count: 5, per: 1h},"
                          " duplicate_window: 10m}\n  paging: {}\n")
    docs = [message(id=f"msg_b{i}", channel="sms", to=f"+614111111{i:02d}", body="x", country="AU", segments=1,
                    encoding="GSM-7", policy="default") for i in range(20)]
    outcomes: list[str] = []
    held_numbers: list[Message] = []
    barrier = threading.Barrier(len(docs))

    def go(doc: Message) -> None:
        barrier.wait()
        state = runtime.admission.admit(doc, time.time()).state
        outcomes.append(state)
        if state == "held":
            held_numbers.append(doc)

    threads = [threading.Thread(target=go, args=(d,)) for d in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("queued") == 6  # 6 × 0.0792 = 0.4752 ≤ 0.50 < 7 × 0.0792
    assert outcomes.count("held") == 14
    assert runtime.store.reservations.spent(admission.day_of(runtime.settings.timezone, time.time())) <= 0.5
    # A message that lost the budget race gave back the rate slot and the duplicate marker it had taken.
    assert all(runtime.store.reservations.recent_sends(d.to, time.time(), 3600) == [] for d in held_numbers)
    assert not any(runtime.store.reservations.is_duplicate(admission.duplicate_digest(d)) for d in held_numbers)


def test_duplicate_and_rate_checks_through_processing(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {duplicate_window: 10m, max_per_recipient: {count: 2, per: 1h}}\n"
                          "  paging: {}\n")
    first = order_event(runtime, 1, body_id=7)
    second = order_event(runtime, 2, body_id=7)  # another event, same recipient and text
    assert runtime.store.messages.message_state(first) == "queued"
    assert runtime.store.messages.message_state(second) == "suppressed"
    third = order_event(runtime, 3)
    fourth = order_event(runtime, 4)
    assert runtime.store.messages.message_state(third) == "queued"
    msg = runtime.store.messages.get_message(fourth)
    assert msg.state == "scheduled"  # the third message in an hour waits for the window
    assert "max_per_recipient 2 per 3600s reached" in msg.timeline[-1]["reason"]
    # When the window allows, it goes: its own earlier attempt left no duplicate marker behind.
    assert runtime.processing.fire(fourth, float(msg.send_at) + 1)
    assert runtime.store.messages.message_state(fourth) == "queued"


def test_balance_floor_turns_approvals_into_holds(runtime: Runtime, simulator: Simulator) -> None:
    from workers.entry import jobs

    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url)
    runtime._client = None
    use_policies(runtime, "policies:\n  default: {balance_floor: 5000}\n  paging: {}\n")
    assert jobs.poll_feedback()["balance_low"] is True
    assert "balance_low" in runtime.store.account.alerts()
    mid = order_event(runtime, 1)
    assert runtime.store.messages.message_state(mid) == "held"
    use_policies(runtime, "policies:\n  default: {balance_floor: 5}\n  paging: {}\n")
    assert jobs.poll_feedback()["balance_low"] is False
    assert "balance_low" not in runtime.store.account.alerts()


def test_price_estimates_come_from_clicksend_and_are_cached(runtime: Runtime, simulator: Simulator) -> None:
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url)
    runtime._client = None
    policy = runtime.rules.current().policy("default")
    doc = message(id="msg_p", channel="sms", to="+61411111111", body="’" * 80, country="AU", segments=2,
                  encoding="UCS-2")
    assert runtime.admission.admit(doc, time.time()).estimate == 2 * admission.Decimal("0.0792")
    assert runtime.admission.admit(doc.but(id="msg_p2"), time.time()).estimate == 2 * admission.Decimal("0.0792")
    assert simulator.state.ledger_view()["calls"] == {"/v3/sms/price": 1}
    simulator.state.faults.rate_500 = 1.0  # unreachable: the price table answers instead
    other = doc.but(id="msg_p3", country="US", to="+14155550100")
    fallback = policy.fallback_price("sms", "US", 2)
    assert runtime.admission.admit(other, time.time()).estimate == fallback

