"""Every shipped rule, dry-run on its provider's real payload, renders the text a person would get.

The payloads are tests/fixtures/providers/ and, for Cal.com, examples/ (`hookline demo` posts those; see the
READMEs there for where each came from); the dry run is `hookline rules test`'s own code (workers.tools.dryrun),
with the shipped rules and sources.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES_DIR, ROOT
from workers.core.templates import compile_template, environment, parse_time, render
from workers.tools.dryrun import as_text, build_event, report
from workers.wiring.rulesdir import PlaceholderEnviron, load_config

FIXTURES = ROOT / "tests/fixtures/providers"
ONCALL = ["+61411111111", "+61422222222"]


def dry_run(source: str, fixture: str | Path, now: str, event_type: str | None = None) -> dict[str, dict[str, Any]]:
    """The rules `fixture` (a path under FIXTURES, or any path) matched at `now`, by name, as the dry run shows them."""
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    at = parse_time(now, "UTC").timestamp()
    event = build_event(config, FIXTURES / fixture, source, event_type, {}, at)
    return {r["rule"]: r for r in report(config, event, at, "UTC", "US")["rules"] if r["matched"]}


def bodies(rule: dict[str, Any]) -> dict[str, str]:
    return {m["to"]: m["body"] for m in rule["messages"]}


def test_alertmanager_page_lists_each_firing_alert_by_its_own_summary() -> None:
    matched = dry_run("alerts", "alertmanager/firing.json", "2026-12-01T10:21:00Z")
    assert set(matched) == {"page-oncall-sms", "page-oncall-voice"}
    sms = ("[FIRING:2] InstanceDown (critical): db-1:9100 has been down for more than 5 minutes; "
           "db-2:9100 has been down for more than 5 minutes")
    assert bodies(matched["page-oncall-sms"]) == dict.fromkeys(ONCALL, sms)
    voice = ("Critical alert: InstanceDown, 2 firing. db-1:9100 has been down for more than 5 minutes. "
             "db-2:9100 has been down for more than 5 minutes. Check your messages.")
    assert bodies(matched["page-oncall-voice"]) == dict.fromkeys(ONCALL, voice)
    assert ". ." not in voice and ".." not in voice


def test_alertmanager_truncated_page_names_instances_and_says_what_was_left_out() -> None:
    matched = dry_run("alerts", "alertmanager/firing-truncated.json", "2026-12-01T10:21:00Z")
    assert set(matched) == {"page-oncall-sms"}  # severity page: no call
    assert set(bodies(matched["page-oncall-sms"]).values()) == {
        "[FIRING:2] HighRequestLatency (page): web-1:8080; web-2:8080 (+1 more not listed)"}


def test_alertmanager_counts_only_the_alerts_still_firing() -> None:
    matched = dry_run("alerts", "alertmanager/firing-one-resolved.json", "2026-12-01T10:21:00Z")
    assert set(bodies(matched["page-oncall-sms"]).values()) == {
        "[FIRING:1] InstanceDown (critical): db-1:9100 has been down for more than 5 minutes. Resolved: db-2:9100"}
    assert set(bodies(matched["page-oncall-voice"]).values()) == {
        "Critical alert: InstanceDown, 1 firing. db-1:9100 has been down for more than 5 minutes. "
        "Check your messages."}


def test_alertmanager_resolve_is_reported() -> None:
    matched = dry_run("alerts", "alertmanager/resolved.json", "2026-12-01T10:21:00Z")
    assert set(matched) == {"alert-resolved"}
    assert set(bodies(matched["alert-resolved"]).values()) == {"[RESOLVED] InstanceDown (critical): db-1:9100"}


def test_grafana_page_names_each_alert_when_they_share_no_alertname() -> None:
    matched = dry_run("grafana", "grafana/firing.json", "2021-10-12T08:00:00Z")
    assert set(matched) == {"grafana-page-sms"}
    assert set(bodies(matched["grafana-page-sms"]).values()) == {
        "[FIRING:2] High memory usage: This alert was triggered for zone us-1; "
        "High CPU usage: This alert was triggered for zone eu-1"}


def test_grafana_resolve_is_reported_by_the_alerts_own_summary() -> None:
    matched = dry_run("grafana", "grafana/resolved.json", "2022-06-17T00:52:00Z")
    assert set(matched) == {"grafana-resolved"}
    # "<no value>" is Grafana's own rendering of the rule's summary template, as it sent it.
    assert bodies(matched["grafana-resolved"]) == dict.fromkeys(
        ONCALL, "[RESOLVED] Test alert: This is a summary field, failure on <no value>")
    assert {m["key"] for m in matched["grafana-resolved"]["messages"]} == {'grafana-{}/{test="true"}:{}-resolved'}


def test_calcom_reminders_24h_and_2h_before_in_the_attendees_zone() -> None:
    matched = dry_run("bookings", EXAMPLES_DIR / "booking-created.json", "2023-05-24T09:30:00Z")
    text = "Hi John, a reminder of your 60min on Thu 25 May at 15:00 at Calcom HQ. Reply STOP to opt out."
    for rule in ("reminder-24h", "reminder-2h"):
        [msg] = matched[rule]["messages"]
        assert (msg["to"], msg["body"]) == ("+61491570156", text)  # 09:30Z is 15:00 in Asia/Kolkata
        assert msg["key"] == "booking-bFJeNb2uX8ANpT3JL5EfXw"
    [late] = matched["reminder-2h"]["messages"]
    assert late["sends"] == "2023-05-25T07:30:00+00:00"
    # At 09:30Z the day before, the 24 h reminder is due that very second: it is not planned in the past.
    assert matched["reminder-24h"]["messages"][0]["state"] in ("planned", "suppressed")


def test_calcom_reschedule_plans_the_new_booking_and_cancels_the_old_one() -> None:
    matched = dry_run("bookings", EXAMPLES_DIR / "booking-rescheduled.json", "2024-01-01T10:00:00Z")
    assert matched["booking-moved"]["cancels_key"] == "booking-previous-booking-unique-id"
    for rule in ("reminder-24h", "reminder-2h"):
        [msg] = matched[rule]["messages"]
        assert msg["key"] == "booking-new-booking-unique-id"
        assert msg["body"] == ("Hi Guest, a reminder of your Strategy Session on Wed 10 Jan at 14:30. "
                               "Reply STOP to opt out.")  # a video app is not a place: no "at …"


def test_calcom_cancel_cancels_the_bookings_reminders() -> None:
    matched = dry_run("bookings", EXAMPLES_DIR / "booking-cancelled.json", "2024-01-01T15:00:00Z")
    assert set(matched) == {"booking-cancelled"}
    assert matched["booking-cancelled"]["cancels_key"] == "booking-unique-booking-identifier"


def test_calendly_reminders_in_the_invitees_zone() -> None:
    matched = dry_run("calendly", "calendly/invitee-created.json", "2019-08-20T00:00:00Z")
    assert set(matched) == {"calendly-reminder-24h", "calendly-reminder-2h"}  # old_invitee null: not a reschedule
    for rule, sends in (("calendly-reminder-24h", "2019-08-23T14:15:22.123456+00:00"),
                        ("calendly-reminder-2h", "2019-08-24T12:15:22.123456+00:00")):
        [msg] = matched[rule]["messages"]
        assert (msg["to"], msg["sends"]) == ("+14045551234", sends)
        assert msg["body"] == ("Hi John, a reminder of your 15 Minute Meeting on Sat 24 Aug at 10:15 at Calendly "
                               "Office. Reply STOP to opt out.")  # 14:15Z in America/New_York


def test_shopify_cancelled_order_in_dollars_marked_for_an_australian_number() -> None:
    matched = dry_run("shop", "shopify/order-cancelled.json", "2022-04-06T12:00:00Z", "orders/cancelled")
    assert bodies(matched["order-cancelled"]) == {"+61491570156": (
        "Your order #9999 (US$403.00) has been cancelled (customer). Any payment will be refunded in 3-5 days.")}


def test_shopify_shipment_with_tracking() -> None:
    matched = dry_run("shop", "shopify/fulfillment-created.json", "2022-01-01T00:00:00Z", "fulfillments/create")
    assert bodies(matched["order-shipped"]) == {"+12015550123": (
        "Hi Steve, your order #9999 is on its way with UPS, tracking 1z827wk74630: "
        "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums=1z827wk74630")}


def test_shopify_order_confirmation_on_the_user_facing_example() -> None:
    # examples/shop-order.json: Shopify's own sample order #1001, payment authorized, in US dollars.
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    event = build_event(config, ROOT / "examples/shop-order.json", "shop", "orders/create", {}, 0.0)
    matched = {r["rule"]: r for r in report(config, event, 0.0, "UTC", "US")["rules"] if r["matched"]}
    assert set(matched) == {"order-confirmation"}
    assert bodies(matched["order-confirmation"]) == {"+61411111111": (
        "Hi Bob, thanks for your order #1001 (US$409.94). We'll text you when it ships.")}  # USD to an AU number


def test_a_new_shopify_customer_joins_the_customers_list(tmp_path: Path) -> None:
    # A customers/create body is Shopify's Customer resource: the one inside examples/shop-order.json.
    customer = json.loads((ROOT / "examples/shop-order.json").read_text())["customer"]
    (tmp_path / "customer.json").write_text(json.dumps(customer))
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    event = build_event(config, tmp_path / "customer.json", "shop", "customers/create", {}, 0.0)
    result = report(config, event, 0.0, "UTC", "US")
    matched = {r["rule"]: r for r in result["rules"] if r["matched"]}
    assert set(matched) == {"customer-joins-list"}
    assert "contact upsert +61411111111 on list Customers\n        first_name: Bob" in as_text(result)
    [write] = matched["customer-joins-list"]["messages"]
    assert (write["channel"], write["operation"], write["list_ref"], write["to"]) == (
        "contact", "upsert", "Customers", "+61411111111")
    assert write["contact"] == {"first_name": "Bob", "last_name": "Norman", "email": "bob.norman@hostmail.com"}
    assert write["decision"] == "send"


def test_shopify_paid_order_is_confirmed_once_by_orders_paid() -> None:
    # Shopify sends its one sample order for every order topic, orders/paid included.
    paid = dry_run("shop", "shopify/order-cancelled.json", "2022-04-06T12:00:00Z", "orders/paid")
    assert set(paid) == {"order-paid"}
    assert bodies(paid["order-paid"]) == {"+61491570156": (
        "Hi John, thanks for your order #9999: we have received your payment of US$403.00. "
        "We'll text you when it ships.")}


def test_a_paid_order_is_not_confirmed_on_orders_create_too(tmp_path: Path) -> None:
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    paid = tmp_path / "paid.json"  # the example as it is once paid at checkout
    order = json.loads((ROOT / "examples/shop-order.json").read_text())
    paid.write_text(json.dumps(order | {"financial_status": "paid"}))
    event = build_event(config, paid, "shop", "orders/create", {}, 0.0)
    assert [r["rule"] for r in report(config, event, 0.0, "UTC", "US")["rules"] if r["matched"]] == []


def test_stripe_payment_failure_texts_the_number_given_with_the_declined_card() -> None:
    matched = dry_run("payments", "stripe/payment-intent-failed.json", "2022-03-26T18:40:29Z")
    assert set(matched) == {"payment-failed"}
    assert bodies(matched["payment-failed"]) == {"+61491570156": (
        "Your payment of US$20.00 did not go through: Your card was declined. Please try another card.")}


def test_calendly_cancel_cancels_the_invitees_reminders() -> None:
    matched = dry_run("calendly", "calendly/invitee-canceled.json", "2020-12-22T18:17:00Z")
    assert set(matched) == {"calendly-cancelled"}
    assert matched["calendly-cancelled"]["cancels_key"] == (
        "calendly-https://api.calendly.com/scheduled_events/DDVRNUTABYGF4LO2/invitees/AHT4VZ5PQYFOSTFB")


def test_a_calendly_reschedule_retires_the_old_invitees_reminders_and_plans_the_new_ones(tmp_path: Path) -> None:
    # Not a captured body (none is published, see WITHOUT_A_REAL_PAYLOAD): the real invitee.created above with
    # `old_invitee` set as Calendly documents a reschedule's new invitee (the old invitee's URI, on the payload).
    old = "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/OLDINVITEE0000000"
    body = json.loads((FIXTURES / "calendly/invitee-created.json").read_text())
    body["payload"]["old_invitee"] = old
    (tmp_path / "calendly").mkdir()
    (tmp_path / "calendly/rescheduled.json").write_text(json.dumps(body))
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    at = parse_time("2019-08-20T00:00:00Z", "UTC").timestamp()
    event = build_event(config, tmp_path / "calendly/rescheduled.json", "calendly", None, {}, at)
    matched = {r["rule"]: r for r in report(config, event, at, "UTC", "US")["rules"] if r["matched"]}
    assert set(matched) == {"calendly-rescheduled", "calendly-reminder-24h", "calendly-reminder-2h"}
    assert matched["calendly-rescheduled"]["cancels_key"] == f"calendly-{old}"
    new_key = f"calendly-{body['payload']['uri']}"
    assert [m["key"] for r in ("calendly-reminder-24h", "calendly-reminder-2h") for m in matched[r]["messages"]] \
        == [new_key, new_key]


@pytest.mark.parametrize("recipient, expected", [
    (None, ["$25.00", "A$25.00", "€25.00", "£25.00", "25.00 CHF"]),
    ("+61491570156", ["US$25.00", "$25.00", "€25.00", "£25.00", "25.00 CHF"]),
    ("+12015550123", ["$25.00", "A$25.00", "€25.00", "£25.00", "25.00 CHF"]),
    ("+14165550123", ["US$25.00", "A$25.00", "€25.00", "£25.00", "25.00 CHF"]),
])
def test_money_marks_a_currency_that_is_not_the_recipients_own(recipient: str | None, expected: list[str]) -> None:
    template = compile_template(environment("UTC", "US"), '{{ amount | money(code) }}')
    context = {"amount": "25"} | ({"recipient": recipient} if recipient else {})
    assert [render(template, context | {"code": code}, "body") for code in ("USD", "AUD", "EUR", "GBP", "CHF")] \
        == expected


# No real payload of its own to dry-run it on: Calendly documents its reschedule pair (invitee.canceled with
# rescheduled: true, invitee.created with old_invitee) only as screenshots (see tests/fixtures/providers/README.md);
# the reschedule test above sets old_invitee on the real invitee.created.
WITHOUT_A_REAL_PAYLOAD = {"calendly-rescheduled"}


def test_every_other_shipped_rule_is_dry_run_here() -> None:
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    tested = Path(__file__).read_text().split("WITHOUT_A_REAL_PAYLOAD =")[0]
    assert [r.name for r in config.rules if f'"{r.name}"' not in tested and r.name not in WITHOUT_A_REAL_PAYLOAD] == []


ALERTMANAGER_GROUP_INTERVAL = 300.0  # Alertmanager's default; a repeat is sent on a group_interval tick, never sooner


@pytest.mark.parametrize("source", ["alerts", "grafana"])
def test_a_repeat_notification_pages_again_with_alertmanagers_default_intervals(source: str) -> None:
    # A repeat is byte-identical to the first notification: it must fall outside both the source's dedupe window
    # and the paging policy's duplicate_window (same text, same person), while a retry (seconds later) does not.
    config = load_config(ROOT / "rules", PlaceholderEnviron(os.environ), "UTC", "US")
    dedupe = config.sources[source].dedupe_window
    paging = config.policies["paging"].duplicate_window
    assert dedupe is not None and paging is not None
    assert 30 < dedupe < ALERTMANAGER_GROUP_INTERVAL and paging < ALERTMANAGER_GROUP_INTERVAL
    assert {r.policy for r in config.rules if source in r.sources} == {"paging"}
