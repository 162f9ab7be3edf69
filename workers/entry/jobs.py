"""RQ entry points: thin shells that take ids or tokens, load, call the domain, save, enqueue the next step.

Every job is safe to run twice: RQ re-runs the jobs of killed workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from rq import get_current_job
from rq.timeouts import BaseTimeoutException

from workers.core.coerce import to_decimal
from workers.core.lifecycle import CANCELLABLE, State
from workers.entry.runtime import Runtime, get_runtime
from workers.flow import origin
from workers.flow.optouts import OptoutSync
from workers.flow.sender import FlushOutcome
from workers.store.callbacks import CALLBACK_TTL
from workers.store.events import DrainClaim
from workers.store.messages import Written
from workers.store.outbox import FlushClaim
from workers.store.pushed import Pushed
from workers.wiring import pipeline

log = logging.getLogger("hookline.jobs")

# Pushed receipts and replies applied per job round: one page of a poll.
PUSHED_PAGE = 100
# A drain, flush or pushed-receipts job goes on to its list's next batch for up to this long before it hands the
# list to a new job: RQ forks a work horse per job (about 20 ms of CPU each), so a backlog costs few forks, while
# a worker still returns to its other queues every few seconds and no job nears its timeout or the sending lease.
ROUND_BUDGET = 2.0
# A flush sleeps a wait up to this long (the rate limit's next token; a 429's Retry-After of a second, counted
# from ClickSend's answer, so a little over a second from the flush's clock) instead of leaving it to RQ's
# scheduler, which looks for due jobs once a second: scheduled, a 0.2 s wait would cost one to two seconds, on
# every batch of a backlog once the burst is spent. Longer waits (pauses, outages, backoff) are scheduled: a job
# sleeping them would hold a worker for nothing, and the scheduler's second matters less.
SLEEP_UP_TO = 1.5


def drain_events(token: str, partition: int | None = None) -> dict[str, int]:
    """Process `partition`'s pending events a batch at a time, for up to ROUND_BUDGET, while holding its drain
    lease `token`; chain a new job while more wait. `partition` None is the single list of the versions before
    partitions (their jobs name none).

    Each partition has its own list and lease, so drains of different partitions run at once, on any worker of
    any machine, while one partition's events are processed one batch after another, in arrival order. The
    lease is short and renewed while the batch is processed, so it lapses seconds after a worker dies with it.
    A drain waits in the queue under a longer claim naming its job, which its start turns into the short lease.
    A job whose lease another drain holds now (RQ re-running a killed job, a drain taken over while this one
    was lost to the queue) does nothing; one whose lease lapsed with nobody else holding it takes it back, so no
    pending event is left without a drain.
    """
    rt = get_runtime()
    events = rt.store.events
    claim = DrainClaim(partition, token)
    keeper = events.drain_keeper(claim)
    if not keeper.hold():
        return {"events": 0, "more": -1}
    drained, more, handed, ends = 0, 1, False, time.monotonic() + ROUND_BUDGET
    # Channels that gained queued messages, to send before the job ends, with those messages as written.
    planned: dict[str, dict[str, Written]] = {}

    def queued(channel: str, written: dict[str, Written]) -> None:
        planned.setdefault(channel, {}).update(written)

    with keeper:
        while more == 1 and not keeper.lost:
            ids = events.pending_batch(partition, rt.settings.event_batch)
            if ids:
                process_event_batch(ids, queued)
            handed = time.monotonic() >= ends
            done = events.finish_batch(claim, len(ids), hand_over=handed)
            more = done.more
            drained += len(ids)
            if handed:
                break
            if more == 1:
                _send_planned(planned)  # the lease is still this job's: the next batch waits for the send
    _send_planned(planned)
    # Chaining is the last thing the job does: a job retried after it (RQ re-running one that failed or was
    # killed) would hold the lease beside the job it chained. A lost lease chains nothing: its holder, or the
    # sweep once it lapses, goes on.
    if more == 1 and handed:
        rt.enqueuer.drain(done.next)
    return {"events": drained, "more": more}


def _send_planned(channels: dict[str, dict[str, Written]]) -> None:
    """Send what a drain queued in `channels` in this job, not a flush job of its own: one fork fewer per batch,
    and no wait in the send queue. Only where no flush holds the outbox's lease: a running one goes on to
    these messages (it ends only on an empty outbox), a waiting one (in the queue, or waiting out a pause) sends
    them when its time comes. It never sleeps (the partition's next batch would wait): a short wait for the rate
    limit or a 429 hands the outbox to a flush job that waits it out (`pipeline.NOT_BEFORE` in its meta). The
    messages the drain wrote are not read back where their records are still as written."""
    rt = get_runtime()
    for channel in sorted(channels):
        claim = None
        try:
            claim = rt.store.outbox.claim_flush(channel, for_job=False)
            if claim:
                _flush(claim, written=channels[channel], may_sleep=False)
        except BaseTimeoutException:
            raise  # RQ ending the job: its retry, and the sending lease's recovery, take over
        except Exception:  # noqa: BLE001 - the events are planned: their sending must not fail the drain
            log.exception("sending from the drain failed; a flush of %s's outbox takes it over", channel)
            if not claim or _hand_over(claim, FlushOutcome(), time.time()) < 0:
                rt.enqueuer.kick(channel)  # not claimed, or lost: a flush job if none holds the lease
    channels.clear()


def process_event_batch(event_ids: list[str],
                        send: Callable[[str, dict[str, Written]], object] | None = None) -> None:
    """Match, plan and store the messages of a batch of events (idempotent); `send` as
    `Processing.process_events` takes it."""
    get_runtime().processing.process_events(event_ids, time.time(), send)


def fire_message(message_id: str) -> bool:
    """RQ's scheduler calls this at a scheduled message's time: queue it for sending."""
    return get_runtime().processing.fire(message_id, time.time())


def fire_due_messages() -> int:
    """Periodic safety net: fire scheduled messages whose RQ job was lost (e.g. a crash after creating them)."""
    rt = get_runtime()
    now = time.time()
    processing = rt.processing
    return sum(processing.fire(mid, now) for mid in rt.store.messages.due_messages(now - 2))


def sweep_pending_events() -> int:
    """Periodic safety net: start a drain of every partition where events wait and no drain holds the lease (a
    lost enqueue, a dead holder's lapsed lease, a partition beyond a lowered count), or where the drain claimed
    for a job is no longer waiting for it (the job was lost); how many were started.

    A drain claimed for a job RQ still has waiting is left to it (its claim renewed), however long the queue:
    claiming it again would only pile up drain jobs that find the lease another's.
    """
    rt = get_runtime()
    events = rt.store.events
    queued = events.queued_drains()
    claims = events.settle_drains(queued, rt.enqueuer.fates([c.job for c in queued])) + events.claim_drains()
    for claim in claims:
        rt.enqueuer.drain(claim)
    return len(claims)


def flush_outbox(channel: str, token: str) -> dict[str, Any]:
    """Send batches from `channel`'s outbox holding its flush lease `token`, for up to ROUND_BUDGET; chain or
    schedule the next flush. Returns the counts of the batches sent, summed (`wait`, `paused` and `narrowed`
    the last batch's).

    The lease is short and renewed while the job works (as the drain's); a job waits in the queue under a longer
    claim naming it, which its start turns into the short lease. A job whose lease another flush holds now
    does nothing. A job whose meta names a `not_before` (Unix time, `pipeline.NOT_BEFORE`) was started at once to
    wait out a short wait (`SLEEP_UP_TO`) that the flush before it could not; it sleeps until then, at most
    SLEEP_UP_TO, and one that starts later goes on at once.
    """
    job = get_current_job()
    not_before = job.meta.get(pipeline.NOT_BEFORE) if job is not None else None
    return _flush(FlushClaim(channel, token), not_before)


def _flush(claim: FlushClaim, not_before: float | None = None, written: dict[str, Written] | None = None,
           may_sleep: bool = True) -> dict[str, Any]:
    """`flush_outbox`'s work, in a flush job or (not `may_sleep`) in a drain's own send, given the messages
    that drain just wrote to the outbox (`written`, see `Sender.flush`)."""
    rt = get_runtime()
    outbox = rt.store.outbox
    keeper = outbox.flush_keeper(claim)
    if not keeper.hold():
        return {"skipped": "another flush holds the lease"}  # a flush claimed again while this one waited
    sender, total = rt.sender(), FlushOutcome()
    with keeper:
        if not_before is not None:
            _sleep_until(min(not_before, time.time() + SLEEP_UP_TO))
        ends, now, outcome = time.monotonic() + ROUND_BUDGET, time.time(), FlushOutcome()
        while not keeper.lost:
            now = time.time()
            outcome = sender.flush(claim.channel, now, written or {})
            total.add(outcome)
            if outcome.wait > 0:
                # Slept here, the wait is exact; the keeper renews the lease meanwhile. Not past the round's
                # budget, and not for an outbox with nothing left to send.
                if (may_sleep and _short(outcome) and time.monotonic() + outcome.wait <= ends
                        and outbox.outbox_length(claim.channel)):
                    _sleep_until(now + outcome.wait)
                    continue
                break
            # Another batch only when one waits: each batch takes a rate token first, even from an empty outbox.
            if not outcome.claimed or time.monotonic() >= ends or not outbox.outbox_length(claim.channel):
                break
    _hand_over(claim, outcome, now)
    return total.as_dict()


def _hand_over(claim: FlushClaim, outcome: FlushOutcome, now: float) -> int:
    """End a flush under `claim` whose last batch (at `now`) came out as `outcome`: hand the outbox to the
    next flush job while messages wait, else give the lease back; `finish_flush`'s answer.

    The next job is scheduled for a long wait; a short one (too long to sleep here, or in a drain) starts it
    at once, to wait out the rest itself; none, or a pause lifted meanwhile, starts it at once.
    """
    rt = get_runtime()
    done = rt.store.outbox.finish_flush(claim, outcome.wait, outcome.paused)
    if done.more == 1 and outcome.wait > 0 and not _short(outcome):
        rt.enqueuer.flush(done.next, at=now + outcome.wait)
    elif done.more == 1 and outcome.wait > 0:
        rt.enqueuer.flush(done.next, not_before=now + outcome.wait)
    elif done.more > 0:
        rt.enqueuer.flush(done.next)
    return done.more


def _short(outcome: FlushOutcome) -> bool:
    """A wait to wait out to the moment, not leave to RQ's scheduler: up to SLEEP_UP_TO, unless it is
    `repeated` (a 429 right after another, or a batch waiting for a replica: a job chain retrying every second
    would gain nothing over the scheduler, and a worker would spend its time on it)."""
    return outcome.wait <= SLEEP_UP_TO and not outcome.repeated


def _sleep_until(at: float) -> None:
    """Sleep until Unix time `at` (a flush waiting out a short wait)."""
    time.sleep(max(0.0, at - time.time()))


def reconcile_messages(channel: str, message_ids: list[str]) -> dict[str, int]:
    """Settle messages whose send outcome is unknown, through ClickSend's history."""
    rt = get_runtime()
    return rt.sender().reconcile(channel, message_ids, time.time())


def recover_sending() -> dict[str, int]:
    """Periodic: restart flushes whose job was lost; reconcile messages whose worker died mid-send.

    As `sweep_pending_events` does for drains: a flush claimed for a job RQ still has waiting (in the queue, or
    scheduled to wait out a pause) is left to it, its claim renewed; one whose job has started or is unknown to
    RQ gets the short lease (it lapses if nobody holds it); one whose job ended without flushing is taken over
    at once. Then every outbox with messages and no flush gets one.
    """
    rt = get_runtime()
    outbox = rt.store.outbox
    queued = outbox.queued_flushes(pipeline.CHANNELS)
    for claim in outbox.settle_flushes(queued, rt.enqueuer.fates([c.job for c in queued])):
        rt.enqueuer.flush(claim)
    for channel in pipeline.CHANNELS:
        rt.enqueuer.kick(channel)
    return rt.sender().recover(time.time())


def send_callback(callback_id: str) -> str:
    """One attempt at a callback to the originating system; the next is scheduled, never slept for."""
    rt = get_runtime()
    return rt.callback_sender().deliver(callback_id, time.time())


def poll_feedback() -> dict[str, Any]:
    """Periodic: apply unread receipts and inbound replies, and refresh what we know of the account."""
    rt = get_runtime()
    now = time.time()
    feedback = rt.feedback
    result: dict[str, Any] = {"receipts": feedback.poll_receipts(now), "inbound": feedback.poll_inbound(now)}
    account = rt.client.account()
    rt.store.account.remember_account(user_id=account.get("user_id"), balance=account.get("balance"), checked_at=now)
    result["balance_low"] = _check_balance(rt, to_decimal(account.get("balance")), now)
    return result


def _check_balance(rt: Runtime, balance: Decimal | None, now: float) -> bool:
    """Below the highest floor any policy sets: automatic approvals become holds, and an alert is raised."""
    floors = [p.balance_floor for p in rt.rules.current().policies.values() if p.balance_floor is not None]
    low = balance is not None and bool(floors) and balance < max(floors)
    rt.store.account.set_balance_low(low)
    if low:
        rt.store.account.raise_alert("balance_low", f"ClickSend balance {balance} is below the floor {max(floors)}",
                                     now)
    else:
        rt.store.account.clear_alert("balance_low")
    return low


def sync_optouts() -> dict[str, int]:
    """Periodic: keep the suppression list and ClickSend's opt-out list in step, both ways."""
    rt = get_runtime()
    return OptoutSync(rt.store, lambda: rt.client, rt.settings.default_region).run(time.time())


def expire_holds() -> list[str]:
    """Periodic: holds nobody decided on within their policy's approval_expires become expired."""
    return get_runtime().approvals.expire(time.time())


def trim_indexes() -> int:
    """Periodic: forget index entries of messages and callbacks whose records have expired."""
    rt, now = get_runtime(), time.time()
    return (rt.store.messages.trim_state_indexes(now - rt.settings.message_ttl)
            + rt.store.callbacks.trim_exhausted(now - CALLBACK_TTL))


def sweep_callbacks() -> list[str]:
    """Periodic: create callbacks a crash kept from being created, and restart those whose job was lost."""
    rt, now = get_runtime(), time.time()
    rt.notifier.sweep_unreported(now)
    return origin.sweep(rt.store, rt.enqueuer, now)


def report_change(message_id: str, state: str) -> int:
    """Create the callbacks for a change the web edge or the CLI made (an approval's rejection)."""
    rt = get_runtime()
    msg = rt.store.messages.get_message(message_id, with_log=False)
    if msg is None or msg.state != state:
        return 0  # expired, or it moved on and that later change reports itself
    return rt.notifier.notify([msg], state, time.time())


def apply_pushed(token: str) -> dict[str, int]:
    """Apply what ClickSend pushed, a page at a time for up to ROUND_BUDGET, while holding the drain lease
    `token`; chain the next page.

    Leased like `drain_events`: it waits in the queue under a claim naming it; a job whose lease another holds
    does nothing, one whose lease lapsed with nobody else holding it takes it back.
    """
    rt = get_runtime()
    pushed = rt.store.pushed
    keeper = pushed.keeper(token)
    if not keeper.hold():
        return {"applied": 0, "more": -1}
    applied, more, handed, ends = 0, 1, False, time.monotonic() + ROUND_BUDGET
    with keeper:
        while more == 1 and not keeper.lost:
            items = pushed.batch(PUSHED_PAGE)
            rt.feedback.apply_pushed(items, time.time())
            handed = time.monotonic() >= ends
            done = pushed.finish(token, len(items), hand_over=handed)
            more = done.more
            applied += len(items)
            if handed:
                break
    if more == 1 and handed:  # a lost lease chains nothing (as a drain's)
        rt.enqueuer.apply_pushed(done.next_token, done.next_job)
    return {"applied": applied, "more": more}


def apply_push(kind: str, data: dict[str, Any]) -> str:
    """A receipt (`kind` receipt) or reply (`inbound`) pushed before pushes were kept in a list: RQ may still
    hold such jobs after an upgrade, and ClickSend will not push them again."""
    [outcome] = get_runtime().feedback.apply_pushed([Pushed(kind, data)], time.time())
    return outcome


def sweep_pushed() -> bool:
    """Periodic safety net: start applying pushed receipts and replies when some wait and no job holds the
    lease, or the job its claim was made for is no longer waiting for it (the job was lost). A claim whose job
    RQ still has waiting is left to it, its claim renewed (as `sweep_pending_events`)."""
    rt = get_runtime()
    pushed = rt.store.pushed
    queued = pushed.queued()
    if queued is not None:
        [fate] = rt.enqueuer.fates([queued[1]])
        taken = pushed.settle(*queued, fate)
        if taken is not None:
            rt.enqueuer.apply_pushed(*taken)
            return True
    token = pushed.claim()
    if token:
        rt.enqueuer.apply_pushed(token)
    return token is not None


def cancel_messages(message_ids: list[str], reason: str) -> list[str]:
    """Cancel the messages a person chose that are still pending, and give back what admission reserved for
    them. A re-run finds them cancelled already and gives nothing back twice."""
    rt, now = get_runtime(), time.time()
    done = [mid for mid in message_ids
            if rt.store.messages.transition(mid, State.CANCELLED, now, reason, expect=CANCELLABLE)[0]]
    rt.admission.release([m for m in rt.store.messages.get_messages(done) if m], now)
    return done
