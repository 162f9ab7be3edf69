"""Sending: flush an outbox in batches, obey the shared rate limit and 429s, apply every message's outcome,
and reconcile unknown outcomes through history before anything is sent again.

The adapter between the store, the ClickSend client and `core.sending`; `entry/jobs.py` holds the RQ shells.
Must not enqueue except through the `Enqueuer` it is given.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from types import TracebackType
from typing import Any

import redis

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.core import payloads
from workers.core.coerce import to_decimal
from workers.core.lifecycle import State
from workers.core.messages import Channel, Message
from workers.core.sending import Step, backoff, classify
from workers.errors import (
    AuthenticationFailed,
    InsufficientCredit,
    NotReplicated,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    StoreUnavailable,
)
from workers.flow.admission import Admission, day_of
from workers.flow.contactlists import ContactLists
from workers.flow.origin import Notifier
from workers.flow.processing import Processing
from workers.store import Store
from workers.store.messages import Change, Written
from workers.wiring.pipeline import Enqueuer
from workers.wiring.settings import Settings

log = logging.getLogger("hookline.sender")

MAX_RETRIES = 5  # THROTTLED / provider-side errors per message before it fails
PAUSE_ON_ACCOUNT_PROBLEM = 300.0  # no credit / bad credentials: look again in five minutes
RECONCILE_AFTER = 5.0  # seconds before the first history lookup of an unknown outcome
SENDING_LEASE = 120.0  # a message `sending` longer than this belonged to a worker that died
NARROW_FOR = 600.0  # seconds smaller batches last while the message that made a request refused is sought
REPLICA_RETRY = 1.0  # a claim no replica acknowledged is put back and the flush runs again after this long
# A contact write or a send to a list interrupted this many times (its worker died, or its flush ran out of
# time, each time before it was done) fails instead of being done yet again: one that cannot finish within a
# flush would otherwise be redone forever.
MAX_INTERRUPTED = 3
INTERRUPTED = "interrupted: doing it again"


@dataclass
class FlushOutcome:
    """What one flush did (for the job's return value, logs and tests)."""

    claimed: int = 0
    calls: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    requeued: int = 0
    unknown: int = 0
    narrowed: int = 0  # the batch size the next flushes use after a refused request (0: unchanged)
    wait: float = 0.0  # > 0: the flush stopped early and should run again after this long
    paused: bool = False  # the wait is the outbox's pause (a 429, an outage, the account), which resume lifts
    # The wait is a 429's that came right after another's (ClickSend's limit is being hit again and again), or
    # a replica's: however short, nothing is gained by waiting it out to the moment.
    repeated: bool = False

    def add(self, other: FlushOutcome) -> None:
        """Count `other` (a later batch of the same job) in: its counts added, its `narrowed` and its wait's
        (`wait`, `paused`, `repeated`) kept."""
        for name in ("claimed", "calls", "sent", "failed", "retried", "requeued", "unknown"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.narrowed, self.wait, self.paused, self.repeated = other.narrowed, other.wait, other.paused, other.repeated

    def as_dict(self) -> dict[str, Any]:
        """JSON-able counts."""
        return dict(self.__dict__)


class _KeepingClaims:
    """Renews the sending claims of messages a flush is working on one at a time, every third of SENDING_LEASE
    from a daemon thread, so that recovery does not take them (and have them done again) while a long contact
    write or send to a list still runs. Time runs on from the flush's `now`."""

    def __init__(self, renew: Callable[[float], object], now: float):
        self.renew, self.now = renew, now
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keeping sending claims", daemon=True)

    def __enter__(self) -> _KeepingClaims:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(SENDING_LEASE / 3):
            try:
                self.renew(self.now + time.monotonic() - self._started)
            except (StoreUnavailable, redis.RedisError) as exc:  # the next renewal may get through
                log.warning("could not renew sending claims: %s", exc)


class Sender:
    """Flushes outboxes through one ClickSend client."""

    def __init__(self, store: Store, client: ClickSendClient, settings: Settings, enqueuer: Enqueuer,
                 admission: Admission, notifier: Notifier, rand: random.Random | None = None):
        self.store, self.client, self.settings, self.enqueuer = store, client, settings, enqueuer
        self.admission, self.notifier = admission, notifier
        self.rand = rand or random.Random()
        self._begun = time.monotonic()

    def flush(self, channel: str, now: float, written: Mapping[str, Written] | None = None) -> FlushOutcome:
        """Send one batch (up to `send_batch` messages, fewer while a refused request is narrowed down) from
        `channel`'s outbox. `written`: messages this process just created (by id), which are not read back when
        their records are still as created (`MessageRecords.claimed_messages`)."""
        out = FlushOutcome()
        self._begun = time.monotonic()  # when `now` was, for the time that passes while calling ClickSend
        pause = self.store.outbox.paused(channel)
        if pause and float(pause["until"]) > now:
            out.wait, out.paused = float(pause["until"]) - now, True
            return out
        settings = self.settings
        wait = self.store.outbox.take_token(settings.send_rate, max(1.0, settings.send_rate), now)
        if wait > 0:
            out.wait = wait
            return out
        size = min(settings.send_batch, self.store.outbox.batch_limit(channel) or settings.send_batch)
        claim = self.store.outbox.claim(channel, size, now)
        ids = claim.ids
        out.claimed = len(ids)
        if not ids:
            return out
        try:
            self.store.replicated()  # a claim a failover forgot would have these sent again
        except NotReplicated as exc:
            out.requeued += self.store.outbox.requeue(ids, now, f"claim not on a replica yet ({exc})")
            # Not a wait to sleep out (`repeated`): replicas down for a while would keep a worker asleep, flush
            # after flush, where the scheduler's retry leaves it free meanwhile.
            out.wait, out.repeated = REPLICA_RETRY, True
            return out
        docs = [d for d in self.store.messages.claimed_messages(claim, written or {}) if d is not None]
        lists = ContactLists(self.store, self.client, self.settings.default_region)
        if channel == Channel.CONTACT:
            self._one_at_a_time(channel, docs, now, out, partial(lists.write, now=now))
            return out
        to_lists = [d for d in docs if d.list_ref]
        if to_lists:
            docs = [d for d in docs if not d.list_ref]
            self._one_at_a_time(channel, to_lists, now, out, partial(self._to_list, lists, now=now))
            if out.wait:
                out.requeued += self.store.outbox.requeue([d.id for d in docs], now, "outbox paused")
                return out
        groups: dict[str | None, list[Message]] = defaultdict(list)
        for doc in docs:
            groups[doc.media_file if channel == "mms" else None].append(doc)
        for index, group in enumerate(groups.values()):
            # The flush's own token paid for its first call: the first group's, unless sends to lists went first.
            paid = index == 0 and not to_lists
            wait = 0 if paid else self.store.outbox.take_token(settings.send_rate, max(1.0, settings.send_rate), now)
            if wait > 0:
                # Out of tokens for the next MMS group: put the rest back, in order.
                rest = [d.id for g in list(groups.values())[index:] for d in g]
                out.requeued += self.store.outbox.requeue(rest, now, "rate limit: waiting for a token")
                out.wait = wait
                break
            self._send_group(channel, group, now, out)
            if out.wait:
                rest = [d.id for g in list(groups.values())[index + 1:] for d in g]
                out.requeued += self.store.outbox.requeue(rest, now, "outbox paused")
                break
        return out

    def _send_group(self, channel: str, docs: list[Message], now: float, out: FlushOutcome) -> None:
        ids = [d.id for d in docs]
        out.calls += 1
        try:
            reply = self.client.send(channel, payloads.request_body(channel, docs))
        except RateLimited as exc:
            delay = self._rate_limited(channel, exc, out)
            self._put_back(channel, ids, now, delay, f"429 from ClickSend: retrying in {delay:.1f}s", out)
            return
        except (InsufficientCredit, AuthenticationFailed) as exc:
            self._account_problem(channel, ids, now, exc, out)
            return
        except ProviderUnavailable as exc:
            if exc.outcome_unknown:
                self._unknown(channel, ids, now, f"outcome unknown: {exc.message}", out)
            else:
                delay = backoff(self.store.outbox.strike(channel, "error"), 2.0, 120.0, self.rand)
                self._put_back(channel, ids, now, delay, f"ClickSend unreachable ({exc.message})", out)
            return
        except ProviderRejected as exc:
            if len(docs) > 1:
                # One bad message must not take the batch with it: put them back and send halves until it is
                # alone. The narrowed size lives in Redis, so the search survives pauses, 429s and restarts.
                out.narrowed = len(docs) // 2
                self.store.outbox.limit_batch(channel, out.narrowed, NARROW_FOR)
                out.requeued += self.store.outbox.requeue(ids, now, f"ClickSend refused the request "
                                                   f"({exc.message}): trying batches of {out.narrowed}")
                return
            self.store.outbox.clear_batch_limit(channel)  # found it: back to full batches
            changes = [Change(i, State.FAILED, f"ClickSend rejected the request: {exc.message}") for i in ids]
            applied = self.store.messages.apply_many(changes, now)
            out.failed += sum(applied)
            self._settled(docs, [c for c, ok in zip(changes, applied, strict=True) if ok], now)
            return
        self.store.outbox.clear_strikes(channel)
        if any(r.status == "SUCCESS" for r in reply.messages):
            # The account works again; _apply raises the alert anew if some message still lacked credit.
            for name in ("insufficient_credit", "authentication_failed"):
                self.store.account.clear_alert(name)
        self._apply(channel, docs, reply.messages, now, out)

    def _one_at_a_time(self, channel: str, docs: list[Message], now: float, out: FlushOutcome,
                       work: Callable[[Message], Change]) -> None:
        """Contact writes and sends to lists, one at a time (a token each), met like sends: a 429 or an outage
        puts the rest back and pauses the outbox, bad credentials raise the alert, a refusal (an unknown list, a
        bad field) fails that one alone. Doing one again is safe: each looks at the list before it acts. Each
        may page through a whole list: the claims of those not done yet are renewed meanwhile."""
        keep = partial(self.store.outbox.keep_sending, [d.id for d in docs])
        with _KeepingClaims(keep, now):
            self._each_at_a_time(channel, docs, now, out, work)

    def _each_at_a_time(self, channel: str, docs: list[Message], now: float, out: FlushOutcome,
                        work: Callable[[Message], Change]) -> None:
        for index, doc in enumerate(docs):
            rest = [d.id for d in docs[index:]]
            wait = self.store.outbox.take_token(self.settings.send_rate, max(1.0, self.settings.send_rate),
                                                now) if index else 0
            if wait > 0:
                out.requeued += self.store.outbox.requeue(rest, now, "rate limit: waiting for a token")
                out.wait = wait
                return
            out.calls += 1
            try:
                change = work(doc)
            except RateLimited as exc:
                delay = self._rate_limited(channel, exc, out)
                self._put_back(channel, rest, now, delay, f"429 from ClickSend: retrying in {delay:.1f}s", out)
                return
            except AuthenticationFailed as exc:
                self._account_problem(channel, rest, now, exc, out)
                return
            except ProviderUnavailable as exc:
                delay = backoff(self.store.outbox.strike(channel, "error"), 2.0, 120.0, self.rand)
                self._put_back(channel, rest, now, delay, f"ClickSend unreachable ({exc.message})", out)
                return
            except ProviderRejected as exc:
                change = Change(doc.id, State.FAILED, f"ClickSend refused: {exc.message}", {"error": exc.message})
            self.store.outbox.clear_strikes(channel)
            applied = self.store.messages.apply_many([change], now)
            if applied[0]:
                out.sent += change.target == State.SENT
                out.failed += change.target == State.FAILED
                self._settled([doc], [change], now)

    def _to_list(self, lists: ContactLists, parent: Message, now: float) -> Change:
        """A send to a list becomes a message per number on it (those on the Opt-Out List suppressed), each
        admitted by its policy and sent in the outbox's batches; the send to the list is then done."""
        assert parent.list_ref is not None
        numbers, opted_out = lists.numbers(parent.list_ref), lists.opted_out()
        processing = Processing(self.store, self.admission.rules, self.settings, self.enqueuer, self.admission,
                                self.notifier)
        counts = processing.plan_list(parent, numbers, opted_out, now)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing new"
        return Change(parent.id, State.SENT, f"list {parent.list_ref}: a message for each of its {len(numbers)} "
                      f"number(s) ({summary})", {"sent_at": now})

    def _apply(self, channel: str, docs: list[Message], results: list[Any], now: float,
               out: FlushOutcome) -> None:
        by_id = {r.custom_string: r for r in results if r.custom_string}
        changes: list[Change] = []
        missing: list[str] = []
        pause_ids: list[str] = []
        for doc in docs:
            result = by_id.get(doc.id)
            action = classify(result.status if result else None)
            if action is Step.SENT:
                assert result is not None
                changes.append(Change(doc.id, State.SENT, "accepted by ClickSend", {
                    "provider_id": result.message_id, "price": str(result.price or Decimal(0)),
                    "parts": result.parts, "sent_at": now}))
                out.sent += 1
            elif action is Step.RETRY:
                assert result is not None
                retries = doc.retries + 1
                if retries > MAX_RETRIES:
                    changes.append(Change(doc.id, State.FAILED, f"{result.status} after {MAX_RETRIES} retries"))
                    out.failed += 1
                else:
                    delay = backoff(retries, 5.0, 600.0, self.rand)
                    changes.append(Change(doc.id, State.SCHEDULED, f"{result.status}: retry {retries} in "
                                          f"{delay:.0f}s", {"retries": retries}, send_at=now + delay))
                    out.retried += 1
            elif action is Step.PAUSE:
                pause_ids.append(doc.id)
            elif action is Step.RECONCILE:
                missing.append(doc.id)
            else:
                assert result is not None
                changes.append(Change(doc.id, State.FAILED, f"ClickSend: {result.status}",
                                      {"provider_id": result.message_id, "error": result.status}))
                out.failed += 1
        applied = self.store.messages.apply_many(changes, now)
        done = [c for c, ok in zip(changes, applied, strict=True) if ok]
        for change in done:
            if change.target == State.SCHEDULED and change.send_at is not None:
                self.enqueuer.fire(change.id, change.send_at)
        self._settled(docs, done, now)
        if missing:
            self._unknown(channel, missing, now, "not in ClickSend's reply", out)
        if pause_ids:
            self._account_problem(channel, pause_ids, now, InsufficientCredit("INSUFFICIENT_CREDIT"), out)

    def _settled(self, docs: list[Message], done: list[Change], now: float) -> None:
        """Settle the budget, remember provider ids and tell the origins about messages that became sent or
        failed. Spend is settled on the day it was reserved, so each day's total stays that day's."""
        by_id = {d.id: d for d in docs}
        for change in done:
            doc = by_id[change.id]
            reserved = doc.reserved
            if change.target == State.SENT and reserved is not None:  # the estimate against the real price
                actual = to_decimal(change.fields.get("price"))
                delta = (actual if actual is not None else reserved) - reserved
                self.store.reservations.adjust_spend(doc.reserved_day or day_of(self.settings.timezone, now), delta)
        self.admission.release([by_id[c.id] for c in done if c.target == State.FAILED], now)  # nothing was sent
        self.store.feedback.index_provider_ids({c.fields["provider_id"]: c.id for c in done
                                       if c.target == State.SENT and c.fields.get("provider_id")})
        for state in (State.SENT, State.FAILED):
            settled = [by_id[c.id].moved(state, c.fields) for c in done if c.target == state]
            if settled:
                self.notifier.notify(settled, state, now)

    def _rate_limited(self, channel: str, exc: RateLimited, out: FlushOutcome) -> float:
        """How long after the flush's `now` to pause `channel` for a 429: ClickSend's Retry-After counts from
        its answer, which came this long after `now` (a flush sleeps a short wait to the moment, where RQ's
        scheduler would have added up to a second); else a backoff."""
        strikes = self.store.outbox.strike(channel, "429")
        out.repeated = strikes > 1
        if exc.retry_after is None:
            return backoff(strikes, 1.0, 60.0, self.rand)
        return exc.retry_after + time.monotonic() - self._begun

    def _put_back(self, channel: str, ids: list[str], now: float, delay: float, reason: str,
                  out: FlushOutcome) -> None:
        out.requeued += self.store.outbox.requeue(ids, now, reason)
        self.store.outbox.pause(channel, now + delay, reason)
        out.wait, out.paused = max(out.wait, delay), True
        log.warning("%s outbox paused %.1fs: %s", channel, delay, reason)

    def _account_problem(self, channel: str, ids: list[str], now: float, exc: ProviderError,
                         out: FlushOutcome) -> None:
        name = "insufficient_credit" if isinstance(exc, InsufficientCredit) else "authentication_failed"
        message = ("ClickSend account has no credit: sending paused until topped up" if name == "insufficient_credit"
                   else f"ClickSend refused the credentials: {exc.message}")
        self.store.account.raise_alert(name, message, now)
        log.error("ALERT %s: %s", name, message)
        self._put_back(channel, ids, now, PAUSE_ON_ACCOUNT_PROBLEM, message, out)

    def _unknown(self, channel: str, ids: list[str], now: float, reason: str, out: FlushOutcome) -> None:
        changes = [Change(i, State.UNKNOWN, reason, expect=frozenset({State.SENDING})) for i in ids]
        out.unknown += sum(self.store.messages.apply_many(changes, now))
        self.enqueuer.reconcile(channel, ids, now + RECONCILE_AFTER)

    # --- reconciliation ----------------------------------------------------------------------------

    def reconcile(self, channel: str, ids: list[str], now: float) -> dict[str, int]:
        """Look unknown messages up in history by custom_string: sent if found, resent if surely absent."""
        docs = [d for d in self.store.messages.get_messages(ids) if d and d.state == State.UNKNOWN]
        if not docs:
            return {"sent": 0, "requeued": 0, "waiting": 0}
        # Contact writes and sends to lists have no history to consult, and need none: each looks before it acts.
        redo = [d for d in docs if d.channel == Channel.CONTACT or d.list_ref]
        given_up = self._give_up(redo, now)
        again = [d.id for d in redo if d.id not in given_up]
        early = self.store.outbox.requeue(again, now, INTERRUPTED, from_state=State.UNKNOWN)
        if early:
            self.enqueuer.kick(channel)
        docs = [d for d in docs if d.channel != Channel.CONTACT and not d.list_ref]
        if not docs:
            return {"sent": 0, "requeued": early, "waiting": 0}
        since = min(d.sending_since or d.updated_at or now for d in docs)
        try:
            found = self._history_by_custom_string(channel, int(since) - 60, int(now) + 60)
        except ProviderError as exc:
            log.warning("reconcile %s: history unavailable (%s); trying again", channel, exc.message)
            self.enqueuer.reconcile(channel, [d.id for d in docs], now + backoff(2, 5.0, 120.0, self.rand))
            return {"sent": 0, "requeued": early, "waiting": len(docs)}
        sent, absent, waiting = [], [], []
        for doc in docs:
            row = found.get(doc.id)
            if row is not None:
                sent.append(Change(doc.id, State.SENT, "found in ClickSend history", {
                    "provider_id": row.get("message_id"), "price": str(row.get("message_price") or "0"),
                    "sent_at": now}, expect=frozenset({State.UNKNOWN})))
            elif now - (doc.sending_since or since) >= self.settings.reconcile_grace:
                absent.append(doc.id)
            else:
                waiting.append(doc.id)
        applied = self.store.messages.apply_many(sent, now)
        self._settled(docs, [c for c, ok in zip(sent, applied, strict=True) if ok], now)
        requeued = self.store.outbox.requeue(absent, now, "not in ClickSend history: sending again",
                                      from_state=State.UNKNOWN)
        if requeued:
            self.enqueuer.kick(channel)
        if waiting:
            self.enqueuer.reconcile(channel, waiting, now + 10.0)
        return {"sent": len(sent), "requeued": early + requeued, "waiting": len(waiting)}

    def _give_up(self, docs: list[Message], now: float) -> set[str]:
        """Fail the contact writes and sends to lists among `docs` that were interrupted MAX_INTERRUPTED times
        (done again each time, interrupted again); their ids, whether or not they were still unknown."""
        counts = {d.id: self._interruptions(d.id) for d in docs}
        over = [mid for mid, n in counts.items() if n >= MAX_INTERRUPTED]
        if not over:
            return set()
        changes = [Change(mid, State.FAILED, f"interrupted {counts[mid]} times before it was done: given up "
                          "(a list too long to finish within one flush?)", {"error": "interrupted"},
                          expect=frozenset({State.UNKNOWN})) for mid in over]
        applied = self.store.messages.apply_many(changes, now)
        self._settled(docs, [c for c, ok in zip(changes, applied, strict=True) if ok], now)
        log.warning("gave up on %d contact write(s) or send(s) to a list interrupted %d times: %s", len(over),
                    MAX_INTERRUPTED, ", ".join(over))
        return set(over)

    def _interruptions(self, message_id: str) -> int:
        """How many times the message was interrupted before it was done: the first time, and each time it
        was done again since."""
        msg = self.store.messages.get_message(message_id)
        return 1 + sum(1 for t in (msg.timeline if msg else ()) if t.get("reason") == INTERRUPTED)

    def _history_by_custom_string(self, channel: str, date_from: int, date_to: int) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        fetch = partial(self.client.history, channel, date_from=date_from, date_to=date_to, limit=100)
        for result in iter_pages(fetch):
            for row in result.items:
                if row.get("custom_string"):
                    rows[str(row["custom_string"])] = row
        return rows

    def recover(self, now: float) -> dict[str, int]:
        """Messages left `sending` by a dead worker become unknown and are reconciled; stale unknowns too."""
        stuck = self.store.messages.messages_in_state(State.SENDING, limit=1000, before=now - SENDING_LEASE)
        stale = self.store.messages.messages_in_state(State.UNKNOWN, limit=1000, before=now - 60)
        by_channel: dict[str, list[str]] = defaultdict(list)
        for doc in self.store.messages.get_messages(stuck + stale):
            if doc is not None:
                by_channel[doc.channel].append(doc.id)
        changes = [Change(i, State.UNKNOWN, "worker lease expired while sending", expect=frozenset({State.SENDING}))
                   for i in stuck]
        self.store.messages.apply_many(changes, now)
        result = {"stuck": len(stuck), "stale": len(stale)}
        for channel, ids in by_channel.items():
            for key, value in self.reconcile(channel, ids, now).items():
                result[key] = result.get(key, 0) + value
        return result
