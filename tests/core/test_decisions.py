"""Every policy check alone and together, with the clock passed in: quiet hours across midnight and the
date line, DST changes, rates, duplicates, countries, holds, budget and the balance floor."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
import yaml

from workers.core.decisions import (
    Action,
    Candidate,
    Facts,
    Standing,
    decide,
    decide_approval,
    decide_batch,
    in_window,
    quiet_until,
)
from workers.core.policies import HoldIf, Policy, QuietHours, RateLimit, parse_policies
from workers.errors import ConfigError

QUIET = QuietHours(time(21, 0), time(8, 0))


def at(text: str) -> float:
    """A UTC time as Unix seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def run(policy: Policy, critical: bool = False, country: str = "AU", segments: int = 1, **facts) -> tuple:
    decision = decide(policy, country=country, segments=segments, critical=critical,
                      facts=Facts(**{"now": at("2026-06-01T03:00:00"), **facts}))
    return decision.action, decision.reasons, decision.until


def test_plain_policy_sends() -> None:
    action, reasons, _ = run(Policy("p"))
    assert (action, reasons) == ("send", ("policy p: approved automatically",))


@pytest.mark.parametrize(
    ("local", "quiet"),
    [("20:59", False), ("21:00", True), ("23:59", True), ("00:00", True), ("07:59", True), ("08:00", False),
     ("12:00", False)],
)
def test_quiet_window_across_midnight(local: str, quiet: bool) -> None:
    hours, minutes = map(int, local.split(":"))
    assert in_window(time(hours, minutes), QUIET.start, QUIET.end) is quiet


def test_quiet_hours_defer_until_morning_at_the_recipient() -> None:
    # 12:30 UTC is 22:30 in Sydney (AEST, winter): deferred to 08:00 Sydney = 22:00 UTC.
    action, reasons, until = run(Policy("p", quiet_hours=QUIET), now=at("2026-06-01T12:30:00"),
                                 zones=("Australia/Sydney",))
    assert action == "defer"
    assert until == at("2026-06-01T22:00:00")
    assert "quiet hours 21:00–08:00 at the recipient (Australia/Sydney 22:30)" in reasons[0]


@pytest.mark.parametrize(
    ("zone", "now", "until"),
    [
        # Both sides of the date line at the same instant: Auckland (UTC+12) is quiet at 09:30 UTC (21:30),
        # Samoa (UTC+13) too (22:30), Honolulu (UTC−10) is at 23:30 the day before: quiet as well.
        ("Pacific/Auckland", "2026-06-01T09:30:00", "2026-06-01T20:00:00"),
        ("Pacific/Apia", "2026-06-01T09:30:00", "2026-06-01T19:00:00"),
        ("Pacific/Honolulu", "2026-06-01T09:30:00", "2026-06-01T18:00:00"),
        ("Pacific/Kiritimati", "2026-06-01T09:30:00", "2026-06-01T18:00:00"),  # UTC+14: 23:30 local
    ],
)
def test_quiet_hours_on_both_sides_of_the_date_line(zone: str, now: str, until: str) -> None:
    got, _ = quiet_until(QUIET, (zone,), at(now))
    assert got == at(until)


def test_dst_change_night_defers_to_local_eight() -> None:
    # New York springs forward on 2026-03-08 at 02:00; 08:00 EDT that morning is 12:00 UTC.
    got, _ = quiet_until(QUIET, ("America/New_York",), at("2026-03-08T05:00:00"))  # 00:00 EST
    assert got == at("2026-03-08T12:00:00")
    # …and falls back on 2026-11-01: 08:00 EST is 13:00 UTC.
    got, _ = quiet_until(QUIET, ("America/New_York",), at("2026-11-01T05:30:00"))  # 01:30 EDT
    assert got == at("2026-11-01T13:00:00")


def test_quiet_until_answers_each_moment_zones_and_hours_afresh() -> None:
    """It is cached by (hours, zones, moment): a batch asks the same few many times; any other key is its own."""
    zones = ("Australia/Sydney", "Australia/Perth")
    night, day = at("2026-06-01T22:30:00"), at("2026-06-02T03:00:00")
    deferred = (at("2026-06-02T00:00:00"), "Australia/Sydney 08:30, Australia/Perth 06:30")
    assert quiet_until(QUIET, zones, night) == deferred
    assert quiet_until(QUIET, zones, night) == quiet_until(QUIET, list(zones), night)  # type: ignore[arg-type]
    assert quiet_until(QUIET, zones, day) == (None, "Australia/Sydney 13:00, Australia/Perth 11:00")
    assert quiet_until(QUIET, zones[:1], night) == (None, "Australia/Sydney 08:30")
    assert quiet_until(QuietHours(time(6, 0), time(9, 0)), zones, night)[0] == at("2026-06-02T01:00:00")


def test_several_zones_take_the_most_restrictive() -> None:
    # 22:30 UTC: Sydney (UTC+10) 08:30 is daytime, Perth (UTC+8) 06:30 is still quiet.
    action, _, until = run(Policy("p", quiet_hours=QUIET), now=at("2026-06-01T22:30:00"),
                           zones=("Australia/Sydney", "Australia/Perth"))
    assert (action, until) == ("defer", at("2026-06-02T00:00:00"))


def test_quiet_hours_drop_and_send_actions_and_critical() -> None:
    facts = {"now": at("2026-06-01T12:30:00"), "zones": ("Australia/Sydney",)}
    assert run(Policy("p", quiet_hours=QuietHours(time(21), time(8), "drop")), **facts)[0] == "suppress"
    assert run(Policy("p", quiet_hours=QuietHours(time(21), time(8), "send")), **facts)[0] == "send"
    action, reasons, _ = run(Policy("p", quiet_hours=QUIET), critical=True, **facts)
    assert action == "send" and "critical rule: sent through quiet hours" in reasons


def test_opt_out_country_and_duplicate_suppress() -> None:
    assert run(Policy("p"), opted_out=True)[0] == "suppress"
    action, reasons, _ = run(Policy("p", allow_countries=("US", "CA")), country="AU")
    assert action == "suppress" and "country AU is not in allow_countries" in reasons[0]
    assert run(Policy("p", duplicate_window=600), duplicate=True)[0] == "suppress"


def test_max_per_recipient_defers_until_the_window_allows() -> None:
    now = at("2026-06-01T03:00:00")
    policy = Policy("p", max_per_recipient=RateLimit(3, 3600))
    sent = (now - 3000, now - 2000, now - 1000)
    action, _, until = run(policy, now=now, recent_times=sent)
    assert (action, until) == ("defer", now - 3000 + 3600)
    assert run(policy, now=now, recent_times=sent[1:])[0] == "send"
    assert run(Policy("p", max_per_recipient=RateLimit(3, 3600, "suppress")), now=now, recent_times=sent)[0] == \
        "suppress"


def test_holds_with_their_reasons() -> None:
    hold_if = HoldIf(segments_over=3, cost_over=Decimal("0.50"), recipients_over=25)
    assert run(Policy("p", hold_if=hold_if), segments=4)[1] == ("4 segments is over segments_over 3",)
    assert run(Policy("p", hold_if=hold_if), estimate=Decimal("0.60"))[0] == "hold"
    assert run(Policy("p", hold_if=hold_if), fan_out=26)[0] == "hold"
    assert run(Policy("p", approval="manual"))[1] == ("policy p: approval is manual",)
    budget = Policy("p", daily_budget=Decimal("25"))
    assert run(budget, spent_today=Decimal("24.95"), estimate=Decimal("0.0792"))[0] == "hold"
    assert run(budget, spent_today=Decimal("24.90"), estimate=Decimal("0.0792"))[0] == "send"
    assert run(Policy("p"), balance_low=True)[0] == "hold"


def test_a_person_approved_it_so_holds_no_longer_apply() -> None:
    action, reasons, _ = run(Policy("p", approval="manual"), approved_by="ann")
    assert (action, reasons[0]) == ("send", "policy p: approved by ann")


def test_an_approved_send_to_a_list_lifts_only_manual_approval_for_its_numbers() -> None:
    # The approver of a send to a list saw the list, not each number's cost or the budget left: those still hold.
    policy = Policy("p", approval="manual", daily_budget=Decimal("1"),
                    hold_if=HoldIf(segments_over=3, cost_over=Decimal("0.50"), recipients_over=25))
    action, reasons, _ = run(policy, list_approved_by="ann")
    assert (action, reasons[0]) == ("send", "policy p: approved automatically; the send to its list was approved "
                                            "by ann")
    assert run(policy, list_approved_by="ann", spent_today=Decimal("0.95"), estimate=Decimal("0.0792"))[1] == (
        "today's spend 0.95 + estimate 0.0792 is over daily_budget 1",)
    assert run(policy, list_approved_by="ann", estimate=Decimal("0.60"))[1] == (
        "estimated cost 0.60 is over cost_over 0.50",)
    assert run(policy, list_approved_by="ann", balance_low=True)[1] == (
        "account balance is below the floor: automatic approvals are held",)
    assert run(policy, list_approved_by="ann", segments=4)[0] == "hold"
    assert run(policy, list_approved_by="ann", fan_out=26)[0] == "hold"
    # The member's own approval, once a person gives it, lifts its holds as any message's does.
    assert run(policy, list_approved_by="ann", approved_by="bob", spent_today=Decimal("0.95"),
               estimate=Decimal("0.0792"))[:2] == ("send", ("policy p: approved by bob", "estimated cost 0.0792"))


def test_a_batch_of_a_lists_numbers_holds_the_one_that_would_overshoot_the_budget() -> None:
    policy = Policy("p", approval="manual", daily_budget=Decimal("0.20"))
    now = at("2026-06-01T03:00:00")
    numbers = ["+61411111111", "+61422222222", "+61433333333"]
    candidates = [Candidate(f"m{i}", policy, Facts(now=now, estimate=Decimal("0.08"), list_approved_by="ann"),
                            "AU", 1, False, n, f"d{i}") for i, n in enumerate(numbers)]
    decided = decide_batch(candidates, Standing())
    assert [d.action for d, _ in decided] == ["send", "send", "hold"]
    assert decided[2][0].reasons == ("today's spend 0.16 + estimate 0.08 is over daily_budget 0.20",)


def test_strongest_outcome_wins_and_every_reason_is_kept() -> None:
    policy = Policy("p", approval="manual", quiet_hours=QUIET, allow_countries=("US",))
    action, reasons, _ = run(policy, now=at("2026-06-01T12:30:00"), zones=("Australia/Sydney",))
    assert action == "suppress" and len(reasons) == 1  # suppress beats defer and hold
    action, reasons, _ = run(Policy("p", approval="manual", quiet_hours=QUIET), now=at("2026-06-01T12:30:00"),
                             zones=("Australia/Sydney",))
    assert action == "defer"  # defer beats hold: it is checked again when due


def test_policies_file_errors_are_reported_as_file_policy_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_policies(yaml.safe_load("""
policies:
  default:
    approval: sometimes
    quiet_hours: {from: "25:00", to: "08:00"}
    allow_countries: [XX]
    max_per_recipient: {count: 0, per: 1h}
"""))
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("policies.yaml: default: approval: Must be one of") for p in found)
    assert "policies.yaml: default: quiet_hours.from: use HH:MM (24-hour)" in found
    assert any(p.startswith("policies.yaml: default: allow_countries: unknown region") for p in found)
    assert any(p.startswith("policies.yaml: default: max_per_recipient.count") for p in found)


def test_shipped_policies_parse() -> None:
    from tests.conftest import ROOT
    from workers.wiring.rulesdir import load_yaml

    data, _ = load_yaml(ROOT / "rules" / "policies.yaml")
    policies = parse_policies(data)
    assert policies["default"].quiet_hours == QuietHours(time(21), time(8), "defer")
    assert policies["paging"].quiet_hours.action == "send"


def candidate(mid: str, policy: Policy, to: str = "+61400000001", digest: str | None = None, cost: str = "0.10",
              at_send_time: bool = True) -> Candidate:
    return Candidate(mid, policy, Facts(now=at("2026-06-01T03:00:00"), estimate=Decimal(cost)), "AU", 1, False, to,
                     digest or mid, at_send_time)


def test_a_batch_is_decided_in_order_each_seeing_what_those_before_it_reserve() -> None:
    policy = Policy("p", daily_budget=Decimal("0.30"), duplicate_window=600,
                    max_per_recipient=RateLimit(count=2, per=3600))
    now = at("2026-06-01T03:00:00")
    batch = [candidate("m1", policy, to="+1", cost="0.20"),
             candidate("m2", policy, to="+2", cost="0.20"),  # 0.20 + 0.20 over 0.30: held
             candidate("m3", policy, to="+3", digest="m1"),  # 0.20 + 0.10 fits; a repeat of m1's text
             candidate("m4", policy, to="+1", cost="0.05"),  # +1's window holds an older send and m1: deferred
             candidate("m5", policy, to="+1", cost="0.00"),  # the same, until the older one's slot opens
             candidate("m6", policy, to="+1", cost="0.00", at_send_time=False)]  # window checked when due
    decided = decide_batch(batch, Standing(spent=Decimal("0.00"), recent={"+1": (("old", now - 3000),)}))
    assert [d.action for d, _ in decided] == ["send", "hold", "suppress", "defer", "defer", "send"]
    assert decided[3][0].until == decided[4][0].until == now - 3000 + 3600
    assert [f.spent_today for _, f in decided] == [Decimal(0), Decimal("0.20"), Decimal("0.20"), Decimal("0.20"),
                                                   Decimal("0.20"), Decimal("0.20")]


def test_a_marker_or_slot_the_message_holds_itself_does_not_count_against_it() -> None:
    policy = Policy("p", duplicate_window=600, max_per_recipient=RateLimit(count=1, per=3600))
    now = at("2026-06-01T03:00:00")
    mine = Standing(recent={"+61400000001": (("m1", now - 5),)}, marked={"d": "m1"})
    assert decide_batch([candidate("m1", policy, digest="d")], mine)[0][0].action == "send"
    assert decide_batch([candidate("m2", policy, digest="d")], mine)[0][0].action == "suppress"


def test_what_reaches_no_one_passes_approval_only() -> None:
    strict = Policy("shop", approval="manual", quiet_hours=QuietHours(time(0, 0), time(23, 59), "defer"),
                    allow_countries=("US",), daily_budget=Decimal(0))
    held = decide_approval(strict, None, "contact write")
    assert (held.action, held.reasons) == (Action.HOLD, ("policy shop: approval is manual",))
    approved = decide_approval(strict, "ann", "send to list Customers")
    assert (approved.action, approved.reasons) == (Action.SEND,
                                                   ("policy shop: send to list Customers approved by ann",))
    assert decide_approval(Policy("default"), None, "contact write").reasons == (
        "policy default: contact write approved automatically",)
