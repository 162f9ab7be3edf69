"""Admission: the policy gate every message passes before it may be queued for sending.

Gathers the facts (opt-outs, recent sends, spend, prices, zones, balance), asks `core.decisions.decide`,
then reserves what an approval consumes (duplicate marker, rate slot, budget) atomically in Redis.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from workers.clicksend.client import ClickSendClient
from workers.core import payloads
from workers.core.contactlists import reaches_no_one
from workers.core.decisions import Action, Decision, Facts, decide, decide_approval
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.core.phones import recipient_zones
from workers.core.policies import Policy
from workers.errors import ConfigError, HooklineError, ProviderError
from workers.store import Store
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import DEFAULT_TIMEZONE, Settings

log = logging.getLogger("hookline.admission")


@dataclass(frozen=True)
class Reservation:
    """What an approval to send took from a day's budget (settled by the real price, refunded if not sent)."""

    amount: Decimal
    day: str

    def fields(self) -> dict[str, str]:
        """As stored on the message."""
        return {"reserved": str(self.amount), "reserved_day": self.day}


@dataclass(frozen=True)
class Outcome:
    """The decision and what it leaves the message as."""

    decision: Decision
    state: State  # queued | scheduled | held | suppressed
    send_at: float | None
    estimate: Decimal
    facts: dict[str, Any]  # as a person reads them (JSON)
    reservation: Reservation | None = None

    def applied_to(self, msg: Message) -> Message:
        """`msg` as admitted: its state, time, estimate, facts, reasons and reservation."""
        changed = msg.but(state=self.state, send_at=self.send_at, estimate=self.estimate, facts=self.facts,
                          reasons=msg.reasons + self.decision.reasons)
        if self.reservation is not None:
            changed = changed.but(reserved=self.reservation.amount, reserved_day=self.reservation.day)
        return changed


def duplicate_digest(msg: Message) -> str:
    """Recipient + body, hashed (the marker key never holds the number or the text)."""
    return hashlib.sha256(f"{msg.to or msg.list_id}\0{msg.body}".encode()).hexdigest()[:32]


def day_of(zone: str, when: float) -> str:
    """The budget day of `when` in `zone` (the configured HOOKLINE_TIMEZONE)."""
    return datetime.fromtimestamp(when, tz=ZoneInfo(zone)).strftime("%Y-%m-%d")


def estimate(store: Store | None, client: Callable[[], ClickSendClient] | None, policy: Policy,
             msg: Message) -> Decimal:
    """The message's cost: ClickSend's price for its country, encoding and parts (cached), else the table.
    Without a client (the dry run) only the cache and the table are used; without a store, only the table."""
    channel, country = msg.channel, msg.country or "XX"
    encoding, parts = msg.encoding or "GSM-7", msg.segments or 1
    cached = store.reservations.cached_price(channel, country, encoding, parts) if store else None
    if cached is not None:
        return cached
    price = None
    if client is not None and store is not None:
        try:
            price = client().price(channel, payloads.request_body(channel, [msg])).total_price
        except (ProviderError, ConfigError) as exc:  # ConfigError: no ClickSend to ask
            log.info("price endpoint unavailable (%s); using the price table", exc)
        if price is not None:
            store.reservations.cache_price(channel, country, encoding, parts, price, policy.price_cache_ttl)
    return price if price is not None else policy.fallback_price(channel, msg.country, parts)


def assess(store: Store | None, policy: Policy, msg: Message, now: float, cost: Decimal, fan_out: int = 1,
           at_send_time: bool = True, zone: str = DEFAULT_TIMEZONE) -> tuple[Decision, Facts]:
    """The policy's decision on `msg` and the facts it looked at; reads only (nothing is reserved)."""
    facts = gather(store, policy, msg, now, cost, fan_out, at_send_time, zone)
    return decide(policy, country=msg.country, segments=msg.segments, critical=msg.critical, facts=facts), facts


def gather(store: Store | None, policy: Policy, msg: Message, now: float, cost: Decimal,
           fan_out: int = 1, at_send_time: bool = True, zone: str = DEFAULT_TIMEZONE) -> Facts:
    """The facts the policy looks at. Read-only; with no store (a dry run without Redis) the counts are zero."""
    to = msg.to
    rate = policy.max_per_recipient
    day = datetime.fromtimestamp(now, tz=ZoneInfo(zone)).strftime("%Y-%m-%d")
    return Facts(
        now=now,
        opted_out=bool(store and to and to in store.optouts.opted_out([to])),
        duplicate=bool(store and at_send_time and policy.duplicate_window and
                       store.reservations.is_duplicate(duplicate_digest(msg))),
        recent_times=(tuple(store.reservations.recent_sends(to, now, rate.per))
                      if store and at_send_time and rate and to else ()),
        spent_today=store.reservations.spent(day) if store and policy.daily_budget is not None else Decimal(0),
        estimate=cost,
        fan_out=fan_out,
        zones=recipient_zones(msg.timezone, msg.to) if at_send_time else (),
        balance_low=bool(store and store.account.balance_low()),
        approved_by=msg.approved_by,
    )


def describe(facts: Facts) -> dict[str, Any]:
    """The facts as a person reads them (local time at the recipient, counts, spend)."""
    local = []
    for name in facts.zones[:3]:
        local.append(f"{name} {datetime.fromtimestamp(facts.now, tz=ZoneInfo(name)):%a %H:%M}")
    return {"local_time": local, "recent_sends": len(facts.recent_times), "spent_today": str(facts.spent_today),
            "estimate": str(facts.estimate), "fan_out": facts.fan_out, "opted_out": facts.opted_out,
            "duplicate": facts.duplicate, "balance_low": facts.balance_low}


@dataclass(frozen=True)
class Admission:
    """The gate, with what it reads and reserves: the store, the policies, the settings (budget zone) and the
    ClickSend client for prices (a factory: built only when a price is not cached)."""

    store: Store
    rules: RulesDir
    settings: Settings
    client: Callable[[], ClickSendClient]

    def admit(self, msg: Message, now: float, fan_out: int = 1, at_send_time: bool = True) -> Outcome:
        """Decide one message and, when it may go, reserve what going consumes.

        `at_send_time` false (a message planned for later) skips the checks that depend on the moment of
        sending (quiet hours, rate, duplicates); they run again when it is due.
        """
        try:
            policy = self.rules.current().policy(msg.policy)
        except HooklineError:
            policy = self.rules.config.policy("default") if self.rules.config else Policy("default")
        what = reaches_no_one(msg)
        if what:  # costs and reserves nothing: only approval applies
            decision = decide_approval(policy, msg.approved_by, what)
            return Outcome(decision, _state_for(decision, msg, now, at_send_time), _send_at(decision, msg, now),
                           Decimal(0), {})
        cost = estimate(self.store, self.client, policy, msg)
        decision, facts = assess(self.store, policy, msg, now, cost, fan_out, at_send_time, self.settings.timezone)
        reservation = None
        if decision.action is Action.SEND and at_send_time:
            decision = self._reserve(policy, msg, decision, cost, now)
            if decision.action is Action.SEND:
                reservation = Reservation(cost, day_of(self.settings.timezone, now))
        return Outcome(decision, _state_for(decision, msg, now, at_send_time), _send_at(decision, msg, now), cost,
                       describe(facts), reservation)

    def release(self, msgs: list[Message], now: float) -> None:
        """Give back what admission took for messages that will never be sent now (cancelled, failed): the
        budget on the day it was reserved (today's for a message reserved before days were recorded), the
        recipient's rate slot and the duplicate marker, if they hold it."""
        for msg in msgs:
            if msg.reserved is None:
                continue  # never admitted for sending: nothing was taken
            self.store.reservations.adjust_spend(msg.reserved_day or day_of(self.settings.timezone, now),
                                                 -msg.reserved)
            if msg.to:
                self.store.reservations.release_rate_slot(msg.to, msg.id)
            self.store.reservations.release_duplicate(duplicate_digest(msg), msg.id)

    def _reserve(self, policy: Policy, msg: Message, decision: Decision, cost: Decimal,
                 now: float) -> Decision:
        """Take the duplicate marker, the rate slot and the budget; a lost race gives back what was taken and
        turns into the matching outcome (a marker or slot left behind would block this message's own retry)."""
        to, mid = msg.to, msg.id
        digest = duplicate_digest(msg)
        marked = bool(policy.duplicate_window)
        if marked and not self.store.reservations.claim_duplicate(digest, policy.duplicate_window or 0, mid):
            return Decision(Action.SUPPRESS,
                            ("same body to the same recipient within duplicate_window (concurrent)",))
        rate = policy.max_per_recipient
        if rate and to:
            opens = self.store.reservations.take_rate_slot(to, mid, now, rate.per, rate.count)
            if opens is not None:
                if marked:
                    self.store.reservations.release_duplicate(digest, mid)
                why = f"max_per_recipient {rate.count} per {rate.per:.0f}s reached"
                if rate.action == "suppress":
                    return Decision(Action.SUPPRESS, (why,))
                return Decision(Action.DEFER, (why,), opens)
        budget = policy.daily_budget if msg.approved_by is None else None
        if not self.store.reservations.reserve_spend(day_of(self.settings.timezone, now), cost, budget):
            if rate and to:
                self.store.reservations.release_rate_slot(to, mid)
            if marked:
                self.store.reservations.release_duplicate(digest, mid)
            return Decision(Action.HOLD, (f"daily_budget {policy.daily_budget} would be exceeded (concurrent sends)",))
        return decision


def _state_for(decision: Decision, msg: Message, now: float, at_send_time: bool) -> State:
    if decision.action is Action.SUPPRESS:
        return State.SUPPRESSED
    if decision.action is Action.HOLD:
        return State.HELD
    if decision.action is Action.DEFER:
        return State.SCHEDULED
    future = msg.send_at is not None and msg.send_at > now
    return State.SCHEDULED if future or not at_send_time else State.QUEUED


def _send_at(decision: Decision, msg: Message, now: float) -> float | None:
    if decision.action is Action.DEFER:
        return decision.until
    return msg.send_at if msg.send_at is not None and msg.send_at > now else None
