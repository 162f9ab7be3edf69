"""Admission: the policy gate every message passes before it may be queued for sending.

Gathers the facts of a batch (opt-outs, recent sends, duplicate markers, spend, prices, zones, balance) in one
round trip, asks `core.decisions.decide_batch`, then reserves what the approvals consume (duplicate marker, rate
slot, budget) in one atomic step in Redis. Must not decide policy itself (the core does) nor name Redis keys.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from workers.clicksend.client import ClickSendClient
from workers.core import payloads
from workers.core.contactlists import reaches_no_one
from workers.core.decisions import Action, Candidate, Decision, Facts, Standing, decide_approval, decide_batch
from workers.core.lifecycle import State
from workers.core.messages import Channel, Message
from workers.core.phones import recipient_zones
from workers.core.policies import Policy
from workers.errors import ConfigError, HooklineError, ProviderError
from workers.flow.contactlists import ContactLists
from workers.store import Store
from workers.store.reservations import BatchFacts, Claim, PriceKey
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
class Request:
    """One message to admit: how many its event's rule produced, and whether it is to be sent now (false: it
    is planned for later and decided again then)."""

    msg: Message
    fan_out: int = 1
    at_send_time: bool = True


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
        reserved = {"reserved": self.reservation.amount, "reserved_day": self.reservation.day} \
            if self.reservation is not None else {}
        return msg.but(state=self.state, send_at=self.send_at, estimate=self.estimate, facts=self.facts,
                       reasons=msg.reasons + self.decision.reasons, **reserved)


def duplicate_digest(msg: Message) -> str:
    """Recipient + body, hashed (the marker key never holds the number or the text)."""
    return hashlib.sha256(f"{msg.to or msg.list_id}\0{msg.body}".encode()).hexdigest()[:32]


def day_of(zone: str, when: float) -> str:
    """The budget day of `when` in `zone` (the configured HOOKLINE_TIMEZONE)."""
    return datetime.fromtimestamp(when, tz=ZoneInfo(zone)).strftime("%Y-%m-%d")


def price_key(msg: Message) -> PriceKey:
    """What `msg`'s price depends on."""
    return PriceKey(msg.channel, msg.country or "XX", msg.encoding or "GSM-7", msg.segments or 1)


def estimates(store: Store | None, client: Callable[[], ClickSendClient] | None,
              asks: Sequence[tuple[Policy, Message]], cached: Mapping[PriceKey, Decimal]) -> list[Decimal]:
    """Each message's cost: the `cached` price for its channel, country, encoding and parts, else ClickSend's
    (one price call per distinct key, kept in the cache in one round trip), else the policy's table. Without a
    client (the dry run) only the cache and the table are used; without a store, only the table."""
    fetched: dict[PriceKey, Decimal | None] = {}
    keep: dict[PriceKey, tuple[Decimal, float]] = {}
    if client is not None and store is not None:
        for policy, msg in asks:
            key = price_key(msg)
            if key in cached or key in fetched:
                continue
            price = None
            try:
                price = client().price(msg.channel, payloads.request_body(msg.channel, [msg])).total_price
            except (ProviderError, ConfigError) as exc:  # ConfigError: no ClickSend to ask
                log.info("price endpoint unavailable (%s); using the price table", exc)
            fetched[key] = price
            if price is not None:
                keep[key] = (price, policy.price_cache_ttl)
        store.reservations.cache_prices(keep)
    out = []
    for policy, msg in asks:
        key = price_key(msg)
        price = cached.get(key, fetched.get(key))
        out.append(price if price is not None else policy.fallback_price(msg.channel, msg.country, key.parts))
    return out


def read_facts(store: Store | None, asks: Sequence[tuple[Policy, Message]], now: float, zone: str,
               at_send_time: Sequence[bool]) -> BatchFacts:
    """The facts of a batch in one round trip (read only); with no store (a dry run without Redis) the counts
    are zero and nothing is cached."""
    if store is None:
        return BatchFacts(frozenset(), False, Standing(), {})
    windows: dict[str, float] = {}
    digests = set()
    for (policy, msg), checks in zip(asks, at_send_time, strict=True):
        rate = policy.max_per_recipient
        if checks and rate and msg.to:
            windows[msg.to] = max(rate.per, windows.get(msg.to, 0.0))
        if checks and policy.duplicate_window:
            digests.add(duplicate_digest(msg))
    return store.reservations.read(day_of(zone, now), now, {m.to for _, m in asks if m.to}, windows, digests,
                                   {price_key(m) for _, m in asks})


def candidate(policy: Policy, msg: Message, facts: BatchFacts, now: float, cost: Decimal, fan_out: int = 1,
              at_send_time: bool = True) -> Candidate:
    """`msg` as its policy sees it in a batch whose facts are `facts`."""
    return Candidate(
        message_id=msg.id,
        policy=policy,
        facts=Facts(now=now, opted_out=bool(msg.to and msg.to in facts.opted_out), estimate=cost, fan_out=fan_out,
                    zones=recipient_zones(msg.timezone, msg.to) if at_send_time else (),
                    balance_low=facts.balance_low, approved_by=msg.approved_by,
                    list_approved_by=msg.list_approved_by),
        country=msg.country, segments=msg.segments, critical=msg.critical, recipient=msg.to,
        digest=duplicate_digest(msg), at_send_time=at_send_time)


def assess(store: Store | None, policy: Policy, msg: Message, now: float, fan_out: int = 1,
           at_send_time: bool = True, zone: str = DEFAULT_TIMEZONE) -> tuple[Decision, Facts]:
    """The policy's decision on `msg` and the facts it looked at (its estimate from the price cache or the
    table: ClickSend is not asked); reads only, in one round trip (nothing is reserved)."""
    asks = [(policy, msg)]
    facts = read_facts(store, asks, now, zone, [at_send_time])
    [cost] = estimates(None, None, asks, facts.prices)
    [found] = decide_batch([candidate(policy, msg, facts, now, cost, fan_out, at_send_time)], facts.standing)
    return found


def describe(facts: Facts) -> dict[str, Any]:
    """The facts as a person reads them (local time at the recipient, counts, spend)."""
    return {"local_time": [_local_time(name, facts.now) for name in facts.zones[:3]],
            "recent_sends": len(facts.recent_times), "spent_today": str(facts.spent_today),
            "estimate": str(facts.estimate), "fan_out": facts.fan_out, "opted_out": facts.opted_out,
            "duplicate": facts.duplicate, "balance_low": facts.balance_low}


@lru_cache(maxsize=256)
def _local_time(zone: str, now: float) -> str:
    """The zone and its weekday and time at `now`. Cached (a pure function): a batch is admitted at one `now`,
    and its recipients share a few zones, so formatting each message's time was most of `describe`."""
    return f"{zone} {datetime.fromtimestamp(now, tz=ZoneInfo(zone)):%a %H:%M}"


RESERVE_ROUNDS = 8  # rounds of reserving and deciding again before the messages still approved are held
RACED = "decided again: a concurrent admission reserved first"
_LOST = Decision(Action.HOLD, ("the budget, rate slot or duplicate marker it needs kept being taken by concurrent "
                               "admissions",))


@dataclass(frozen=True)
class Admission:
    """The gate, with what it reads and reserves: the store, the policies, the settings (budget zone) and the
    ClickSend client for prices (a factory: built only when a price is not cached)."""

    store: Store
    rules: RulesDir
    settings: Settings
    client: Callable[[], ClickSendClient]

    def admit(self, msg: Message, now: float, fan_out: int = 1, at_send_time: bool = True) -> Outcome:
        """Decide one message and, when it may go, reserve what going consumes (a batch of one)."""
        return self.admit_batch([Request(msg, fan_out, at_send_time)], now)[0]

    def admit_batch(self, requests: Sequence[Request], now: float) -> list[Outcome]:
        """Decide a batch of messages in order and reserve what the approved ones consume, each as if admitted
        one after the other: facts read in one round trip, prices asked once per distinct key not cached, the
        reservations taken in one atomic step that checks them again. A message whose reservation no longer
        fits (another drain took the budget, the slot or the marker since the read) is decided again with the
        counts as they stood then.

        `at_send_time` false (a message planned for later) skips the checks that depend on the moment of
        sending (quiet hours, rate, duplicates) and reserves nothing; they run again when it is due.
        """
        if not requests:
            return []
        outcomes: dict[int, Outcome] = {}
        sending = []
        for i, r in enumerate(requests):
            what = reaches_no_one(r.msg)
            if what:  # a contact write, a send to a whole list: costs and reserves nothing, only approval applies
                decision = decide_approval(self._policy(r.msg), r.msg.approved_by, what)
                shown = self._list_shown(r.msg.list_ref) if decision.action is Action.HOLD and r.msg.list_ref \
                    and r.msg.channel != Channel.CONTACT else {}
                outcomes[i] = Outcome(decision, _state_for(decision, r.msg, now, r.at_send_time),
                                      _send_at(decision, r.msg, now), Decimal(0), shown)
            else:
                sending.append(i)
        admitted = self._admit_sending([requests[i] for i in sending], now) if sending else []
        outcomes |= zip(sending, admitted, strict=True)
        return [outcomes[i] for i in range(len(requests))]

    def _admit_sending(self, requests: Sequence[Request], now: float) -> list[Outcome]:
        """`admit_batch` for messages that reach people: every check of their policies."""
        asks = [(self._policy(r.msg), r.msg) for r in requests]
        facts = read_facts(self.store, asks, now, self.settings.timezone, [r.at_send_time for r in requests])
        costs = estimates(self.store, self.client, asks, facts.prices)
        candidates = [candidate(policy, r.msg, facts, now, cost, r.fan_out, r.at_send_time)
                      for (policy, _), r, cost in zip(asks, requests, costs, strict=True)]
        decided = decide_batch(candidates, facts.standing)
        taken = self._reserve(asks, candidates, decided, now)
        day = day_of(self.settings.timezone, now)
        out = []
        for i, (r, c, (decision, seen)) in enumerate(zip(requests, candidates, decided, strict=True)):
            out.append(Outcome(decision, _state_for(decision, r.msg, now, r.at_send_time),
                               _send_at(decision, r.msg, now), c.facts.estimate, describe(seen),
                               Reservation(c.facts.estimate, day) if i in taken else None))
        return out

    def release(self, msgs: list[Message], now: float) -> None:
        """Give back what admission took for messages that will never be sent now (cancelled, failed), in one
        round trip: the budget on the day it was reserved (today's for a message reserved before days were
        recorded), the recipient's rate slot and the duplicate marker, if they hold it."""
        self.store.reservations.release([
            (msg.reserved_day or day_of(self.settings.timezone, now),
             Claim(msg.id, msg.reserved, recipient=msg.to, digest=duplicate_digest(msg)))
            for msg in msgs if msg.reserved is not None])  # one never admitted for sending took nothing

    def _list_shown(self, ref: str) -> dict[str, Any]:
        """What a person deciding on a held send to list `ref` is shown of the list: its size as ClickSend counts
        it now, asked once as it is held (the pages and the API read it from the message, never from ClickSend).
        Nothing when ClickSend cannot say: the hold stands either way, and the list is read again when sent."""
        try:
            size = ContactLists(self.store, self.client(), self.settings.default_region).size(ref)
        except (ProviderError, ConfigError) as exc:  # ConfigError: no ClickSend to ask
            log.info("the size of list %s is not known (%s)", ref, exc)
            return {}
        return {"list_size": size} if size is not None else {}

    def _policy(self, msg: Message) -> Policy:
        try:
            return self.rules.current().policy(msg.policy)
        except HooklineError:
            return self.rules.config.policy("default") if self.rules.config else Policy("default")

    def _reserve(self, asks: list[tuple[Policy, Message]], candidates: list[Candidate],
                 decided: list[tuple[Decision, Facts]], now: float) -> set[int]:
        """Reserve what the approvals at send time consume; which of them hold a reservation. When one no
        longer fits, those before it keep theirs, and it and every message after it are read and decided again
        (in `candidates` and `decided`), then reserved in another round. One that the fresh counts still
        approve but that does not fit again (another drain keeps taking what it needs) is held."""
        day = day_of(self.settings.timezone, now)
        taken: set[int] = set()
        start, stuck = 0, -1
        for _ in range(RESERVE_ROUNDS):
            sends = [i for i in range(start, len(decided))
                     if decided[i][0].action is Action.SEND and candidates[i].at_send_time]
            fit = self.store.reservations.reserve(day, now, [_claim(asks[i], candidates[i]) for i in sends])
            taken.update(sends[:fit])
            if fit == len(sends):
                return taken
            start = sends[fit]
            rest = asks[start:]
            facts = read_facts(self.store, rest, now, self.settings.timezone,
                               [c.at_send_time for c in candidates[start:]])
            candidates[start:] = [candidate(policy, msg, facts, now, c.facts.estimate, c.facts.fan_out,
                                            c.at_send_time) for (policy, msg), c in zip(rest, candidates[start:],
                                                                                        strict=True)]
            decided[start:] = decide_batch(candidates[start:], facts.standing)
            decision, seen = decided[start]
            if start == stuck and decision.action is Action.SEND:
                decision = _LOST  # approved by fresh counts twice, yet it did not fit
            decided[start] = (replace(decision, reasons=(*decision.reasons, RACED)), seen)
            stuck = start
        for i in range(start, len(decided)):
            if decided[i][0].action is Action.SEND and candidates[i].at_send_time:
                decided[i] = (_LOST, decided[i][1])
        return taken


def _claim(ask: tuple[Policy, Message], c: Candidate) -> Claim:
    policy, msg = ask
    return Claim(message_id=msg.id, amount=c.facts.estimate,
                 budget=policy.daily_budget if msg.approved_by is None else None,
                 recipient=msg.to, rate=policy.max_per_recipient, digest=c.digest, window=policy.duplicate_window)


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
