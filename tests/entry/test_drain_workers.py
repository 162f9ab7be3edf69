"""Partitioned drains on real `rq worker` processes (Hookline's worker class) against a real Redis: two workers
drain different partitions at the same time while one key's events keep their arrival order, and the partition
of a drain killed with SIGKILL is taken over once its lease lapses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from rq import Worker
from rq.job import Job
from rq.registry import FinishedJobRegistry
from rq.worker import WorkerStatus

from tests.conftest import API_TOKEN, ROOT
from tests.faults.cluster import descendants
from tests.pending import drains_held
from tests.waiting import wait_for
from workers.core.partitions import partition_of
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.store.keys import events_drain_key
from workers.wiring import pipeline
from workers.wiring.rulesdir import RulesDir

BIN = Path(sys.executable).parent
SOURCES = """sources:
  bookings:
    verify: {scheme: none}
    event_type: {path: kind}
    event_id: {path: id}
    partition_key: {path: booking}
"""
# Each version of a booking replaces the reminder of the one before: the reminder left is the last one
# processed, so a booking whose events were processed out of order is left with an older version's.
RULES = """rules:
  - name: reminder
    source: bookings
    event: booking
    send: {channel: sms, to: "{{ payload.phone }}", from: Hookline, body: "Version {{ payload.v }}"}
    schedule: {delay: 1d}
    key: "booking-{{ payload.booking }}"
    replace: true
"""


@dataclass
class Workers:
    """`rq worker` processes as the Procfile runs them, each killable with everything under it."""

    rt: Runtime
    home: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str, batch: int) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "HOME": str(self.home),
               "REDIS_URL": self.rt.settings.redis_url, "HOOKLINE_RULES_DIR": self.rt.settings.rules_dir,
               "HOOKLINE_API_TOKEN": API_TOKEN, "HOOKLINE_EVENT_BATCH": str(batch)}
        with (self.home / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [str(BIN / "rq"), "worker", "--url", self.rt.settings.redis_url, "--worker-class",
                 "workers.entry.worker.HooklineWorker", "--name", name, *pipeline.ALL_QUEUES],
                env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_for(lambda: name in {w.name for w in Worker.all(connection=self.rt.rq_connection)},
                 f"worker {name} to listen", timeout=60, interval=0.05)
        return name

    def kill(self, name: str) -> None:
        """SIGKILL the worker and the work horse running its job."""
        proc = self.procs.pop(name)
        for pid in [proc.pid, *descendants(proc.pid)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)

    def running_drain(self, name: str) -> bool:
        """True once the work horse of worker `name` exists and runs a drain job."""
        if not descendants(self.procs[name].pid):
            return False  # the job is given out before the horse is forked: a kill now would miss it
        job_id = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name,
                                    connection=self.rt.rq_connection).get_current_job_id()
        return bool(job_id) and Job.fetch(job_id, connection=self.rt.rq_connection).func_name == pipeline.DRAIN_EVENTS

    def idle(self, name: str) -> bool:
        """True while worker `name` waits for a job: the job it ran last has ended, its outcome recorded."""
        worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=self.rt.rq_connection)
        return worker.get_state() == WorkerStatus.IDLE and not worker.get_current_job_id()


@pytest.fixture
def workers(runtime: Runtime, tmp_path: Path) -> Iterator[Workers]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(SOURCES)
    (rules / "reminders.yaml").write_text(RULES)
    (rules / "policies.yaml").write_text("policies:\n  default: {approval: auto}\n")
    runtime.settings = runtime.settings.with_(rules_dir=str(rules))
    runtime.rules = RulesDir(rules, runtime.settings)
    assert runtime.rules.reload(), runtime.rules.errors
    group = Workers(runtime, tmp_path, {})
    yield group
    for name in list(group.procs):
        group.kill(name)


def post_versions(client, bookings: list[str], versions: int) -> dict[str, list[str]]:  # noqa: ANN001
    """Every booking's versions 0… in turn (version 0 of each, then 1…); each booking's event ids in order."""
    posted: dict[str, list[str]] = {b: [] for b in bookings}
    for v in range(versions):
        for n, booking in enumerate(bookings):
            answer = client.post("/hooks/bookings", json={"id": f"{booking}-{v}", "kind": "booking", "v": v,
                                                          "booking": booking, "phone": f"+6141{n:07d}"})
            assert answer.status_code == 202, answer.json
            posted[booking].append(answer.json["event_id"])
    return posted


def hold_the_backlog(rt: Runtime, r: redis.Redis) -> None:
    """Forget the drains the posts started, as if their jobs were lost, so the sweep starts them all at once."""
    pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE).empty()
    r.delete(*(events_drain_key(p) for p in range(rt.settings.partitions)))


def processed(rt: Runtime, ids: list[str]) -> bool:
    return all(rt.store.events.get_event(i).status == "processed" for i in ids)


def drained(rt: Runtime, r: redis.Redis, workers: Workers, names: list[str], ids: list[str]) -> bool:
    """Every one of `ids` processed, the last drain done (it released its lease) and its job ended on one of the
    workers `names`, its outcome in RQ's records: a batch's events are marked processed before its job ends."""
    return processed(rt, ids) and not drains_held(r) and all(workers.idle(name) for name in names)


def last_version_left(rt: Runtime, posted: dict[str, list[str]]) -> dict[str, str]:
    """Each booking's reminder that is still scheduled: the body of the last version processed."""
    left = {}
    for booking, ids in posted.items():
        messages = [rt.store.messages.get_message(m) for i in ids for m in rt.store.messages.event_message_ids(i)]
        [kept] = [m.body for m in messages if m.state == "scheduled"]
        left[booking] = kept
    return left


def drain_runs(rt: Runtime) -> list[tuple[int | None, str, float, float]]:
    """Every finished drain job: its partition, its worker, when it started and ended (RQ's records)."""
    ids = FinishedJobRegistry(pipeline.EVENTS_QUEUE, connection=rt.rq_connection).get_job_ids()
    return [(job.args[1], job.worker_name, job.started_at.timestamp(), job.ended_at.timestamp())
            for job in filter(None, Job.fetch_many(ids, connection=rt.rq_connection))
            if job.func_name == pipeline.DRAIN_EVENTS]


def drained_by(rt: Runtime) -> list[tuple[str, int]]:
    """Every finished drain job's worker and how many events it drained (its result)."""
    ids = FinishedJobRegistry(pipeline.EVENTS_QUEUE, connection=rt.rq_connection).get_job_ids()
    return [(job.worker_name, job.return_value()["events"])
            for job in filter(None, Job.fetch_many(ids, connection=rt.rq_connection))
            if job.func_name == pipeline.DRAIN_EVENTS]


def test_two_workers_drain_different_partitions_at_once_and_each_keys_events_stay_in_arrival_order(
        runtime: Runtime, client, workers: Workers, redis_client: redis.Redis) -> None:  # noqa: ANN001
    bookings = [f"bk{n}" for n in range(8)]
    assert len({partition_of(b, runtime.settings.partitions) for b in bookings}) >= 2
    posted = post_versions(client, bookings, 15)
    hold_the_backlog(runtime, redis_client)
    workers.start("drainer-1", batch=5)
    workers.start("drainer-2", batch=5)
    assert jobs.sweep_pending_events() >= 2
    every = [i for ids in posted.values() for i in ids]
    wait_for(lambda: drained(runtime, redis_client, workers, ["drainer-1", "drainer-2"], every),
             "every event to be processed", timeout=120, interval=0.1)
    runs = drain_runs(runtime)
    overlaps = [(a, b) for a in runs for b in runs if a < b and a[2] < b[3] and b[2] < a[3]]
    # Two drains ran at once, on the two workers and on different partitions; never two of one partition.
    assert any(a[0] != b[0] and a[1] != b[1] for a, b in overlaps), runs
    assert [(a, b) for a, b in overlaps if a[0] == b[0]] == []
    assert last_version_left(runtime, posted) == {b: "Version 14" for b in bookings}


def test_a_partition_whose_drain_was_killed_is_taken_over_once_its_lease_lapses(
        runtime: Runtime, client, workers: Workers, redis_client: redis.Redis) -> None:  # noqa: ANN001
    posted = post_versions(client, ["solo"], 300)  # one key: one partition, one long drain
    partition = partition_of("solo", runtime.settings.partitions)
    hold_the_backlog(runtime, redis_client)
    workers.start("doomed", batch=300)
    assert jobs.sweep_pending_events() == 1
    wait_for(lambda: workers.running_drain("doomed"), "the drain to be running", timeout=60, interval=0.005)
    workers.kill("doomed")
    ids = posted["solo"]
    assert not processed(runtime, ids)
    assert drains_held(redis_client) == [partition]  # the dead holder's lease, until it lapses
    assert jobs.sweep_pending_events() == 0
    workers.start("heir", batch=300)

    def taken_over() -> bool:
        # The sweep runs on every look, as rq cron runs it: it claims the lease once it lapses. RQ's own retry of
        # the killed job (a drain's Retry) would take the lapsed lease back instead, were it first: either way a
        # drain on the heir, the only live worker, takes the partition over.
        jobs.sweep_pending_events()
        return drained(runtime, redis_client, workers, ["heir"], ids)

    wait_for(taken_over, "the heir to take the partition over once the lease lapsed and drain it", timeout=120,
             interval=0.2)
    runs = drained_by(runtime)
    # Only the heir finished a drain, and between its drains it took each of the 300 events off the list once.
    assert {worker for worker, _ in runs} == {"heir"}, runs
    assert sum(events for _, events in runs) == 300, runs
    assert [len(runtime.store.messages.event_message_ids(i)) for i in ids] == [1] * 300  # planned once each
    assert last_version_left(runtime, posted) == {"solo": "Version 299"}  # in arrival order
