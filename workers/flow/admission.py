"""Admission: the policy gate every message passes before it may be queued for sending.

Gathers the facts (opt-outs, recent sends, spend, prices, zones, balance), asks `core.policy.decide`,
then reserves what an approval consumes (duplicate marker, rate slot, budget) atomically in Redis.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

from workers.core import payloads
from workers.core.coerce import to_decimal
from workers.core.decisions import Decision, Facts, decide
from workers.core.policies import Policy
from workers.errors import ConfigError, HooklineError, ProviderError
from workers.store import Store
from workers.wiring.runtime import Runtime

log = logging.getLogger("hookline.admission")


@dataclass
class Outcome:
    """The decision and what it leaves the message as."""

    decision: Decision
    state: str  # queued | scheduled | held | suppressed
    send_at: float | None
    estimate: Decimal
    facts: dict[str, Any]
    reservation: dict[str, str] | None = None  # `reserved` and `reserved_day`, stored on the message when taken


def zones_for(msg: dict[str, Any]) -> tuple[str, ...]:
    """The recipient's possible time zones: the payload's (when the rule names one), else the number's."""
    if msg.get("timezone"):
        try:
            ZoneInfo(msg["timezone"])
            return (msg["timezone"],)
        except (ValueError, KeyError):
            pass
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(msg.get("to") or "", None))
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in zones if z != "Etc/Unknown")


def duplicate_digest(msg: dict[str, Any]) -> str:
    """Recipient + body, hashed (the marker key never holds the number or the text)."""
    return hashlib.sha256(f"{msg.get('to') or msg.get('list_id')}\0{msg.get('body')}".encode()).hexdigest()[:32]


def day_of(rt: Runtime, when: float) -> str:
    """The budget day of `when` in the configured zone."""
    return datetime.fromtimestamp(when, tz=ZoneInfo(rt.settings.timezone)).strftime("%Y-%m-%d")


def estimate(rt: Runtime, policy: Policy, msg: dict[str, Any]) -> Decimal:
    """The message's cost: ClickSend's price for its country, encoding and parts (cached), else the table."""
    channel, country = msg["channel"], msg.get("country") or "XX"
    encoding, parts = msg.get("encoding") or "GSM-7", int(msg.get("segments") or 1)
    cached = rt.store.cached_price(channel, country, encoding, parts)
    if cached is not None:
        return cached
    try:
        reply = rt.client.price(channel, payloads.request_body(channel, [msg]))
        price = reply.total_price if reply.total_price is not None else None
    except (ProviderError, ConfigError) as exc:  # ConfigError: no ClickSend to ask; the table answers
        log.info("price endpoint unavailable (%s); using the price table", exc)
        price = None
    if price is None:
        return policy.fallback_price(channel, msg.get("country"), parts)
    rt.store.cache_price(channel, country, encoding, parts, price, policy.price_cache_ttl)
    return price


def gather(store: Store | None, policy: Policy, msg: dict[str, Any], now: float, cost: Decimal,
           fan_out: int = 1, at_send_time: bool = True, zone: str = "UTC") -> Facts:
    """The facts the policy looks at. Read-only; with no store (a dry run without Redis) the counts are zero."""
    to = msg.get("to")
    rate = policy.max_per_recipient
    day = datetime.fromtimestamp(now, tz=ZoneInfo(zone)).strftime("%Y-%m-%d")
    return Facts(
        now=now,
        opted_out=bool(store and to and to in store.opted_out([to])),
        duplicate=bool(store and at_send_time and policy.duplicate_window and
                       store.is_duplicate(duplicate_digest(msg))),
        recent_times=tuple(store.recent_sends(to, now, rate.per)) if store and at_send_time and rate and to else (),
        spent_today=store.spent(day) if store and policy.daily_budget is not None else Decimal(0),
        estimate=cost,
        fan_out=fan_out,
        zones=zones_for(msg) if at_send_time else (),
        balance_low=bool(store and store.balance_low()),
        approved_by=msg.get("approved_by"),
    )


def describe(facts: Facts) -> dict[str, Any]:
    """The facts as a person reads them (local time at the recipient, counts, spend)."""
    local = []
    for name in facts.zones[:3]:
        local.append(f"{name} {datetime.fromtimestamp(facts.now, tz=ZoneInfo(name)):%a %H:%M}")
    return {"local_time": local, "recent_sends": len(facts.recent_times), "spent_today": str(facts.spent_today),
            "estimate": str(facts.estimate), "fan_out": facts.fan_out, "opted_out": facts.opted_out,
            "duplicate": facts.duplicate, "balance_low": facts.balance_low}


def admit(rt: Runtime, msg: dict[str, Any], now: float, fan_out: int = 1, at_send_time: bool = True) -> Outcome:
    """Decide one message and, when it may go, reserve what going consumes.

    `at_send_time` false (a message planned for later) skips the checks that depend on the moment of
    sending (quiet hours, rate, duplicates); they run again when it is due.
    """
    try:
        policy = rt.rules.current().policy(msg.get("policy") or "default")
    except HooklineError:
        policy = rt.rules.config.policy("default") if rt.rules.config else Policy("default")
    cost = estimate(rt, policy, msg)
    facts = gather(rt.store, policy, msg, now, cost, fan_out, at_send_time, rt.settings.timezone)
    decision = decide(policy, country=msg.get("country"), segments=msg.get("segments"),
                      critical=bool(msg.get("critical")), facts=facts)
    reservation = None
    if decision.action == "send" and at_send_time:
        decision = _reserve(rt, policy, msg, decision, cost, now)
        if decision.action == "send":
            reservation = {"reserved": str(cost), "reserved_day": day_of(rt, now)}
    return Outcome(decision, _state_for(decision, msg, now, at_send_time), _send_at(decision, msg, now), cost,
                   describe(facts), reservation)


def release(rt: Runtime, msgs: list[dict[str, Any]], now: float) -> None:
    """Give back what admission took for messages that will never be sent now (cancelled, failed): the
    budget on the day it was reserved (today's for a message reserved before days were recorded), the
    recipient's rate slot and the duplicate marker, if they hold it."""
    for msg in msgs:
        reserved = to_decimal(msg.get("reserved"))
        if reserved is None:
            continue  # never admitted for sending: nothing was taken
        rt.store.adjust_spend(msg.get("reserved_day") or day_of(rt, now), -reserved)
        if msg.get("to"):
            rt.store.release_rate_slot(msg["to"], msg["id"])
        rt.store.release_duplicate(duplicate_digest(msg), msg["id"])


def _reserve(rt: Runtime, policy: Policy, msg: dict[str, Any], decision: Decision, cost: Decimal,
             now: float) -> Decision:
    """Take the duplicate marker, the rate slot and the budget; a lost race gives back what was taken and
    turns into the matching outcome (a marker or slot left behind would block this message's own retry)."""
    to = msg.get("to")
    digest = duplicate_digest(msg)
    marked = bool(policy.duplicate_window)
    if marked and not rt.store.claim_duplicate(digest, policy.duplicate_window or 0, msg["id"]):
        return Decision("suppress", ("same body to the same recipient within duplicate_window (concurrent)",))
    rate = policy.max_per_recipient
    if rate and to:
        opens = rt.store.take_rate_slot(to, msg["id"], now, rate.per, rate.count)
        if opens is not None:
            if marked:
                rt.store.release_duplicate(digest, msg["id"])
            why = f"max_per_recipient {rate.count} per {rate.per:.0f}s reached"
            return Decision("suppress", (why,)) if rate.action == "suppress" else Decision("defer", (why,), opens)
    budget = policy.daily_budget if msg.get("approved_by") is None else None
    if not rt.store.reserve_spend(day_of(rt, now), cost, budget):
        if rate and to:
            rt.store.release_rate_slot(to, msg["id"])
        if marked:
            rt.store.release_duplicate(digest, msg["id"])
        return Decision("hold", (f"daily_budget {policy.daily_budget} would be exceeded (concurrent sends)",))
    return decision


def _state_for(decision: Decision, msg: dict[str, Any], now: float, at_send_time: bool) -> str:
    if decision.action == "suppress":
        return "suppressed"
    if decision.action == "hold":
        return "held"
    if decision.action == "defer":
        return "scheduled"
    future = msg.get("send_at") and float(msg["send_at"]) > now
    return "scheduled" if future or not at_send_time else "queued"


def _send_at(decision: Decision, msg: dict[str, Any], now: float) -> float | None:
    if decision.action == "defer":
        return decision.until
    send_at = msg.get("send_at")
    return float(send_at) if send_at and float(send_at) > now else None
