"""Rules that send a stored ClickSend template (`template: clicksend:…`), processed by the real flow against the
simulator over HTTP with a real Redis: both placeholder styles rendered, the shared copy refreshed after the
interval and not before (the clock passed in), an outage riding on the last copy, a missing template a load
error with credentials and a failed message without."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Simulator, serve
from tests.flow.test_processing import ingest, messages_of
from workers.clicksend.client import ClickSendClient
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.core.lifecycle import State
from workers.core.storedtemplates import NOT_FETCHED
from workers.entry.runtime import Runtime
from workers.errors import ProviderUnavailable
from workers.wiring.settings import Settings

RULE = """\
rules:
  - name: welcome-stored
    source: shop
    event: customers/create
    send:
      channel: sms
      to: "{{{{ payload.phone }}}}"
      template: {ref}
      placeholders: {{first_name: "{{{{ payload.first_name }}}}", custom_1: "{{{{ payload.code }}}}"}}
"""
BODY = "Hi {first_name}, welcome to {{ payload.shop | upper }}. Your code: {custom_1}"
CUSTOMER = {"id": 7, "phone": "+61411111111", "first_name": "Ada", "shop": "ShopCo", "code": "ADA-7"}
REFRESH = 300.0


def sim_client(sim: Simulator) -> ClickSendClient:
    return ClickSendClient(sim.url, username="user", api_key="key")


def store_template(sim: Simulator, name: str = "welcome", body: str = BODY) -> int:
    """Create a template in the simulator through its HTTP API; its id."""
    return int(sim_client(sim).request("POST", "/v3/sms/templates", json={"template_name": name, "body": body},
                                       idempotent=False)["template_id"])


def build(settings: Settings, rules_dir: Path, url: str | None, ref: str = "clicksend:welcome",
          credentials: bool = True) -> Runtime:
    (rules_dir / "stored.yaml").write_text(RULE.format(ref=ref))
    creds = {"clicksend_username": "user", "clicksend_api_key": "key"} if credentials else {}
    return Runtime.build(settings.with_(clicksend_base_url=url, template_refresh=REFRESH, **creds))


def welcome(rt: Runtime, n: int, now: float, payload: dict | None = None) -> object:
    """Process customer `n`'s customers/create event at `now`; the stored-template rule's one message (the shipped
    rules also add the customer to a list)."""
    event_id = ingest(rt, "shop", payload or CUSTOMER, "customers/create", f"cust-{n}")
    rt.processing.process_events([event_id], now)
    [message] = [m for m in messages_of(rt, event_id) if m.rule == "welcome-stored"]
    return message


def test_a_stored_template_fills_clicksend_placeholders_and_jinja_expressions(
        settings: Settings, rules_dir: Path, simulator: Simulator) -> None:
    store_template(simulator)
    rt = build(settings, rules_dir, simulator.url)
    assert rt.rules.loaded, rt.rules.errors
    message = welcome(rt, 1, time.time())
    assert message.state == State.QUEUED, message.reasons
    assert message.body == "Hi Ada, welcome to SHOPCO. Your code: ADA-7"


def test_a_template_named_by_id_renders_the_same(settings: Settings, rules_dir: Path, simulator: Simulator) -> None:
    store_template(simulator, "other", "Bye {first_name}")
    template_id = store_template(simulator)
    rt = build(settings, rules_dir, simulator.url, ref=f"clicksend:{template_id}")
    assert welcome(rt, 1, time.time()).body == "Hi Ada, welcome to SHOPCO. Your code: ADA-7"


def test_a_changed_template_is_used_once_the_refresh_interval_has_passed_and_not_before(
        settings: Settings, rules_dir: Path, simulator: Simulator) -> None:
    template_id = store_template(simulator)
    rt = build(settings, rules_dir, simulator.url)
    start = time.time()
    assert welcome(rt, 1, start).body.startswith("Hi Ada, welcome")
    sim_client(simulator).request("PUT", f"/v3/sms/templates/{template_id}", json={"body": "Hello {first_name}!"})
    fetched_at = rt.store.templates.load()[1]
    assert welcome(rt, 2, fetched_at + REFRESH - 1).body.startswith("Hi Ada, welcome")  # the shared copy
    assert welcome(rt, 3, fetched_at + REFRESH).body == "Hello Ada!"


def test_every_worker_shares_one_copy_through_redis(settings: Settings, rules_dir: Path,
                                                    simulator: Simulator) -> None:
    template_id = store_template(simulator)
    first = build(settings, rules_dir, simulator.url)
    now = time.time()
    welcome(first, 1, now)
    sim_client(simulator).request("PUT", f"/v3/sms/templates/{template_id}", json={"body": "Changed {first_name}"})
    other = build(settings, rules_dir, simulator.url, credentials=False)  # another process: nothing in memory
    assert welcome(other, 2, now + 1).body.startswith("Hi Ada, welcome")  # first's copy, not a fetch of its own


def test_an_outage_keeps_the_last_copy_and_without_one_the_events_wait(settings: Settings, rules_dir: Path) -> None:
    state = SimState()
    url, stop = serve(create_simulator(state))
    store_template(Simulator(url, state))
    rt = build(settings, rules_dir, url)
    fetched_at = rt.store.templates.load()[1]
    stop()  # ClickSend unreachable from now on
    message = welcome(rt, 1, fetched_at + REFRESH + 1)
    assert message.body.startswith("Hi Ada, welcome"), message.reasons
    # The failed fetch counts as a look: the next one is an interval later, not at every batch.
    assert rt.store.templates.load()[1] == fetched_at + REFRESH + 1
    rt.store.r.delete("hl:clicksend:templates")  # a fresh deployment: no copy yet
    event_id = ingest(rt, "shop", CUSTOMER, "customers/create", "cust-2")
    later = fetched_at + 2 * REFRESH
    with pytest.raises(ProviderUnavailable):
        rt.processing.process_events([event_id], later)
    assert rt.store.events.get_event(event_id).status == "received" and messages_of(rt, event_id) == []
    _, stop = serve(create_simulator(state), port=int(url.rsplit(":", 1)[1]))  # ClickSend is back
    try:
        rt.processing.process_events([event_id], later + 1)  # the next drain
    finally:
        stop()
    [message] = [m for m in messages_of(rt, event_id) if m.rule == "welcome-stored"]
    assert message.body.startswith("Hi Ada, welcome") and rt.store.events.get_event(event_id).status == "processed"


def test_a_missing_template_is_a_load_error_when_credentials_are_set(settings: Settings, rules_dir: Path,
                                                                     simulator: Simulator) -> None:
    store_template(simulator, "other", "Bye")
    rt = build(settings, rules_dir, simulator.url)
    assert not rt.rules.loaded
    assert rt.rules.errors == ["stored.yaml:8: welcome-stored: send.template: clicksend:welcome: no stored template "
                               "with that name on the ClickSend account"]


def test_a_placeholder_the_rule_does_not_give_is_a_load_error_when_credentials_are_set(
        settings: Settings, rules_dir: Path, simulator: Simulator) -> None:
    store_template(simulator, body="Hi {first_name} {last_name}")
    rt = build(settings, rules_dir, simulator.url)
    assert rt.rules.errors == ["stored.yaml:8: welcome-stored: send.template: clicksend:welcome: uses {last_name}, "
                               "which the rule's send.placeholders does not give"]


def test_without_credentials_a_missing_template_fails_its_message(settings: Settings, rules_dir: Path,
                                                                  simulator: Simulator) -> None:
    rt = build(settings, rules_dir, simulator.url, credentials=False)
    assert rt.rules.loaded, rt.rules.errors  # not checked: nothing to check against
    message = welcome(rt, 1, time.time())
    assert message.state == State.FAILED
    assert message.reasons == ("send.template: clicksend:welcome: no stored template with that name on the "
                               "ClickSend account",)


def test_a_template_deleted_after_the_rules_loaded_fails_its_message(settings: Settings, rules_dir: Path,
                                                                     simulator: Simulator) -> None:
    template_id = store_template(simulator)
    rt = build(settings, rules_dir, simulator.url)
    assert rt.rules.loaded
    sim_client(simulator).request("DELETE", f"/v3/sms/templates/{template_id}")
    message = welcome(rt, 1, rt.store.templates.load()[1] + REFRESH)
    assert message.state == State.FAILED
    assert "no stored template with that name" in message.reasons[0]


def test_with_no_clicksend_at_all_the_message_fails_saying_so(settings: Settings, rules_dir: Path) -> None:
    rt = build(settings, rules_dir, None, credentials=False)
    message = welcome(rt, 1, time.time())
    assert message.state == State.FAILED
    assert message.reasons == (f"send.template: clicksend:welcome: {NOT_FETCHED}",)
