"""Applying what ClickSend pushed: kept in a list, applied a page at a time by one chained job holding a
lease, swept up when that job is lost; against a real Redis."""

from __future__ import annotations

import pytest
import redis
from rq.job import Job

from tests.flow.test_feedback import receipt, sent_message
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.store import keys
from workers.store.pushed import Pushed
from workers.wiring import pipeline


def queued_jobs(rt: Runtime) -> list[Job]:
    queue = pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE)
    return [Job.fetch(job_id, connection=rt.rq_connection) for job_id in queue.job_ids]


def test_pushes_are_applied_a_page_at_a_time_by_one_chained_job(runtime: Runtime, redis_client: redis.Redis,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)  # each job's budget is spent after its first page
    ids = [sent_message(runtime, f"msg_push{i}", f"PROV-P{i}") for i in range(jobs.PUSHED_PAGE + 20)]
    tokens = [runtime.store.pushed.push(Pushed("receipt", receipt(201, mid, f"PROV-P{i}")))
              for i, mid in enumerate(ids)]
    first, *rest = tokens
    assert first is not None and rest == [None] * len(rest)  # only the first push starts a drain
    stop = {"message_id": "IN-P", "from": "+61433333333", "body": "STOP"}
    assert runtime.store.pushed.push(Pushed("inbound", stop)) is None

    assert jobs.apply_pushed(first) == {"applied": jobs.PUSHED_PAGE, "more": 1}
    [chained] = queued_jobs(runtime)
    [successor] = chained.args  # the lease passed to a token of its own: a retry of the first job finds it taken
    assert chained.func_name == pipeline.APPLY_PUSHED and successor != first
    assert jobs.apply_pushed(first) == {"applied": 0, "more": -1}
    assert jobs.apply_pushed(successor) == {"applied": 21, "more": 0}
    assert {runtime.store.messages.message_state(mid) for mid in ids} == {"delivered"}
    assert "+61433333333" in runtime.store.optouts.optouts()
    assert redis_client.llen(keys.PUSHED) == 0 and not redis_client.exists(keys.PUSHED_DRAIN)
    assert jobs.apply_pushed(successor) == {"applied": 0, "more": 0}  # RQ re-running it: nothing left, no harm


def test_a_pushed_job_within_its_budget_applies_page_after_page_and_leaves_no_job_behind(
        runtime: Runtime, redis_client: redis.Redis) -> None:
    ids = [sent_message(runtime, f"msg_pages{i}", f"PROV-Q{i}") for i in range(jobs.PUSHED_PAGE * 2 + 5)]
    [first, *_] = [runtime.store.pushed.push(Pushed("receipt", receipt(201, mid, f"PROV-Q{i}")))
                   for i, mid in enumerate(ids)]
    assert first is not None
    assert jobs.apply_pushed(first) == {"applied": len(ids), "more": 0}
    assert queued_jobs(runtime) == [] and not redis_client.exists(keys.PUSHED_DRAIN)
    assert {runtime.store.messages.message_state(mid) for mid in ids} == {"delivered"}


def test_pushes_left_by_a_lost_drain_are_swept_up_and_applied_once(runtime: Runtime,
                                                                   redis_client: redis.Redis) -> None:
    mid = sent_message(runtime)
    token = runtime.store.pushed.push(Pushed("receipt", receipt(201)))
    assert token is not None
    assert jobs.sweep_pushed() is False  # its drain holds the lease: nothing to sweep
    # The job that would have applied it is lost (its worker died before RQ ran it) and its lease lapses.
    redis_client.delete(keys.PUSHED_DRAIN)
    assert jobs.sweep_pushed() is True
    [swept] = [job for job in queued_jobs(runtime) if job.args != (token,)]
    assert jobs.apply_pushed(*swept.args) == {"applied": 1, "more": 0}
    assert runtime.store.messages.message_state(mid) == "delivered"
    assert jobs.sweep_pushed() is False  # nothing waits
    again = runtime.store.pushed.push(Pushed("receipt", receipt(201)))  # ClickSend pushes it again
    assert again is not None
    assert jobs.apply_pushed(token) == {"applied": 0, "more": -1}  # the lost job re-run: the lease is another's
    assert jobs.apply_pushed(again) == {"applied": 1, "more": 0}
    delivered = [e for e in runtime.store.messages.get_message(mid).timeline if e.get("to") == "delivered"]
    assert len(delivered) == 1


def test_a_drain_whose_lease_another_holds_applies_nothing(runtime: Runtime) -> None:
    sent_message(runtime)
    token = runtime.store.pushed.push(Pushed("receipt", receipt(201)))
    assert token is not None
    assert jobs.apply_pushed("someone-elses") == {"applied": 0, "more": -1}
    assert runtime.store.messages.message_state("msg_fb1") == "sent"
