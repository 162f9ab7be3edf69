"""Approve-by-policy: the decision for one message, with every reason and the facts it used, and for a batch of
messages decided in order, each seeing what those approved before it reserve.

Pure: the adapter gathers the facts (counts, spend, opt-outs, zones) and passes them in with `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workers.core.policies import Policy, QuietHours


@dataclass(frozen=True)
class Facts:
    """What the policy needs to know about the world at `now`."""

    now: float
    opted_out: bool = False
    duplicate: bool = False
    recent_times: tuple[float, ...] = ()  # this recipient's sends within the rate window
    spent_today: Decimal = Decimal(0)
    estimate: Decimal = Decimal(0)
    fan_out: int = 1  # messages this event produced under this rule
    zones: tuple[str, ...] = ()  # the recipient's possible time zones
    balance_low: bool = False
    approved_by: str | None = None  # a person approved this message itself: no more holds
    # A person approved the send to the list this message is on: that lifts `approval: manual` alone. The
    # approver saw the list, not this number's cost, the budget left or the balance, so those holds still apply.
    list_approved_by: str | None = None


class Action(StrEnum):
    """What a policy decided, from weakest to strongest: suppress > defer > hold > send."""

    SEND = "send"
    HOLD = "hold"  # a person decides
    DEFER = "defer"  # until `Decision.until`
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class Decision:
    """The action, with every reason behind it and, for `defer`, until when."""

    action: Action
    reasons: tuple[str, ...] = field(default_factory=tuple)
    until: float | None = None


def decide(policy: Policy, *, country: str | None, segments: int | None, critical: bool, facts: Facts) -> Decision:
    """Run every check of `policy`; the strongest outcome wins: suppress > defer > hold > send."""
    limits = [d for d in (_quiet_hours(policy, critical, facts), _rate(policy, facts)) if d is not None]
    suppress = _suppressions(policy, country, facts) + [
        reason for d in limits if d.action is Action.SUPPRESS for reason in d.reasons]
    defers = [d for d in limits if d.action is Action.DEFER]
    hold = _holds(policy, segments, facts) if facts.approved_by is None else []
    if suppress:
        return Decision(Action.SUPPRESS, tuple(suppress))
    if defers:
        return Decision(Action.DEFER, tuple(r for d in defers for r in d.reasons),
                        max(d.until for d in defers if d.until is not None))
    if hold:
        return Decision(Action.HOLD, tuple(hold))
    reasons = [f"policy {policy.name}: approved " + _approver(facts)]
    if critical and policy.quiet_hours is not None and facts.zones and \
            quiet_until(policy.quiet_hours, facts.zones, facts.now)[0] is not None:
        reasons.append("critical rule: sent through quiet hours")
    if facts.estimate:
        reasons.append(f"estimated cost {facts.estimate}")
    return Decision(Action.SEND, tuple(reasons))


@dataclass(frozen=True)
class Candidate:
    """One message of a batch as its policy sees it. `facts` holds its own facts (opt-out, estimate, zones,
    fan-out, approval); the shared counts (spend, recent sends, duplicate) are the batch's, filled in by
    `decide_batch`. Only at send time are rate and duplicates checked and an approval reserves."""

    message_id: str
    policy: Policy
    facts: Facts
    country: str | None
    segments: int | None
    critical: bool
    recipient: str | None
    digest: str  # recipient + body, hashed: the duplicate marker's name
    at_send_time: bool = True


@dataclass(frozen=True)
class Standing:
    """The shared counts a batch is decided against: the day's spend, each recipient's recent sends (message
    id, time) and the duplicate markers held (digest → the message holding it)."""

    spent: Decimal = Decimal(0)
    recent: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    marked: Mapping[str, str] = field(default_factory=dict)


def decide_batch(candidates: Sequence[Candidate], standing: Standing) -> list[tuple[Decision, Facts]]:
    """Decide each candidate in order as if every one approved before it had reserved already (its estimate
    spent, its rate slot and duplicate marker taken), so a batch that crosses the budget, a recipient's window
    or repeats a body decides exactly as the same messages one at a time. A marker the message holds itself (a
    run killed after reserving, retried) is no duplicate, nor its own slot a send. Returns each decision and its
    facts."""
    spent = standing.spent
    recent = {number: list(times) for number, times in standing.recent.items()}
    marked = dict(standing.marked)
    out = []
    for c in candidates:
        p, checks = c.policy, c.at_send_time
        rate = p.max_per_recipient
        facts = replace(
            c.facts,
            duplicate=checks and bool(p.duplicate_window) and marked.get(c.digest, c.message_id) != c.message_id,
            recent_times=tuple(t for mid, t in recent.get(c.recipient, ()) if mid != c.message_id)
            if checks and rate and c.recipient else (),
            spent_today=spent if p.daily_budget is not None else Decimal(0))
        decision = decide(p, country=c.country, segments=c.segments, critical=c.critical, facts=facts)
        if decision.action is Action.SEND and checks:
            spent += c.facts.estimate
            if rate and c.recipient:
                recent.setdefault(c.recipient, []).append((c.message_id, c.facts.now))
            if p.duplicate_window:
                marked[c.digest] = c.message_id
        out.append((decision, facts))
    return out


def decide_approval(policy: Policy, approved_by: str | None, what: str) -> Decision:
    """The decision on something that reaches no one itself (`what`: a contact write, or a send to a list before
    it becomes a message per number): of its rule's policy only `approval` applies, held for a person when
    manual until one approves it. Quiet hours, limits, countries and the budget are about messages people
    receive. Approving a send to a list lifts `approval: manual` for each number's message and nothing else:
    each is then decided in full (`Facts.list_approved_by`), and the holds on it wait for their own approval."""
    if policy.approval == "manual" and approved_by is None:
        return Decision(Action.HOLD, (f"policy {policy.name}: approval is manual",))
    return Decision(Action.SEND, (f"policy {policy.name}: {what} approved" +
                                  (f" by {approved_by}" if approved_by else " automatically"),))


def _suppressions(p: Policy, country: str | None, facts: Facts) -> list[str]:
    out = []
    if facts.opted_out:
        out.append("recipient opted out (replied STOP or added by an operator)")
    if p.allow_countries is not None and (country or "?") not in p.allow_countries:
        out.append(f"country {country or 'unknown'} is not in allow_countries {list(p.allow_countries)}")
    if facts.duplicate and p.duplicate_window:
        out.append(f"same body to the same recipient within duplicate_window ({p.duplicate_window:.0f}s)")
    return out


def _quiet_hours(p: Policy, critical: bool, facts: Facts) -> Decision | None:
    """Defer or suppress (drop) inside quiet hours at the recipient; None outside them, when the action is
    `send`, or for a critical rule where the policy lets critical messages through."""
    if p.quiet_hours is None or not facts.zones:
        return None
    until, local = quiet_until(p.quiet_hours, facts.zones, facts.now)
    if until is None or (critical and p.quiet_hours.critical_allowed):
        return None  # critical rules go through quiet hours; the approval says so
    window = f"quiet hours {p.quiet_hours.start:%H:%M}–{p.quiet_hours.end:%H:%M} at the recipient ({local})"
    if p.quiet_hours.action == "defer":
        return Decision(Action.DEFER, (f"{window}: deferred",), until)
    if p.quiet_hours.action == "drop":
        return Decision(Action.SUPPRESS, (f"{window}: dropped",))
    return None


def _rate(p: Policy, facts: Facts) -> Decision | None:
    """Defer (until a slot opens) or suppress when the recipient's window is full; None otherwise."""
    rate = p.max_per_recipient
    if rate is None:
        return None
    recent = sorted(t for t in facts.recent_times if t > facts.now - rate.per)
    if len(recent) < rate.count:
        return None
    why = f"max_per_recipient {rate.count} per {rate.per:.0f}s reached ({len(recent)} sent)"
    if rate.action == "suppress":
        return Decision(Action.SUPPRESS, (why,))
    return Decision(Action.DEFER, (f"{why}: deferred",), recent[len(recent) - rate.count] + rate.per)


def _approver(facts: Facts) -> str:
    if facts.approved_by:
        return f"by {facts.approved_by}"
    if facts.list_approved_by:
        return f"automatically; the send to its list was approved by {facts.list_approved_by}"
    return "automatically"


def _holds(p: Policy, segments: int | None, facts: Facts) -> list[str]:
    out = []
    if p.approval == "manual" and facts.list_approved_by is None:
        out.append(f"policy {p.name}: approval is manual")
    h = p.hold_if
    if h.segments_over is not None and (segments or 0) > h.segments_over:
        out.append(f"{segments} segments is over segments_over {h.segments_over}")
    if h.cost_over is not None and facts.estimate > h.cost_over:
        out.append(f"estimated cost {facts.estimate} is over cost_over {h.cost_over}")
    if h.recipients_over is not None and facts.fan_out > h.recipients_over:
        out.append(f"{facts.fan_out} recipients for one event is over recipients_over {h.recipients_over}")
    if p.daily_budget is not None and facts.spent_today + facts.estimate > p.daily_budget:
        out.append(f"today's spend {facts.spent_today} + estimate {facts.estimate} is over daily_budget "
                   f"{p.daily_budget}")
    if facts.balance_low:
        out.append("account balance is below the floor: automatic approvals are held")
    return out


def in_window(local: clock_time, start: clock_time, end: clock_time) -> bool:
    """Whether a local time falls in [start, end), a window that may cross midnight."""
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(quiet: QuietHours, zones: tuple[str, ...], now: float) -> tuple[float | None, str]:
    """The first moment when it is outside quiet hours in every one of `zones` (None when it is now), and a
    note of the local times.

    A number whose region spans several zones takes the most restrictive: quiet if quiet anywhere, and
    deferred until it is daytime everywhere at once.
    """
    return _quiet_until(quiet, tuple(zones), now)


@lru_cache(maxsize=512)
def _quiet_until(quiet: QuietHours, zones: tuple[str, ...], now: float) -> tuple[float | None, str]:
    """`quiet_until`, cached (a pure function): a batch is decided at one `now`, and its recipients share a few
    zone sets (an Australian mobile's is eight zones, each stepped through one or more times)."""
    tzs = []
    for name in zones:
        try:
            tzs.append((name, ZoneInfo(name)))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    notes = [f"{name} {datetime.fromtimestamp(now, tz=tz):%H:%M}" for name, tz in tzs[:3]]
    note = ", ".join(notes) + (" …" if len(tzs) > 3 else "")
    moment = now
    for _ in range(2 * len(tzs) + 2):  # each step jumps to a quiet period's end; few steps always suffice
        ends = []
        for _, tz in tzs:
            local = datetime.fromtimestamp(moment, tz=tz)
            if in_window(local.time().replace(second=0, microsecond=0), quiet.start, quiet.end):
                ends.append(_next_local(local, quiet.end))
        if not ends:
            return (None if moment == now else moment), note
        moment = max(ends)
    return moment, note


def _next_local(local: datetime, at: clock_time) -> float:
    # The next wall-clock `at` after `local` in its zone; DST-safe because it is built from the date.
    day = local.date()
    for offset in range(3):
        candidate = datetime.combine(day + timedelta(days=offset), at, tzinfo=local.tzinfo)
        if candidate > local:
            return candidate.timestamp()
    return (local + timedelta(days=1)).timestamp()
