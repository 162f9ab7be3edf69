"""The operator pages through Flask's test client: every page needs a sign-in and every form its CSRF token;
the filters and paging; and each action handed over to real workers (RQ burst workers on the test Redis)
reaching the state it promises."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import API_TOKEN, EXAMPLES_DIR, Simulator, use_policies
from tests.messages import message
from tests.origin_server import Origin
from tests.test_end_to_end import post_order
from tests.webhooks.test_ui import form_token
from webhooks.ui import events as events_page
from webhooks.ui import messages as messages_page
from workers.entry.runtime import Runtime
from workers.flow.origin import callback_id_for
from workers.wiring import handover

MANUAL = "policies:\n  default: {approval: manual, approval_expires: 2h}\n  paging: {}\n"

PAGES = ["/ui/", "/ui/events", "/ui/events/evt_x", "/ui/messages", "/ui/messages?state=failed", "/ui/approvals",
         "/ui/outboxes", "/ui/suppression", "/ui/rules"]
ACTIONS = ["/ui/approvals/decide", "/ui/messages/resend", "/ui/messages/cancel", "/ui/events/replay",
           "/ui/outboxes/sms/resume", "/ui/suppression/add", "/ui/suppression/remove", "/ui/logout"]


class Operator:
    """A browser signed in to the pages: GETs return the page text, POSTs carry the session's CSRF token."""

    def __init__(self, client) -> None:  # noqa: ANN001
        self.client = client
        page = client.get("/ui/login").get_data(as_text=True)
        signed = client.post("/ui/login", data={"name": "Ann", "token": API_TOKEN, "csrf": form_token(page)})
        assert signed.status_code == 302
        self.csrf = form_token(client.get("/ui/outboxes").get_data(as_text=True))

    def get(self, url: str, status: int = 200) -> str:
        answer = self.client.get(url)
        assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
        return answer.get_data(as_text=True)

    def post(self, url: str, data: dict, back: str | None = None) -> str:
        """Send a form as the page would; return the page it leads back to (with its flash line)."""
        answer = self.client.post(url, data=data | {"csrf": self.csrf, "back": back or ""})
        assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]
        return self.get(answer.headers["Location"])


@pytest.fixture
def operator(client) -> Operator:  # noqa: ANN001
    return Operator(client)


def flash_line(page: str) -> str:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', page, re.S)
    assert found, page[:2000]
    return found.group(1)


def order(client, webhook_id: str, phone: str = "+61411111111", number: int = 1) -> str:  # noqa: ANN001
    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())
    payload |= {"id": number, "name": f"#{number}", "customer": payload["customer"] | {"phone": phone}}
    return post_order(client, webhook_id, payload)


def only_message(rt: Runtime, event_id: str) -> str:
    [mid] = rt.store.messages.event_message_ids(event_id)
    return mid


@pytest.mark.parametrize("url", PAGES)
def test_every_page_asks_for_a_sign_in_and_returns_there(client, url: str) -> None:  # noqa: ANN001
    answer = client.get(url)
    assert answer.status_code == 401
    page = answer.get_data(as_text=True)
    assert 'name="token"' in page and f'name="next" value="{url.rstrip("?")}' in page


@pytest.mark.parametrize("url", ACTIONS)
def test_every_action_needs_a_sign_in(client, url: str) -> None:  # noqa: ANN001
    answer = client.post(url, data={"ids": "msg_x", "number": "+61411111111"})
    assert answer.status_code == 401 and 'name="token"' in answer.get_data(as_text=True)


@pytest.mark.parametrize("url", ACTIONS)
def test_every_action_is_refused_without_the_forms_token(operator: Operator, url: str) -> None:
    for token in (None, "forged"):
        data = {"ids": "msg_x", "number": "+61411111111", "action": "approve"} | ({"csrf": token} if token else {})
        answer = operator.client.post(url, data=data)
        assert answer.status_code == 403
        assert "The form expired or did not come from this site" in answer.get_data(as_text=True)
    operator.get("/ui/outboxes")  # still signed in: sign-out was refused too


def test_every_page_has_the_phone_viewport_and_escapes_what_it_shows(operator: Operator, e2e: Runtime,
                                                                      client, work) -> None:  # noqa: ANN001
    use_policies(e2e, MANUAL)
    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text()) | {"name": "<script>alert(1)</script>"}
    event_id = post_order(client, "escape-1", payload)
    work()
    for url in [*PAGES, f"/ui/events/{event_id}"]:
        page = operator.get(url, 404 if url.endswith("evt_x") else 200)
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in operator.get("/ui/approvals")


def test_approve_with_a_note_hands_the_message_to_the_workers(operator: Operator, e2e: Runtime, client,  # noqa: ANN001
                                                              work, simulator: Simulator) -> None:
    use_policies(e2e, MANUAL)
    event_id = order(client, "approve-1")
    work()
    mid = only_message(e2e, event_id)
    page = operator.get("/ui/approvals")
    assert mid in page and "policy default: approval is manual" in page
    assert "local time: Australia/" in page  # the recipient's zones, from the number
    held_at = e2e.store.messages.get_message(mid).updated_at
    assert f"expires <time datetime=\"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(held_at + 7200))}" in page
    after = operator.post("/ui/approvals/decide", {"ids": mid, "action": "approve", "note": "customer called"})
    assert flash_line(after) == f"{mid}: approved"
    work(with_scheduler=True)
    msg = e2e.store.messages.get_message(mid)
    assert (msg.state, msg.approved_by, msg.approval_note) == ("sent", "Ann", "customer called")
    assert simulator.state.ledger == {mid: 1}
    again = operator.post("/ui/approvals/decide", {"ids": mid, "action": "reject", "note": "too late"})
    assert flash_line(again) == f"{mid}: not held (sent)"


def test_bulk_approve_by_rule_and_reject_ticked(operator: Operator, e2e: Runtime, client, work) -> None:  # noqa: ANN001
    use_policies(e2e, MANUAL)
    events = [order(client, f"bulk-{n}", f"+6141111111{n}", n) for n in range(3)]
    work()
    ids = [only_message(e2e, e) for e in events]
    listed = operator.get("/ui/approvals?rule=order-confirmation")
    assert "approve all 3 of rule order-confirmation" in listed
    assert "Nothing is waiting" in operator.get("/ui/approvals?rule=no-such-rule")
    rejected = operator.post("/ui/approvals/decide", {"ids": [ids[0]], "action": "reject", "note": "spam"})
    assert flash_line(rejected) == f"{ids[0]}: rejected"
    done = operator.post("/ui/approvals/decide", {"all": "1", "rule": "order-confirmation", "action": "approve"})
    assert flash_line(done) == "2 approved"
    states = [e2e.store.messages.get_message(m) for m in ids]
    assert [(m.state, m.rejected_by or m.approved_by) for m in states] == [
        ("rejected", "Ann"), ("scheduled", "Ann"), ("scheduled", "Ann")]
    assert states[0].approval_note == "spam"


def test_bulk_approve_every_held_message_of_one_event(operator: Operator, e2e: Runtime) -> None:
    now = time.time()
    held = [message(id=f"msg_ev{n}", event_id="evt_two" if n < 2 else "evt_other", state="held",
                    to=f"+6141111116{n}", body="hold") for n in range(3)]
    e2e.store.messages.create_messages(held, now)
    listed = operator.get("/ui/approvals?event_id=evt_two")
    assert "msg_ev0" in listed and "msg_ev1" in listed and "msg_ev2" not in listed
    assert "approve all 2 of event evt_two" in listed
    done = operator.post("/ui/approvals/decide", {"all": "1", "event_id": "evt_two", "action": "approve",
                                                  "note": "both on call"})
    assert flash_line(done) == "2 approved"
    states = [e2e.store.messages.get_message(m.id) for m in held]
    assert [(m.state, m.approved_by, m.approval_note) for m in states] == [
        ("scheduled", "Ann", "both on call"), ("scheduled", "Ann", "both on call"), ("held", None, None)]


def test_a_failed_message_is_resent_once_from_its_event_page(operator: Operator, e2e: Runtime,  # noqa: ANN001
                                                             client, work, simulator: Simulator) -> None:
    simulator.state.faults.invalid_numbers = ["+61411111111"]
    event_id = order(client, "resend-1")
    work()
    mid = only_message(e2e, event_id)
    assert e2e.store.messages.message_state(mid) == "failed"
    assert mid in operator.get("/ui/messages?state=failed")
    page = operator.get(f"/ui/events/{event_id}")
    assert 'action="/ui/messages/resend"' in page
    simulator.state.faults.invalid_numbers = []
    resent = operator.post("/ui/messages/resend", {"ids": mid}, back=f"/ui/events/{event_id}")
    new = handover.resend_id(mid)
    assert flash_line(resent) == f"{mid}: resent as {new}"
    assert f'resent as <a href="#{new}">' in resent  # the event's page, where the resend now shows
    work(with_scheduler=True)
    assert e2e.store.messages.message_state(new) == "sent"
    assert set(e2e.store.messages.event_message_ids(event_id)) == {mid, new}
    assert any(t.get("kind") == "resent" and "by Ann" in t["reason"]
               for t in e2e.store.messages.get_message(mid).timeline)
    twice = operator.post("/ui/messages/resend", {"ids": [mid, new]})
    assert flash_line(twice) == f"1 already resent as {new}; 1 not resendable (sent)"
    assert simulator.state.ledger.get(new) == 1


def test_pending_messages_are_cancelled_in_bulk_by_a_worker(operator: Operator, e2e: Runtime,  # noqa: ANN001
                                                            client, work) -> None:
    use_policies(e2e, MANUAL)
    events = [order(client, f"cancel-{n}", f"+6141111112{n}", n) for n in range(2)]
    work()
    ids = [only_message(e2e, e) for e in events]
    listed = operator.get("/ui/messages?state=held")
    assert all(m in listed for m in ids) and 'action="/ui/messages/cancel"' in listed
    asked = operator.post("/ui/messages/cancel", {"ids": [*ids, "msg_missing"], "note": "duplicate order"})
    assert flash_line(asked) == "2 cancelling; 1 missing"
    work()
    for mid in ids:
        msg = e2e.store.messages.get_message(mid)
        assert msg.state == "cancelled"
        assert msg.timeline[-1]["reason"] == "cancelled by Ann: duplicate order"


def test_a_callback_that_gave_up_is_replayed_from_the_event_page(operator: Operator, e2e: Runtime,  # noqa: ANN001
                                                                 client, work, origin: Origin) -> None:
    origin.script = [(500, {})] * 3
    origin.answer = b'{"error": "orders <db> down"}'
    event_id = order(client, "replay-1")
    work()
    mid = only_message(e2e, event_id)
    cid = callback_id_for(mid, "sent")
    sender, now = e2e.callback_sender(), time.time()
    assert [sender.deliver(cid, now + 1000 * i) for i in (1, 2)] == ["pending", "exhausted"]
    page = operator.get(f"/ui/events/{event_id}")
    assert page.count('<td data-label="response">HTTP 500') == 3 and 'name="callbacks" value="' + cid in page
    assert page.count('<pre class="answer">{&#34;error&#34;: &#34;orders &lt;db&gt; down&#34;}</pre>') == 3
    [api_message] = client.get(f"/api/events/{event_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
                               ).json["messages"]
    [api_callback] = api_message["callbacks"]
    assert [(a["status"], a["body"], a["next"]) for a in api_callback["attempts"]] == [
        (500, '{"error": "orders <db> down"}', "retry")] * 2 + [(500, '{"error": "orders <db> down"}', "exhausted")]
    replayed = operator.post("/ui/events/replay", {"callbacks": cid}, back=f"/ui/events/{event_id}")
    assert flash_line(replayed) == f"{cid}: replaying"
    work(("hookline-callbacks",))
    assert e2e.store.callbacks.get_callback(cid).status == "delivered"
    assert '<td data-label="response">HTTP 200' in operator.get(f"/ui/events/{event_id}")
    assert any(t.get("kind") == "replay" and "by Ann" in t["reason"]
               for t in e2e.store.messages.get_message(mid).timeline)
    assert flash_line(operator.post("/ui/events/replay", {"callbacks": cid})) == f"{cid}: not replayable (delivered)"


def test_messages_by_state_are_filtered_by_time_and_paged(operator: Operator, e2e: Runtime, client, work,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    use_policies(e2e, MANUAL)
    events = [order(client, f"page-{n}", f"+6141111113{n}", n) for n in range(3)]
    work()
    ids = [only_message(e2e, e) for e in events]
    monkeypatch.setattr(messages_page, "PAGE_SIZE", 2)
    first = operator.get("/ui/messages?state=held")
    older = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert older, first
    second = operator.get(older.group(1).replace("&amp;", "&"))
    assert 'rel="next"' not in second
    shown = [m for m in ids if m in first], [m for m in ids if m in second]
    assert sorted(shown[0] + shown[1]) == sorted(ids) and len(shown[0]) == 2
    future = int(time.time()) + 3600
    assert "No held message in that time" in operator.get(f"/ui/messages?state=held&since={future}")
    until = operator.get("/ui/messages?state=held&until=" + str(future))
    assert sum(m in until for m in ids) == 2  # a page of two (the events' drains may have run at different times)
    assert operator.client.get("/ui/messages?state=nonsense").status_code == 400
    assert '<b>3</b>held' in operator.get("/ui/messages")


def test_messages_are_filtered_by_source_and_found_by_any_of_their_ids(operator: Operator, e2e: Runtime,  # noqa: ANN001
                                                                       client, work) -> None:
    events = [order(client, f"find-{n}", f"+6141111115{n}", n) for n in range(2)]
    work()
    first, second = (e2e.store.messages.get_message(only_message(e2e, e)) for e in events)
    assert first.provider_id and first.state == "sent"
    listed = operator.get("/ui/messages?source=shop")
    assert first.id in listed and second.id in listed and '<option selected>shop</option>' in listed
    assert first.id not in operator.get("/ui/messages?source=alerts")
    for term in (first.id, first.provider_id, events[0], "find-0"):  # its id, ClickSend's, its event's, the shop's
        found = operator.get(f"/ui/messages?q={term}")
        assert (first.id in found, second.id in found) == (True, False), term
    assert "No sent message" in operator.get("/ui/messages?q=find-0&state=sent&source=alerts")
    unknown = operator.get("/ui/messages?state=unknown")
    assert 'id="unknown-help"' in unknown and "look each up in\nClickSend's history" in unknown
    assert 'id="unknown-help"' not in listed


def test_a_paused_outbox_shows_why_and_resumes(operator: Operator, e2e: Runtime, client, work) -> None:  # noqa: ANN001
    e2e.store.messages.create_messages([message(id=f"msg_wait{n}", state="queued", to=f"+6141111117{n}")
                                        for n in range(2)], time.time())
    e2e.store.outbox.pause("sms", time.time() + 600, "ClickSend answered 429")
    page = operator.get("/ui/outboxes")
    assert "paused until" in page and "ClickSend answered 429" in page
    assert re.search(r'<tr id="outbox-sms">\s*<td data-label="channel">sms</td>\s*<td data-label="waiting">2<', page)
    resumed = operator.post("/ui/outboxes/sms/resume", {})
    assert flash_line(resumed) == "sms outbox resumed" and "idle" in resumed
    assert e2e.store.outbox.paused("sms") is None
    assert flash_line(operator.post("/ui/outboxes/sms/resume", {})) == "sms outbox was not paused"
    assert operator.client.post("/ui/outboxes/fax/resume", data={"csrf": operator.csrf}).status_code == 404


def test_the_suppression_list_is_added_to_and_removed_from(operator: Operator, e2e: Runtime) -> None:
    added = operator.post("/ui/suppression/add", {"number": "+61 412 345 678", "note": "asked by phone"})
    assert flash_line(added) == "+6141•••••78 receives nothing from now on."
    entry = e2e.store.optouts.optouts()["+61412345678"]
    assert (entry["via"], entry["detail"]) == ("operator", "added by Ann: asked by phone")
    assert "added by Ann: asked by phone" in added
    since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(entry["since"]))
    assert re.search(rf'<td data-label="since"><time datetime="{since}', added), added  # and when
    assert flash_line(operator.post("/ui/suppression/add", {"number": "12"})).startswith("That is not a valid")
    removed = operator.post("/ui/suppression/remove", {"number": "+61412345678"})
    assert flash_line(removed) == "+6141•••••78 may receive messages again."
    assert e2e.store.optouts.optouts() == {} and "No number is suppressed." in removed


def test_the_rules_page_shows_the_loaded_set_and_a_broken_edit_with_its_line(operator: Operator,
                                                                             runtime: Runtime) -> None:
    page = operator.get("/ui/rules")
    assert "order-confirmation" in page and "the set in use was loaded <time" in page
    broken = Path(runtime.rules.directory) / "shop.yaml"
    broken.write_text(broken.read_text() + "\n  - name: [unclosed\n")
    runtime.rules._checked = 0  # look at the files now, not within the second
    page = operator.get("/ui/rules")
    assert re.search(r"<li><code>shop\.yaml:\d+: not valid YAML", page), page
    assert "the set below is still in use" in page and "order-confirmation" in page


def test_the_dashboard_counts_the_last_hour_and_links_into_the_lists(operator: Operator, e2e: Runtime,  # noqa: ANN001
                                                                     client, work, simulator: Simulator) -> None:
    simulator.state.faults.invalid_numbers = ["+61411111119"]
    order(client, "dash-1", "+61411111118", 1)
    order(client, "dash-2", "+61411111119", 2)
    work()
    page = operator.get("/ui/")
    for state in ("sent", "failed"):
        link = re.search(rf'<a href="([^"]+)" id="{state}-hour"><b>(\d+)</b>', page)
        assert link and link.group(2) == "1", page
        assert "state=" + state in link.group(1) and "since=" in link.group(1)
        listed = operator.get(link.group(1).replace("&amp;", "&"))
        assert listed.count('<tr id="msg_') == 1
    for state, count in (("sent", 1), ("failed", 1), ("delivered", 0)):  # and the same for the day
        link = re.search(rf'<a href="([^"]+)" id="{state}-day"><b>(\d+)</b>', page)
        assert link and int(link.group(2)) == count, page
        since = float(re.search(r"since=(\d+)", link.group(1)).group(1))
        assert since == pytest.approx(time.time() - 86400, abs=60)
        assert operator.get(link.group(1).replace("&amp;", "&")).count('<tr id="msg_') == count
    assert re.search(r"<title>[^<]*: 1 sent, 1 failed</title>", page)  # this hour's bars in the chart
    events = re.search(r'<a href="([^"]+)" id="events-hour"><b>(\d+)</b>', page)
    assert events and events.group(2) == "2"
    assert operator.get(events.group(1).replace("&amp;", "&")).count('href="/ui/events/evt_') == 2


def test_an_event_page_tells_the_whole_story(operator: Operator, e2e: Runtime, client, work) -> None:  # noqa: ANN001
    event_id = order(client, "story-1")
    work()
    page = operator.get(f"/ui/events/{event_id}")
    assert "orders/create" in page and "story-1" in page and "order-confirmation" in page
    assert "&#34;email&#34;: &#34;bob.norman@hostmail.com&#34;" in page  # the payload
    assert "queued → " in page and "accepted by ClickSend" in page and "HTTP 200" in page
    assert "+6141•••••11" in page
    assert "There is no event evt_nope" in operator.get("/ui/events/evt_nope", 404)
    found = operator.get(f"/ui/events?q={event_id}")
    assert f'href="/ui/events/{event_id}"' in found


def test_events_are_listed_newest_first_filtered_searched_and_paged(operator: Operator, e2e: Runtime,  # noqa: ANN001
                                                                    client, work,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    events = [order(client, f"list-{n}", f"+6141111114{n}", n) for n in range(3)]
    work()
    listed = operator.get("/ui/events")
    assert [listed.index(e) for e in reversed(events)] == sorted(listed.index(e) for e in events)  # newest first
    for query in ("source=shop", "type=orders/create", "status=processed", "rule=order-confirmation",
                  f"since={int(time.time()) - 600}"):
        assert all(e in operator.get(f"/ui/events?{query}") for e in events), query
    for query in ("source=alerts", "type=orders/cancelled", "status=failed", "rule=reminder-24h",
                  f"since={int(time.time()) + 600}", f"until={int(time.time()) - 600}"):
        assert not any(e in operator.get(f"/ui/events?{query}") for e in events), query
    by_external = operator.get("/ui/events?q=list-1")
    assert events[1] in by_external and events[0] not in by_external and events[2] not in by_external
    assert events[2] in operator.get(f"/ui/events?q={events[2]}")
    assert operator.client.get("/ui/events?status=lost").status_code == 400
    assert operator.client.get("/ui/events?cursor=nonsense").status_code == 400
    for bad in ("since=nan", "until=yesterday"):  # a filter that cannot be read is said so, never dropped
        for listing in ("/ui/events", "/ui/messages"):
            answer = operator.client.get(f"{listing}?{bad}")
            assert (answer.status_code, "is not a time" in answer.get_data(as_text=True)) == (400, True), bad
    monkeypatch.setattr(events_page, "PAGE_SIZE", 2)
    first = operator.get("/ui/events?source=shop")
    older = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert older and events[2] in first and events[1] in first and events[0] not in first
    second = operator.get(older.group(1).replace("&amp;", "&"))
    assert events[0] in second and events[1] not in second and 'rel="next"' not in second
    # Query words that are url_for's own are no filters: the page and its link ignore them (was a 500).
    odd = operator.get("/ui/events?source=shop&endpoint=x&_method=POST&_external=1")
    link = re.search(r'<a href="([^"]+)" rel="next">', odd)
    assert link and link.group(1).startswith("/ui/events?") and "endpoint" not in link.group(1)
    assert operator.client.get("/ui/messages?channel=pigeon").status_code == 400  # not silently empty
