"""The lease keeper against a real Redis: it keeps a short lease alive while its job works, lets it lapse
when the job stops, and never takes a lease that is not its own; the sweep settles a queued claim only while
it is still the same claim."""

from __future__ import annotations

import time

import redis

from tests.waiting import wait_for
from workers.store.lease import CLAIM, JobFate, LeaseKeeper, QueuedClaim, QueuedClaims, job_key

LEASE_MS = 1500


def test_a_short_lease_outlives_its_length_while_the_job_works_and_lapses_after(redis_client: redis.Redis) -> None:
    keeper = LeaseKeeper(redis_client, "hl:test:lease", "mine", LEASE_MS)
    assert keeper.hold()
    with keeper:
        until = time.monotonic() + 3 * LEASE_MS / 1000
        while time.monotonic() < until:  # three lease lengths: only renewals keep it
            assert redis_client.get("hl:test:lease") == "mine"
            time.sleep(0.05)
    assert not keeper.lost
    wait_for(lambda: redis_client.get("hl:test:lease") is None, "the lease to lapse once nobody renews it")


def test_a_lease_held_by_another_is_neither_taken_nor_renewed(redis_client: redis.Redis) -> None:
    redis_client.set("hl:test:lease", "theirs", px=LEASE_MS)
    keeper = LeaseKeeper(redis_client, "hl:test:lease", "mine", LEASE_MS)
    assert not keeper.hold()
    with keeper:
        wait_for(lambda: keeper.lost, "the keeper to notice the lease is not its own")
    assert redis_client.get("hl:test:lease") == "theirs"


def test_renewing_never_brings_back_a_lease_that_was_released(redis_client: redis.Redis) -> None:
    keeper = LeaseKeeper(redis_client, "hl:test:lease", "mine", LEASE_MS)
    assert keeper.hold()
    with keeper:
        redis_client.delete("hl:test:lease")  # released (or lapsed) while the job still runs
        wait_for(lambda: keeper.lost, "the keeper to notice")
        assert redis_client.get("hl:test:lease") is None
    assert keeper.hold()  # an explicit hold takes a free lease: how a drain whose lease lapsed resumes


def test_the_sweep_settles_a_queued_claim_only_while_it_is_still_the_same_claim(redis_client: redis.Redis) -> None:
    claims = QueuedClaims(redis_client, 60_000, LEASE_MS)
    redis_client.rpush("hl:test:list", "item")
    assert redis_client.register_script(CLAIM)(keys=["hl:test:list", "hl:test:lease", job_key("hl:test:lease")],
                                               args=["mine", 60_000, "job-1"])
    [found] = claims.find(["hl:test:other", "hl:test:lease"])
    assert found == QueuedClaim(1, "mine", "job-1")
    # Its job starts between the sweep's look and its verdict: the claim is the job's short lease now.
    assert LeaseKeeper(redis_client, "hl:test:lease", "mine", LEASE_MS, queued=True).hold()
    assert claims.find(["hl:test:lease"]) == []
    assert claims.settle(["hl:test:other", "hl:test:lease"], [found], [JobFate.ENDED], lambda: "job-2") == []
    assert redis_client.get("hl:test:lease") == "mine" and redis_client.pttl("hl:test:lease") <= LEASE_MS
