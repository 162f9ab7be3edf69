"""ClickSend contact lists end to end against a real Redis and the simulator over HTTP: a rule's `contact:` and
`contact_remove:` become messages of channel `contact`, pass the policy, and are written once however often the
event is processed; lists by name or id; 429s put them back; every step is on the timeline. A send to a list
becomes a message per number, sent in the outbox's batches, with the opted-out numbers left out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import API_TOKEN, Simulator, use_policies
from tests.flow.test_sender import drain, sends
from tests.webhooks.test_pages import Operator
from workers.clicksend.client import Call, ClickSendClient
from workers.core.events import Event
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.entry.cli import main
from workers.entry.runtime import Runtime
from workers.errors import StoreUnavailable
from workers.flow import sender
from workers.flow.contactlists import ContactLists
from workers.flow.sender import INTERRUPTED, MAX_INTERRUPTED, SENDING_LEASE
from workers.store.keys import state_index_key
from workers.store.messages import Change
from workers.wiring.rulesdir import RulesDir

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
RULES = """
rules:
  - name: customer-joins
    source: shop
    event: test/joins
    contact: {{list: {list}, phone_number: "{{{{ payload.phone }}}}", first_name: "{{{{ payload.first_name }}}}",
              email: "{{{{ payload.get('email', '') }}}}"}}
  - name: customer-leaves
    source: shop
    event: test/leaves
    contact_remove: {{list: {list}, phone_number: "{{{{ payload.phone }}}}"}}
  - name: sale
    source: shop
    event: test/sale
    send: {{channel: sms, to: {{list: {list}}}, body: "Sale: 20% off today", from: ShopCo}}
"""


@pytest.fixture
def calls() -> list[Call]:
    """Every ClickSend call the workers make, as the client's observer sees it."""
    return []


@pytest.fixture
def rt(runtime: Runtime, simulator: Simulator, calls: list[Call]) -> Runtime:
    """The runtime writing to the simulator, which has a list "Customers"; rules name it by name."""
    simulator.state.directory.create_list("Customers")
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url, send_rate=1000.0)
    runtime._client = ClickSendClient(simulator.url, username="u", api_key="k", observer=calls.append)
    use_rules(runtime, "Customers")
    return runtime


def use_rules(rt: Runtime, list_ref: str) -> None:
    rules = Path(rt.settings.rules_dir)
    (rules / "contacts.yaml").write_text(RULES.format(list=list_ref))
    rt.rules = RulesDir(rules, rt.settings)
    assert rt.rules.reload(), rt.rules.errors


def customer_list(sim: Simulator, name: str = "Customers") -> int:
    return next(int(r["list_id"]) for r in sim.state.directory.all_lists() if r["list_name"] == name)


def event(rt: Runtime, external_id: str, type_: str = "test/joins", **payload: str) -> str:
    """Store and process a shop customer event; its id."""
    ev = Event(id=f"evt_shop_{external_id}", source="shop", type=type_, external_id=external_id,
               received_at=time.time(), payload={"phone": "+61 411 111 111", "first_name": "Ada"} | payload)
    assert rt.store.events.ingest(ev, 3600, 3600, rt.settings.partitions).created
    rt.processing.process_events([ev.id], time.time())
    return ev.id


def the_message(rt: Runtime, event_id: str) -> Message:
    [mid] = rt.store.messages.event_message_ids(event_id)
    msg = rt.store.messages.get_message(mid)
    assert msg is not None
    return msg


def writes(calls: list[Call]) -> list[str]:
    return [f"{c.method} {c.endpoint}" for c in calls if c.method != "GET"]


def test_an_upsert_creates_the_contact_and_a_replay_writes_nothing(rt: Runtime, simulator: Simulator,
                                                                   calls: list[Call]) -> None:
    eid = event(rt, "c1")
    drain(rt, "contact")
    msg = the_message(rt, eid)
    list_id = customer_list(simulator)
    [contact] = simulator.state.directory.list_contacts(list_id)
    assert (contact["phone_number"], contact["first_name"], contact["email"]) == ("+61411111111", "Ada", None)
    assert msg.state == State.SENT
    assert writes(calls) == ["POST /v3/lists/{id}/contacts"]

    calls.clear()
    rt.processing.process_events([eid], time.time())  # the same event again (a drain re-run)
    drain(rt, "contact")
    assert calls == []  # the message exists already: nothing queued, nothing called
    again = event(rt, "c1-resent")  # the same customer in a new event: the write finds nothing to change
    drain(rt, "contact")
    assert the_message(rt, again).state == State.SENT
    assert writes(calls) == []
    assert simulator.state.directory.list_contacts(list_id) == [contact]  # not touched, not even date_updated
    assert the_message(rt, again).timeline[-1]["reason"] == (f"contact #{contact['contact_id']} on list Customers "
                                                             f"(#{list_id}) already has these fields: nothing written")


def test_an_upsert_updates_only_the_fields_that_differ(rt: Runtime, simulator: Simulator,
                                                       calls: list[Call]) -> None:
    event(rt, "c1")
    drain(rt, "contact")
    calls.clear()
    eid = event(rt, "c2", first_name="Ada", email="ada@example.com")
    drain(rt, "contact")
    [contact] = simulator.state.directory.list_contacts(customer_list(simulator))
    assert (contact["first_name"], contact["email"]) == ("Ada", "ada@example.com")
    assert writes(calls) == ["PUT /v3/lists/{id}/contacts/{id}"]
    assert the_message(rt, eid).timeline[-1]["reason"].endswith("updated on list Customers "
                                                                f"(#{customer_list(simulator)}): email")


def test_a_list_name_is_resolved_once_and_cached(rt: Runtime, calls: list[Call]) -> None:
    event(rt, "c1")
    event(rt, "c2", phone="+61422222222")
    drain(rt, "contact")
    assert sum(c.endpoint == "/v3/lists" for c in calls) == 1


def test_a_cached_id_of_a_list_deleted_since_is_looked_up_again(rt: Runtime, simulator: Simulator) -> None:
    rt.store.account.cache_list_id("Customers", 99999, 600)  # the id of a list that is gone
    eid = event(rt, "c1")
    drain(rt, "contact")
    assert the_message(rt, eid).state == State.SENT
    assert len(simulator.state.directory.list_contacts(customer_list(simulator))) == 1
    assert rt.store.account.cached_list_id("Customers") == customer_list(simulator)


def test_a_list_named_by_id_needs_no_lookup(rt: Runtime, simulator: Simulator, calls: list[Call]) -> None:
    use_rules(rt, str(customer_list(simulator)))
    eid = event(rt, "c1")
    drain(rt, "contact")
    assert the_message(rt, eid).state == State.SENT
    assert len(simulator.state.directory.list_contacts(customer_list(simulator))) == 1
    assert not any(c.endpoint == "/v3/lists" for c in calls)


@pytest.mark.parametrize(("ref", "reason"), [
    ("Nobody", "ClickSend refused: no ClickSend list is named 'Nobody'"),
    ("9999", "ClickSend refused: List #9999 not found."),
])
def test_an_unknown_list_fails_that_write_with_the_reason(rt: Runtime, ref: str, reason: str) -> None:
    use_rules(rt, ref)
    eid = event(rt, "c1")
    other = event(rt, "c2", type_="orders/create")  # an unrelated event still goes its way
    drain(rt, "contact")
    msg = the_message(rt, eid)
    assert (msg.state, msg.timeline[-1]["reason"]) == (State.FAILED, reason)
    assert rt.store.events.load_events([other])


def test_remove_takes_the_number_off_the_list(rt: Runtime, simulator: Simulator) -> None:
    event(rt, "c1")
    drain(rt, "contact")
    gone = event(rt, "c1-deleted", type_="test/leaves")
    absent = event(rt, "c2-deleted", type_="test/leaves", phone="+61422222222")
    drain(rt, "contact")
    assert simulator.state.directory.list_contacts(customer_list(simulator)) == []
    assert "removed from list Customers" in the_message(rt, gone).timeline[-1]["reason"]
    assert the_message(rt, absent).timeline[-1]["reason"] == (f"not on list Customers (#{customer_list(simulator)}):"
                                                              " nothing to remove")


def test_a_manual_policy_holds_the_write_until_approved(rt: Runtime, simulator: Simulator, client,  # noqa: ANN001
                                                        work) -> None:  # noqa: ANN001
    use_policies(rt, "policies:\n  default: {approval: manual, quiet_hours: {from: '00:00', to: '23:59'},"
                     " allow_countries: [US]}\n  paging: {}\n")
    eid = event(rt, "c1")
    msg = the_message(rt, eid)
    assert msg.state == State.HELD
    assert msg.timeline[-1]["reason"] == ("add or update the contact on list Customers; "
                                          "policy default: approval is manual")
    drain(rt, "contact")
    assert simulator.state.directory.list_contacts(customer_list(simulator)) == []
    listed = client.get("/api/approvals", headers=AUTH).json["approvals"]
    assert [a["id"] for a in listed] == [msg.id]
    operator = Operator(client)
    assert "+6141•••••11" in operator.get("/ui/approvals")
    assert "contact" in operator.get(f"/ui/events/{eid}")
    shown = client.get(f"/api/messages/{msg.id}", headers=AUTH).json
    assert (shown["channel"], shown["operation"], shown["list_ref"], shown["contact"], shown["to"]) == (
        "contact", "upsert", "Customers", {"first_name": "Ada"}, "+6141•••••11")

    answer = client.post(f"/api/approvals/{msg.id}/approve", json={"by": "ann"}, headers=AUTH)
    assert answer.json == {"results": {msg.id: "approved"}}
    work()
    drain(rt, "contact")
    done = the_message(rt, eid)
    # Quiet hours and allow_countries are about messages people receive: a contact write ignores them.
    assert (done.state, done.approved_by) == (State.SENT, "ann")
    assert [t["to"] for t in done.timeline] == ["planned", "held", "scheduled", "queued", "sending", "sent"]
    assert len(simulator.state.directory.list_contacts(customer_list(simulator))) == 1


def test_a_429_puts_the_write_back_and_it_is_written_once_later(rt: Runtime, simulator: Simulator,
                                                                calls: list[Call]) -> None:
    eid = event(rt, "c1")
    simulator.state.faults.rate_429 = 1.0
    now = time.time()
    outcome = rt.sender().flush("contact", now)
    assert outcome.wait > 0 and outcome.requeued == 1
    assert the_message(rt, eid).state == State.QUEUED
    assert rt.store.outbox.paused("contact")
    simulator.state.faults.rate_429 = 0.0
    drain(rt, "contact", start=now)
    msg = the_message(rt, eid)
    assert msg.state == State.SENT
    assert any(t["reason"].startswith("429 from ClickSend") for t in msg.timeline)
    assert writes(calls) == ["POST /v3/lists/{id}/contacts"]
    assert len(simulator.state.directory.list_contacts(customer_list(simulator))) == 1


def test_a_write_left_sending_by_a_dead_worker_is_written_once(rt: Runtime, simulator: Simulator) -> None:
    eid = event(rt, "c1")
    now = time.time()
    assert rt.store.outbox.claim_batch("contact", 10, now)  # a worker claimed it, then died
    # ... but not before ClickSend created the contact.
    simulator.state.directory.add_contact(customer_list(simulator), {"phone_number": "+61411111111",
                                                                     "first_name": "Ada"})
    result = rt.sender().recover(now + SENDING_LEASE + 1)
    assert result["requeued"] == 1
    drain(rt, "contact", start=now + SENDING_LEASE + 2)
    msg = the_message(rt, eid)
    assert msg.state == State.SENT and "already has these fields" in msg.timeline[-1]["reason"]
    assert len(simulator.state.directory.list_contacts(customer_list(simulator))) == 1


MEMBERS = ["+61411111111", "+61422222222", "+61433333333", "+61444444444"]


def members(sim: Simulator, numbers: list[str]) -> int:
    list_id = customer_list(sim)
    for number in numbers:
        sim.state.directory.add_contact(list_id, {"phone_number": number})
    return list_id


def test_a_send_to_a_list_reaches_each_number_once_but_the_opted_out(rt: Runtime, simulator: Simulator) -> None:
    members(simulator, MEMBERS)
    simulator.state.directory.add_contact(428, {"phone_number": "+61422222222"})  # ClickSend's Opt-Out List
    rt.store.optouts.opt_out("+61433333333", time.time(), "reply", "STOP")  # Hookline's suppression list
    eid = event(rt, "sale-1", type_="test/sale")
    parent = the_message(rt, eid)
    assert (parent.state, parent.list_ref, parent.to) == (State.QUEUED, "Customers", None)
    drain(rt, "sms")
    assert sends(simulator) == 1  # the list's numbers went out in one call
    children = {m.to: m for m in children_of(rt, eid)}
    assert {n: m.state for n, m in children.items()} == {
        "+61411111111": State.SENT, "+61422222222": State.SUPPRESSED, "+61433333333": State.SUPPRESSED,
        "+61444444444": State.SENT}
    assert children["+61422222222"].timeline[-1]["reason"] == "on list Customers; on ClickSend's Opt-Out List"
    assert "opted out" in children["+61433333333"].timeline[-1]["reason"]
    assert set(simulator.state.ledger) == {children["+61411111111"].id, children["+61444444444"].id}
    assert {s.to for s in simulator.state.sent} == {"+61411111111", "+61444444444"}
    done = the_message_by_id(rt, parent.id)
    assert done.state == State.SENT
    assert done.timeline[-1]["reason"] == ("list Customers: a message for each of its 4 number(s) "
                                           "(2 queued, 2 suppressed)")

    rt.processing.process_events([eid], time.time())  # the event again: the list is not sent to twice
    drain(rt, "sms")
    assert sends(simulator) == 1


def children_of(rt: Runtime, event_id: str) -> list[Message]:
    """The messages of an event to a number (those a send to a list became), with their timelines."""
    found = [rt.store.messages.get_message(m) for m in rt.store.messages.event_message_ids(event_id)]
    return [m for m in found if m is not None and m.to]


def the_message_by_id(rt: Runtime, message_id: str) -> Message:
    msg = rt.store.messages.get_message(message_id)
    assert msg is not None
    return msg


def test_a_long_list_goes_out_one_call_per_batch(rt: Runtime, simulator: Simulator) -> None:
    members(simulator, [f"+6141111{i:04d}" for i in range(5)])
    rt.settings = rt.settings.with_(send_batch=2)
    event(rt, "sale-1", type_="test/sale")
    drain(rt, "sms")
    assert sends(simulator) == 3
    assert len(simulator.state.sent) == 5


def test_a_send_to_an_unknown_list_fails_with_the_reason(rt: Runtime, simulator: Simulator) -> None:
    use_rules(rt, "Nobody")
    eid = event(rt, "sale-1", type_="test/sale")
    drain(rt, "sms")
    parent = the_message(rt, eid)
    assert (parent.state, parent.timeline[-1]["reason"]) == (State.FAILED,
                                                            "ClickSend refused: no ClickSend list is named 'Nobody'")
    assert sends(simulator) == 0


def test_a_send_to_a_list_approved_once_is_not_held_again_per_number(rt: Runtime, simulator: Simulator,
                                                                      client, work) -> None:  # noqa: ANN001
    members(simulator, MEMBERS[:2])
    use_policies(rt, "policies:\n  default: {approval: manual}\n  paging: {}\n")
    eid = event(rt, "sale-1", type_="test/sale")
    parent = the_message(rt, eid)
    assert parent.state == State.HELD
    assert client.post(f"/api/approvals/{parent.id}/approve", json={"by": "ann"}, headers=AUTH).status_code == 200
    work()
    drain(rt, "sms")
    children = children_of(rt, eid)
    assert [m.state for m in children] == [State.SENT] * 2
    assert all("policy default: approved automatically; the send to its list was approved by ann"
               in m.timeline[1]["reason"] for m in children)
    assert all((m.approved_by, m.list_approved_by) == (None, "ann") for m in children)


def test_approving_a_send_to_a_list_does_not_lift_the_budget_for_its_numbers(
        rt: Runtime, simulator: Simulator, client, work, monkeypatch) -> None:  # noqa: ANN001
    members(simulator, MEMBERS[:2])
    # Each SMS is priced 0.0792 by the simulator: the first number's fits the budget, the second's would not.
    use_policies(rt, "policies:\n  default: {approval: manual, daily_budget: 0.10}\n  paging: {}\n")
    eid = event(rt, "sale-1", type_="test/sale")
    parent = the_message(rt, eid)
    assert parent.state == State.HELD
    # What the approver is shown: the list and its size as ClickSend counted it when the send was held.
    [shown] = client.get("/api/approvals", headers=AUTH).json["approvals"]
    assert (shown["id"], shown["list_ref"], shown["list_size"], shown["to"]) == (parent.id, "Customers", 2, None)
    page = Operator(client).get("/ui/approvals")
    assert "list Customers" in page and "2 contact(s) when held" in page
    monkeypatch.setenv("REDIS_URL", rt.settings.redis_url)
    monkeypatch.setenv("HOOKLINE_RULES_DIR", rt.settings.rules_dir)
    listed = CliRunner().invoke(main, ["approvals", "list"])
    assert listed.exit_code == 0 and "list Customers (2 contacts when held)" in listed.output, listed.output

    assert client.post(f"/api/approvals/{parent.id}/approve", json={"by": "ann"}, headers=AUTH).status_code == 200
    work()
    drain(rt, "sms")
    first, second = sorted(children_of(rt, eid), key=lambda m: m.to or "")
    assert (first.state, second.state) == (State.SENT, State.HELD)
    assert second.timeline[-1]["reason"] == ("on list Customers; today's spend 0.0792 + estimate 0.0792 is over "
                                             "daily_budget 0.1")
    assert {s.to for s in simulator.state.sent} == {first.to}
    # The number held waits for its own approval, as any message would, and a person's approval of it lifts
    # its holds.
    held = [a["id"] for a in client.get("/api/approvals", headers=AUTH).json["approvals"]]
    assert held == [second.id]
    assert client.post(f"/api/approvals/{second.id}/approve", json={"by": "bob"}, headers=AUTH).status_code == 200
    work()
    drain(rt, "sms")
    done = the_message_by_id(rt, second.id)
    assert (done.state, done.approved_by) == (State.SENT, "bob")
    assert any("policy default: approved by bob" in t["reason"] for t in done.timeline)
    assert {s.to for s in simulator.state.sent} == {first.to, second.to}


def test_a_held_send_to_a_list_clicksend_cannot_count_is_held_without_a_size(rt: Runtime, client) -> None:  # noqa: ANN001
    use_rules(rt, "Nobody")
    use_policies(rt, "policies:\n  default: {approval: manual}\n  paging: {}\n")
    parent = the_message(rt, event(rt, "sale-1", type_="test/sale"))
    assert parent.state == State.HELD  # the list is read again when it is sent, and fails then with the reason
    [shown] = client.get("/api/approvals", headers=AUTH).json["approvals"]
    assert (shown["list_ref"], shown["list_size"]) == ("Nobody", None)
    assert "when held" not in Operator(client).get("/ui/approvals")


def test_a_number_of_an_approved_list_deferred_then_due_is_not_held_for_manual_approval(
        rt: Runtime, simulator: Simulator, client, work) -> None:  # noqa: ANN001
    members(simulator, MEMBERS[:1])
    use_policies(rt, "policies:\n  default: {approval: manual, max_per_recipient: {count: 1, per: 1h}}\n"
                     "  paging: {}\n")
    for sale in ("sale-1", "sale-2"):
        parent = the_message(rt, event(rt, sale, type_="test/sale"))
        assert client.post(f"/api/approvals/{parent.id}/approve", json={"by": "ann"},
                           headers=AUTH).status_code == 200
        work()
        drain(rt, "sms")
    [deferred] = children_of(rt, "evt_shop_sale-2")
    assert deferred.state == State.SCHEDULED  # the number's window is full: deferred by an hour
    # When it is due it is admitted again from what is stored: the approval of the list's send is still known.
    assert rt.processing.fire(deferred.id, time.time() + 3601)
    due = the_message_by_id(rt, deferred.id)
    assert due.state == State.QUEUED, due.timeline[-1]
    assert "the send to its list was approved by ann" in due.timeline[-1]["reason"]


def test_a_write_interrupted_time_after_time_fails_instead_of_being_done_again_forever(
        rt: Runtime, simulator: Simulator, calls: list[Call]) -> None:
    eid = event(rt, "c1")
    now = time.time()
    for attempt in range(1, MAX_INTERRUPTED + 1):
        # Claimed by a flush whose worker died (or ran out of time) before the write was done, every time.
        assert rt.store.outbox.claim_batch("contact", 10, now) == [the_message(rt, eid).id]
        now += SENDING_LEASE + 1
        result = rt.sender().recover(now)
        assert result["requeued"] == (1 if attempt < MAX_INTERRUPTED else 0), attempt
    msg = the_message(rt, eid)
    assert msg.state == State.FAILED
    assert msg.timeline[-1]["reason"].startswith(f"interrupted {MAX_INTERRUPTED} times before it was done")
    assert [t["reason"] for t in msg.timeline].count(INTERRUPTED) == MAX_INTERRUPTED - 1
    assert rt.store.outbox.outbox_length("contact") == 0 and writes(calls) == []


def test_the_claim_of_a_long_contact_write_is_renewed_while_it_runs(rt: Runtime, simulator: Simulator,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    eid = event(rt, "c1")
    mid = the_message(rt, eid).id
    monkeypatch.setattr(sender, "SENDING_LEASE", 0.3)  # renewed every 0.1 s instead of every 40
    renewed = threading.Event()
    keep_sending = rt.store.outbox.keep_sending

    def keep(ids: list[str], now: float) -> int:
        kept = keep_sending(ids, now)
        if kept:
            renewed.set()
        return kept

    monkeypatch.setattr(rt.store.outbox, "keep_sending", keep)
    write = ContactLists.write
    now = time.time()

    def long_write(self: ContactLists, msg: Message, now: float) -> Change:
        assert renewed.wait(30), "the claim was never renewed while the write ran"
        assert rt.store.r.zscore(state_index_key(State.SENDING), msg.id) > now  # claimed afresh, later
        return write(self, msg, now)

    monkeypatch.setattr(ContactLists, "write", long_write)
    assert rt.sender().flush("contact", now).sent == 1
    assert the_message(rt, eid).state == State.SENT
    assert rt.store.outbox.keep_sending([mid], now + 1) == 0  # sent: not sending, nothing to renew


def test_a_renewal_redis_could_not_take_does_not_stop_the_renewals_after_it(rt: Runtime, simulator: Simulator,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    eid = event(rt, "c2")
    monkeypatch.setattr(sender, "SENDING_LEASE", 0.3)  # renewed every 0.1 s instead of every 40
    calls: list[str] = []
    renewed = threading.Event()
    keep_sending = rt.store.outbox.keep_sending

    def flaky(ids: list[str], now: float) -> int:
        calls.append("try")
        if len(calls) == 1:
            raise StoreUnavailable("Redis unavailable: Connection refused")  # what the store raises for a blip
        kept = keep_sending(ids, now)
        renewed.set()
        return kept

    monkeypatch.setattr(rt.store.outbox, "keep_sending", flaky)
    write = ContactLists.write

    def long_write(self: ContactLists, msg: Message, now: float) -> Change:
        assert renewed.wait(30), "the renewals stopped after the one Redis could not take"
        return write(self, msg, now)

    monkeypatch.setattr(ContactLists, "write", long_write)
    assert rt.sender().flush("contact", time.time()).sent == 1
    assert len(calls) >= 2 and the_message(rt, eid).state == State.SENT
