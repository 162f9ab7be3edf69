"""Which job runs on which queue, and the one enqueuer every part of Hookline starts jobs through.

Job functions are named by dotted path (strings), so the web edge can enqueue without importing the jobs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus

from workers.store.events import DrainClaim
from workers.store.lease import JobFate
from workers.store.outbox import FlushClaim, OutboxRecords
from workers.store.pushed import pushed_job_id

EVENTS_QUEUE = "hookline-events"
SEND_QUEUE = "hookline-send"
CALLBACKS_QUEUE = "hookline-callbacks"
ALL_QUEUES = (EVENTS_QUEUE, SEND_QUEUE, CALLBACKS_QUEUE)

DRAIN_EVENTS = "workers.entry.jobs.drain_events"
FIRE_MESSAGE = "workers.entry.jobs.fire_message"
FLUSH_OUTBOX = "workers.entry.jobs.flush_outbox"
NOT_BEFORE = "not_before"  # in a flush job's meta: the Unix time it waits for at its start (`Enqueuer.flush`)
RECONCILE = "workers.entry.jobs.reconcile_messages"
SEND_CALLBACK = "workers.entry.jobs.send_callback"
REPORT_CHANGE = "workers.entry.jobs.report_change"
APPLY_PUSHED = "workers.entry.jobs.apply_pushed"
CANCEL_MESSAGES = "workers.entry.jobs.cancel_messages"
CHANNELS = ("sms", "mms", "voice", "contact")  # every outbox; contact holds writes to contact lists
# Shorter than the sending lease, so a flush is never still running when recovery takes its messages.
FLUSH_TIMEOUT = 90
# A drain sends what it planned in its own job, so it is bound as a flush is (never running when recovery takes
# the messages of a flush that stopped).
DRAIN_TIMEOUT = FLUSH_TIMEOUT

# A drain job killed with its worker is retried; its work is idempotent and its lease guards the list.
_DRAIN_RETRY = Retry(max=5, interval=[1, 5, 15, 60, 120])
_WEEK = 7 * 86400
# A scheduled job this long past its time is not being looked after by any RQ scheduler (which looks every
# second): its worker's was killed, or exited with a Redis restart, and comes back only at a maintenance pass.
STRANDED_AFTER = 60.0
# What becomes of a job that waits: RQ runs it some day (a queued claim made for it is kept meanwhile).
_WAITING = frozenset({JobStatus.CREATED, JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED,
                      JobStatus.RATE_LIMITED, JobStatus.READY_TO_ENQUEUE})


def queue(connection: redis.Redis, name: str) -> Queue:
    """The RQ queue `name` on `connection` (a client that does not decode responses)."""
    return Queue(name, connection=connection)


def _fate(job: Job | None, found: float | None, now: float) -> JobFate:
    """What became of `job` at `now`; `found`: where a queued job is in its queue's list, or when a scheduled
    one is due (None: not there). One a worker has taken out of the list is queued until it starts, and stays
    so if the worker died in between (until RQ's maintenance, minutes later, notices): taken, not waiting. One
    scheduled and overdue by more than STRANDED_AFTER has no scheduler to enqueue it."""
    if job is None:
        return JobFate.UNSEEN
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED and found is None:
        return JobFate.STARTED
    if status == JobStatus.SCHEDULED and found is not None and found < now - STRANDED_AFTER:
        return JobFate.STRANDED
    if status in _WAITING:
        return JobFate.WAITING
    return JobFate.STARTED if status == JobStatus.STARTED else JobFate.ENDED


def _when(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


class Enqueuer:
    """The one way anything in Hookline starts a job: every enqueue names its job, queue and limits here."""

    def __init__(self, connection: redis.Redis, outbox: OutboxRecords):
        self.connection = connection
        self.outbox = outbox

    def _queue(self, name: str) -> Queue:
        return queue(self.connection, name)

    def drain(self, claim: DrainClaim) -> None:
        """Start a drain of one partition's pending events holding its lease `claim`, as the job the claim names."""
        self._queue(EVENTS_QUEUE).enqueue(DRAIN_EVENTS, claim.token, claim.partition, retry=_DRAIN_RETRY,
                                          result_ttl=60, failure_ttl=_WEEK, job_timeout=DRAIN_TIMEOUT,
                                          job_id=claim.job or None)

    def fates(self, job_ids: list[str]) -> list[JobFate]:
        """What became of each of these jobs (those queued claims were made for), in two round trips."""
        if not job_ids:
            return []
        jobs = Job.fetch_many(job_ids, connection=self.connection)
        asked = [job for job in jobs
                 if job is not None and job.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.SCHEDULED)]
        pipe = self.connection.pipeline(transaction=False)
        for job in asked:
            q = self._queue(job.origin)
            if job.get_status(refresh=False) == JobStatus.QUEUED:
                pipe.lpos(q.key, job.id)
            else:
                pipe.zscore(q.scheduled_job_registry.key, job.id)
        found = {job.id: at for job, at in zip(asked, pipe.execute(), strict=True)}
        now = time.time()
        return [_fate(job, found.get(job.id) if job is not None else None, now) for job in jobs]

    def fire(self, message_id: str, at: float | None = None) -> None:
        """Fire a message (scheduled, or approved) now or at Unix time `at` (the due sweep is the safety net)."""
        q, kwargs = self._queue(EVENTS_QUEUE), {"result_ttl": 60, "failure_ttl": _WEEK}
        if at is None:
            q.enqueue(FIRE_MESSAGE, message_id, **kwargs)
        else:
            q.enqueue_at(_when(at), FIRE_MESSAGE, message_id, **kwargs)

    def kick(self, channel: str) -> bool:
        """Start a flush of `channel`'s outbox when messages wait and no flush is pending or running."""
        claim = self.outbox.claim_flush(channel)
        if claim:
            self.flush(claim)
        return claim is not None

    def flush(self, claim: FlushClaim, at: float | None = None, not_before: float | None = None) -> None:
        """Flush an outbox holding the lease `claim`, as the job the claim names: now, at Unix time `at` (RQ's
        scheduler), or now with the job waiting at its start until `not_before`.

        RQ's scheduler looks for due jobs once a second, so a wait shorter than that (the rate limit's next
        token, a 429's Retry-After of a second) is not scheduled: it would cost up to a second more than asked,
        on every batch of a backlog. A flush job sleeps such a wait itself, its lease renewed meanwhile, and
        one that must not (a drain's own send, a job at the end of its round) hands the outbox to a job
        started at once with `not_before`. It travels in the job's meta, not its arguments, so a worker of an
        older version can run that job too (without the wait).
        """
        q = self._queue(SEND_QUEUE)
        kwargs = {"result_ttl": 60, "failure_ttl": _WEEK, "job_timeout": FLUSH_TIMEOUT, "job_id": claim.job or None,
                  "args": (claim.channel, claim.token),
                  "meta": {NOT_BEFORE: not_before} if not_before is not None else {}}
        if at is None:
            q.enqueue(FLUSH_OUTBOX, **kwargs)
        else:
            q.enqueue_at(_when(at), FLUSH_OUTBOX, **kwargs)

    def reconcile(self, channel: str, message_ids: list[str], at: float) -> None:
        """Look messages with an unknown outcome up in ClickSend's history at `at`."""
        self._queue(SEND_QUEUE).enqueue_at(_when(at), RECONCILE, channel, message_ids, result_ttl=60,
                                           failure_ttl=_WEEK, job_timeout=FLUSH_TIMEOUT)

    def callback(self, callback_id: str, at: float | None = None) -> None:
        """Deliver a callback on its own queue (a slow origin never slows sending), now or at `at`."""
        q, kwargs = self._queue(CALLBACKS_QUEUE), {"result_ttl": 60, "failure_ttl": _WEEK, "job_timeout": 120}
        if at is None:
            q.enqueue(SEND_CALLBACK, callback_id, **kwargs)
        else:
            q.enqueue_at(_when(at), SEND_CALLBACK, callback_id, **kwargs)

    def report(self, message_id: str, state: str) -> None:
        """Create the callbacks for a change the web edge or the CLI made (the sweep is the safety net)."""
        self._queue(CALLBACKS_QUEUE).enqueue(REPORT_CHANGE, message_id, state, result_ttl=60, failure_ttl=_WEEK,
                                             retry=_DRAIN_RETRY)

    def apply_pushed(self, token: str, job: str | None = None) -> None:
        """Apply what ClickSend pushed, a page at a time, holding the drain lease `token`, as the job its claim
        names (`job`, else the one `pushed.push` and `pushed.claim` name for the token)."""
        self._queue(SEND_QUEUE).enqueue(APPLY_PUSHED, token, retry=_DRAIN_RETRY, result_ttl=60, failure_ttl=_WEEK,
                                        job_timeout=DRAIN_TIMEOUT, job_id=job or pushed_job_id(token))

    def cancel(self, message_ids: list[str], reason: str) -> None:
        """Cancel pending messages a person chose and give back what admission reserved for them."""
        self._queue(EVENTS_QUEUE).enqueue(CANCEL_MESSAGES, message_ids, reason, result_ttl=60, failure_ttl=_WEEK,
                                          retry=_DRAIN_RETRY)
