"""Two machines on one Redis: two groups of processes, each in its own working directory with its own web,
workers and cron, share the work (each group's workers drain events), and when one group is lost (SIGKILL of
every process it runs) mid-run, the other finishes the backlog: nothing lost, nothing sent twice."""

from __future__ import annotations

import threading
from contextlib import closing, suppress
from pathlib import Path

import pytest
import redis
import requests
from rq.job import Job
from rq.registry import FinishedJobRegistry

from tests.faults.cluster import Cluster, assert_each_sent_once, cluster, expected_messages, phone
from tests.waiting import wait_for
from workers.wiring import pipeline

pytestmark = pytest.mark.faults

EVENTS = 600


class Drains:
    """Which worker finished each drain job and how many events it took, read from RQ's job records (kept a
    minute after they finish, so they are read as the run goes)."""

    def __init__(self, c: Cluster):
        self.c, self.by_job = c, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.2):
            with suppress(redis.ConnectionError):
                self.read()

    def read(self) -> None:
        with closing(self.c.rq()) as conn:
            registry = FinishedJobRegistry(pipeline.EVENTS_QUEUE, connection=conn)
            new = [i for i in registry.get_job_ids() if i not in self.by_job]
            for job in filter(None, Job.fetch_many(new, connection=conn)):
                if job.func_name == pipeline.DRAIN_EVENTS:
                    self.by_job[job.id] = (job.worker_name, (job.return_value() or {}).get("events", 0))

    def events_by(self, group: Cluster) -> int:
        """Events the drains of `group`'s workers processed."""
        self.read()
        names = set(group.rq_names.values())
        return sum(n for worker, n in list(self.by_job.values()) if worker in names)


def test_two_hosts_share_the_drains_and_one_finishes_the_backlog_when_the_other_is_killed(tmp_path: Path) -> None:
    env = {"HOOKLINE_EVENT_BATCH": "20", "HOOKLINE_SEND_BATCH": "100"}
    with cluster(tmp_path / "host-a", env) as a:
        a.start_simulator()
        b = a.other_host(tmp_path / "host-b")
        drains = Drains(a)
        try:
            for host in (a, b):
                host.start_web()
                host.start_worker()
                host.start_worker()
                host.start_cron()
            store = a.store()
            drains.thread.start()
            accepted: list[str] = []

            def post(i: int, hosts: list[Cluster]) -> None:
                """One event to the first host that answers, as a sender retries another address."""
                payload = {"id": f"host-{i}", "kind": "notice", "phone": phone(i), "n": i}
                for host in hosts:
                    with suppress(requests.ConnectionError):
                        answer = host.post(payload, timeout=10)
                        assert answer.status_code in (200, 202), answer.text
                        accepted.append(answer.json()["event_id"])
                        return
                raise AssertionError(f"no host took event {i}")

            for i in range(EVENTS // 2):  # to both hosts in turn
                post(i, [a, b] if i % 2 else [b, a])
            wait_for(lambda: drains.events_by(a) > 0 and drains.events_by(b) > 0,
                     "both hosts' workers to have drained events", timeout=120, interval=0.2)
            a.kill_everything("host a lost mid-run")
            by_b_before = drains.events_by(b)
            for i in range(EVENTS // 2, EVENTS):
                post(i, [a, b] if i % 2 else [b, a])  # host a's address refuses now: the sender goes to b

            def processed() -> bool:
                return all(e and e.status == "processed" for e in map(store.events.get_event, accepted))

            wait_for(processed, "host b to process every accepted event", timeout=180, interval=0.5)
            expected = expected_messages(store, accepted)
            assert len(set(accepted)) == len(expected) == EVENTS, a.report(expected)
            wait_for(lambda: len(a.ledger()["messages"]) >= EVENTS, "every message to reach ClickSend",
                     timeout=300, interval=1.0)
            wait_for(lambda: store.messages.state_counts().get("sending", 0) == 0
                     and store.messages.state_counts().get("unknown", 0) == 0, "every send to be settled",
                     timeout=300, interval=1.0)
            assert_each_sent_once(a, expected)
            share_a, share_b = drains.events_by(a), drains.events_by(b)
            a.note(f"events drained by host a {share_a}, by host b {share_b}")
            # Every event posted after the kill went to b, and b drained them: it carried on alone.
            assert share_b - by_b_before >= EVENTS // 2, a.report(expected)
            assert b.dead() == [], b.report(expected)
        except BaseException:
            print(b.report())
            raise
        finally:
            drains.stop.set()
            drains.thread.join(5)
            b.close()
