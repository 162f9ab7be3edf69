"""Short waits while sending (the rate limit's next token, a 429's Retry-After of a second), against a real Redis,
RQ's worker and the simulator over HTTP: a flush job sleeps them itself instead of leaving them to RQ's
scheduler (which looks once a second), and a drain's own send, which must not sleep, hands them to a flush job
started at once. The simulator's requests are recorded with their times, so each wait is checked against what
it was for (a Retry-After, a token), never against a time budget of the test.

The worker here runs without RQ's scheduler: a flush that scheduled its next job would leave it undone."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from tests.conftest import EXAMPLES_DIR, Simulator, serve
from tests.flow.test_sender import queue_messages, states
from tests.webhooks.test_ingest import post_shop
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.store import keys
from workers.store.lease import job_key
from workers.wiring import pipeline

SEND = "/v3/sms/send"
ORDER = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())  # one SMS per order


@dataclass(frozen=True)
class Request:
    """One request the simulator answered: its path, status, and when it arrived and was answered."""

    path: str
    status: int
    began: float
    ended: float


@dataclass
class Recorder:
    """WSGI middleware that records every request the simulator answers."""

    app: Callable[..., Iterable[bytes]]
    seen: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        began, status = time.time(), []

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(int(line.split()[0]))
            return start_response(line, headers, exc_info)

        body = list(self.app(environ, start))  # the whole answer, before it counts as answered
        with self.lock:
            self.seen.append(Request(environ["PATH_INFO"], status[0], began, time.time()))
        return body

    def sends(self) -> list[Request]:
        with self.lock:
            return [r for r in self.seen if r.path == SEND]


@pytest.fixture
def recorded() -> Iterator[tuple[Simulator, Recorder]]:
    """A simulator over real HTTP whose requests are recorded."""
    state = SimState(seed=7)
    state.faults.receipt_delay = 0.2
    recorder = Recorder(create_simulator(state))
    url, stop = serve(recorder)
    yield Simulator(url, state), recorder
    stop()


@pytest.fixture
def rt(runtime: Runtime, recorded: tuple[Simulator, Recorder]) -> Runtime:
    runtime.settings = runtime.settings.with_(clicksend_base_url=recorded[0].url)
    runtime._client = None
    return runtime


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep a flush takes (the time it sleeps until), slept for real."""
    taken: list[float] = []
    real = jobs._sleep_until

    def spy(at: float) -> None:
        taken.append(at)
        real(at)

    monkeypatch.setattr(jobs, "_sleep_until", spy)
    return taken


def send_queue(rt: Runtime) -> Any:
    return pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE)


def run_one(rt: Runtime, queue_name: str) -> None:
    """One job from `queue_name`, run by RQ's worker (no scheduler)."""
    queue = pipeline.queue(rt.rq_connection, queue_name)
    SimpleWorker([queue], connection=rt.rq_connection).work(burst=True, max_jobs=1)


def finished_flushes(rt: Runtime) -> list[dict[str, Any]]:
    """What each flush job that finished returned."""
    ids = FinishedJobRegistry(queue=send_queue(rt)).get_job_ids()
    return [job.return_value() for job in Job.fetch_many(ids, connection=rt.rq_connection)
            if job is not None and job.func_name == pipeline.FLUSH_OUTBOX]


def nothing_scheduled(rt: Runtime) -> bool:
    return ScheduledJobRegistry(queue=send_queue(rt)).count == 0


def test_a_429s_retry_after_of_a_second_is_waited_out_in_the_job_not_left_to_the_scheduler(
        rt: Runtime, recorded: tuple[Simulator, Recorder], sleeps: list[float]) -> None:
    simulator, recorder = recorded
    simulator.state.faults.rate_429, simulator.state.faults.spread = 0.5, True  # the first request 429, the next not
    rt.settings = rt.settings.with_(send_rate=1000.0)
    ids = queue_messages(rt, 3)
    assert rt.enqueuer.kick("sms")
    run_one(rt, pipeline.SEND_QUEUE)
    [first, retry] = recorder.sends()
    assert (first.status, retry.status) == (429, 200)
    # Retry-After: 1, counted from the 429's answer: the retry came no earlier. The job slept, until the pause's
    # end; no job was scheduled for it (RQ's scheduler would have added up to a second) and none chained.
    assert retry.began >= first.ended + 1.0
    assert sleeps and sleeps[0] == rt.store.outbox.paused("sms")["until"] <= retry.began
    assert nothing_scheduled(rt) and send_queue(rt).count == 0
    [result] = finished_flushes(rt)
    assert (result["calls"], result["requeued"], result["sent"], result["wait"]) == (2, 3, 3, 0)
    assert states(rt, ids) == {"sent": 3}
    assert simulator.state.ledger == dict.fromkeys(ids, 1)
    assert rt.store.outbox.flush_token("sms") is None  # the lease given back


def test_a_429_right_after_a_429_is_left_to_the_scheduler(
        rt: Runtime, recorded: tuple[Simulator, Recorder], sleeps: list[float]) -> None:
    simulator, recorder = recorded
    simulator.state.faults.rate_429 = 1.0  # ClickSend's limit hit again and again
    rt.settings = rt.settings.with_(send_rate=1000.0)
    ids = queue_messages(rt, 2)
    assert rt.enqueuer.kick("sms")
    run_one(rt, pipeline.SEND_QUEUE)
    # The first 429's Retry-After waited out in the job, the second's scheduled: the job ends, no chain of jobs
    # retrying every second holds the worker.
    assert [r.status for r in recorder.sends()] == [429, 429] and len(sleeps) == 1
    [scheduled] = ScheduledJobRegistry(queue=send_queue(rt)).get_job_ids()
    assert send_queue(rt).count == 0 and rt.store.r.get(job_key(keys.outbox_flush_key("sms"))) == scheduled
    assert states(rt, ids) == {"queued": 2}


def test_a_rate_limited_backlog_is_sent_at_the_rate_by_one_job_sleeping_for_each_token(
        rt: Runtime, recorded: tuple[Simulator, Recorder], sleeps: list[float],
        monkeypatch: pytest.MonkeyPatch) -> None:
    simulator, recorder = recorded
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 60.0)  # the round's budget is not what this test is about
    rt.settings = rt.settings.with_(send_rate=5.0, send_batch=2)  # a burst of five calls, then five a second
    ids = queue_messages(rt, 20)  # ten calls
    assert rt.enqueuer.kick("sms")
    run_one(rt, pipeline.SEND_QUEUE)
    sends = recorder.sends()
    assert [r.status for r in sends] == [200] * 10
    [result] = finished_flushes(rt)  # one job: the burst's five calls and the five after it
    assert (result["calls"], result["sent"], result["requeued"]) == (10, 20, 0)
    assert len(sleeps) >= 5 and nothing_scheduled(rt) and send_queue(rt).count == 0
    # Each call past the burst waited for its token: the bucket, full at the first call, gains one every 0.2 s.
    first = rt.store.messages.get_message(ids[0]).timeline
    [started] = [t["at"] for t in first if t["to"] == "sending"]
    for n, request in enumerate(sends[5:], 1):
        assert request.began >= started + n / 5.0 - 1e-3  # (the bucket keeps its times to 0.1 ms)
    assert states(rt, ids) == {"sent": 20}
    assert simulator.state.ledger == dict.fromkeys(ids, 1)


def test_a_drains_own_send_told_to_wait_does_not_sleep_but_hands_the_outbox_to_a_flush_job_at_once(
        rt: Runtime, client, recorded: tuple[Simulator, Recorder], sleeps: list[float]) -> None:  # noqa: ANN001
    simulator, recorder = recorded
    rt.settings = rt.settings.with_(send_rate=5.0, partitions=1)
    event_id = post_shop(client, payload=ORDER).json["event_id"]
    # Another worker has just taken the bucket's last token (as of a moment still to come, so that however long
    # the drain takes to get there, its send is told to wait a whole token's time: 0.2 s).
    rt.store.r.hset(keys.BUCKET, mapping={"tokens": "0", "stamp": repr(time.time() + 60)})
    before = time.time()
    run_one(rt, pipeline.EVENTS_QUEUE)
    assert rt.store.events.get_event(event_id).status == "processed"
    # The drain neither slept nor sent: a flush job, enqueued at once (not scheduled), waits out the rest.
    assert sleeps == [] and recorder.sends() == []
    [flush] = send_queue(rt).jobs
    assert flush.func_name == pipeline.FLUSH_OUTBOX and nothing_scheduled(rt)
    not_before = flush.meta[pipeline.NOT_BEFORE]  # in the meta: an older worker runs the job too
    assert before < not_before <= time.time() + 0.2
    lease = keys.outbox_flush_key("sms")  # the lease waits for that job, as a queued claim naming it
    assert rt.store.r.get(lease) == flush.args[1] and rt.store.r.get(job_key(lease)) == flush.id
    run_one(rt, pipeline.SEND_QUEUE)
    assert sleeps[0] == not_before  # the job waited at its start, until its not_before, then sent
    [sent] = recorder.sends()
    assert sent.status == 200 and sent.began >= not_before
    [mid] = rt.store.messages.event_message_ids(event_id)
    assert rt.store.messages.message_state(mid) == "sent" and simulator.state.ledger == {mid: 1}


def test_a_flush_job_waits_at_its_start_at_most_a_short_wait_and_not_at_all_once_its_time_has_passed(
        rt: Runtime, recorded: tuple[Simulator, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    rt.settings = rt.settings.with_(send_rate=1000.0)
    taken: list[tuple[float, float]] = []
    monkeypatch.setattr(jobs, "_sleep_until", lambda at: taken.append((at, time.time())))
    ids = queue_messages(rt, 2)
    claim = rt.store.outbox.claim_flush("sms")
    assert claim is not None
    assert jobs._flush(claim, not_before=time.time() + 3600)["sent"] == 2
    [(at, asked)] = taken
    assert at <= asked + jobs.SLEEP_UP_TO  # a bad or stale not_before holds the job up a second at most
    taken.clear()
    ids += queue_messages(rt, 1, prefix="late")
    claim = rt.store.outbox.claim_flush("sms")
    assert claim is not None
    assert jobs._flush(claim, not_before=time.time() - 5)["sent"] == 1
    [(at, asked)] = taken
    assert at < asked  # its time has passed: nothing to sleep
    assert states(rt, ids) == {"sent": 3}
