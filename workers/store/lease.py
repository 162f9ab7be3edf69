"""The lease that lets one job at a time work through a Redis list (each partition's event drain, each outbox's
flush, the pushed receipts), and the keeper that renews a short lease for as long as the job holding it is alive.

A lease claimed for a job that waits in RQ's queue or its schedule (a queued claim) is long instead, and names
that job (in `job_key(lease)`): nobody renews it while the job waits, and under a backlog a short one would lapse
and be claimed again, job after job. The job's first `hold()` turns it into the short lease; the periodic sweep keeps
a queued claim while RQ still has its job waiting, makes it the short lease when RQ has started the job or
has no such job (a lost enqueue: it lapses as a dead holder's would), and takes it over when the job ended
without holding it (`QueuedClaims`).

Owns the Lua that ends one round of such a job and the renewal of a held lease; the lists and lease keys are
the callers'.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType

import redis

log = logging.getLogger("hookline.lease")

# KEYS: the list, the lease, [its job key, [a pause]]. ARGV: the holder's token, items to drop from the head (0:
# none), lease ms, [the next job's id, its token]. Drop what the round handled (only while still the holder); keep
# the lease if more waits (1: for ARGV[3] ms, as a queued claim naming the next job when a job key is given), else
# release it (0); -1 when the lease was lost to another job.
# Handing over (a job key given), the lease passes to a new token, ARGV[5], the chained job's: a retry of the job
# that handed over (RQ re-running it after a failure or a kill) then finds the lease another's, never shares it;
# nor can its keeper's last renewal shorten the claim (it renews only its own token).
# A pause given (KEYS[4]: the next job was to wait it out) that is gone (a person lifted it since the job saw it):
# 2 instead of 1, the next job is to start now.
FINISH_ROUND = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return -1
end
if tonumber(ARGV[2]) > 0 then
  redis.call('LTRIM', KEYS[1], ARGV[2], -1)
end
if redis.call('LLEN', KEYS[1]) > 0 then
  if KEYS[3] then
    redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[3])
    redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
  else
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
  end
  if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 0 then
    return 2
  end
  return 1
end
redis.call('DEL', KEYS[2])
if KEYS[3] then
  redis.call('DEL', KEYS[3])
end
return 0
"""

# KEYS: the list, the lease, [its job key]. ARGV: a new token, lease ms, [the job's id]. Claim the lease for a
# new job when items wait and nobody holds it (the periodic sweep; a lost enqueue): 1 when claimed.
CLAIM = """
if redis.call('LLEN', KEYS[1]) == 0 then
  return 0
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if KEYS[3] then
    redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  end
  return 1
end
return 0
"""

# KEYS: the lease, [its job key: the job starting]. ARGV: the token, lease ms, 1 to take the lease back when
# nobody holds it (0: renew only). 1 when `token` holds the lease for another ARGV[2] ms (a queued claim it
# held is then an ordinary lease); 0 when another token holds it (or, renewing only, when it was released or
# expired).
HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (holder == false and ARGV[3] == '1') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if KEYS[2] then
    redis.call('DEL', KEYS[2])
  end
  return 1
end
return 0
"""

# KEYS: lease and job key, pair after pair. The queued claims among them: {pair number (0-based), token, job
# id} for each, flat.
_QUEUED = """
local out = {}
for i = 1, #KEYS, 2 do
  local job = redis.call('GET', KEYS[i + 1])
  local holder = job and redis.call('GET', KEYS[i])
  if holder then
    out[#out + 1] = (i - 1) / 2
    out[#out + 1] = holder
    out[#out + 1] = job
  end
end
return out
"""

# KEYS: lease and job key, pair after pair. ARGV: queued lease ms, short lease ms, then for each pair the
# claim's token and job id as found, what to do (keep, start, take) and, to take it, a new token and job id.
# Each only while the pair still holds that same queued claim: keep it another queued lease's length (never
# shorter than it is: a claim for a job scheduled later, a flush waiting out a long pause, lasts till then); start:
# make it an ordinary short lease; take: a new queued claim for a new job. Returns the pair numbers (0-based)
# taken.
_SETTLE = """
local taken = {}
for i = 1, #KEYS, 2 do
  local a = 3 + (i - 1) / 2 * 5
  if redis.call('GET', KEYS[i]) == ARGV[a] and redis.call('GET', KEYS[i + 1]) == ARGV[a + 1] then
    local verdict = ARGV[a + 2]
    if verdict == 'keep' then
      if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[1]) then
        redis.call('PEXPIRE', KEYS[i], ARGV[1])
        redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
      end
    elseif verdict == 'start' then
      redis.call('PEXPIRE', KEYS[i], ARGV[2])
      redis.call('DEL', KEYS[i + 1])
    else
      redis.call('SET', KEYS[i], ARGV[a + 3], 'PX', ARGV[1])
      redis.call('SET', KEYS[i + 1], ARGV[a + 4], 'PX', ARGV[1])
      taken[#taken + 1] = (i - 1) / 2
    end
  end
end
return taken
"""


def job_key(lease: str) -> str:
    """Where a queued claim of `lease` names the job it was claimed for."""
    return f"{lease}:job"


class JobFate(StrEnum):
    """What became of the job a queued claim was made for, as RQ knows it."""

    WAITING = "waiting"  # still in the queue (or scheduled, deferred): the claim is kept for it
    STARTED = "started"  # a worker took it: it holds the lease in a moment, or died before it could
    UNSEEN = "unseen"  # RQ has no such job: its enqueue may be on its way still, or was lost with its process
    ENDED = "ended"  # it ended (finished, failed for good, stopped, cancelled) without holding the lease
    # Scheduled, and long past its time: no RQ scheduler is moving it to its queue (killed with its worker, and
    # not started again until a worker's maintenance, minutes later). It may run late; the lease is not kept.
    STRANDED = "stranded"


# Started or unseen, the claim becomes the short lease: it is the job's from its start, else it lapses as a dead
# holder's does and the sweep claims it again. Ended or stranded, nobody will work for it (soon): taken over at
# once (a stranded job run late then finds the lease another's).
_VERDICTS = {JobFate.WAITING: "keep", JobFate.STARTED: "start", JobFate.UNSEEN: "start", JobFate.ENDED: "take",
             JobFate.STRANDED: "take"}


@dataclass(frozen=True)
class QueuedClaim:
    """A lease claimed for a job that has not started on it yet: which of the leases asked about (`index`), the
    claim's token and its job's id."""

    index: int
    token: str
    job: str


class QueuedClaims:
    """The sweep's side of queued claims: finds them among some leases and settles each by its job's fate."""

    def __init__(self, r: redis.Redis, queued_ms: int, lease_ms: int):
        self.queued_ms, self.lease_ms = queued_ms, lease_ms
        self._queued = r.register_script(_QUEUED)
        self._settle = r.register_script(_SETTLE)

    def find(self, leases: list[str]) -> list[QueuedClaim]:
        """The queued claims among `leases` (one round trip)."""
        flat = self._queued(keys=[k for lease in leases for k in (lease, job_key(lease))])
        return [QueuedClaim(int(flat[i]), _text(flat[i + 1]), _text(flat[i + 2])) for i in range(0, len(flat), 3)]

    def settle(self, leases: list[str], claims: list[QueuedClaim], fates: list[JobFate],
               new_job: Callable[[], str]) -> list[QueuedClaim]:
        """Keep, shorten or take over each of `claims` (found among `leases`) by its job's fate, each only if
        it is still the same claim; the new claims taken over (a new token and job each), for new jobs to be
        started with."""
        if not claims:
            return []
        fresh = [QueuedClaim(c.index, secrets.token_hex(8), new_job()) for c in claims]
        keys = [k for c in claims for k in (leases[c.index], job_key(leases[c.index]))]
        args: list[str | int] = [self.queued_ms, self.lease_ms]
        for claim, fate, new in zip(claims, fates, fresh, strict=True):
            args += [claim.token, claim.job, _VERDICTS[fate], new.token, new.job]
        taken = {int(n) for n in self._settle(keys=keys, args=args)}
        return [new for n, new in enumerate(fresh) if n in taken]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LeaseKeeper:
    """Renews a lease every third of its length from a daemon thread while a job works under it.

    The lease can then be short: it lapses within `lease_ms` of the process dying (SIGKILL, a lost machine),
    where a fixed long lease would keep everyone else waiting for it. The thread only renews while the lease
    is still this token's (never takes it back once lost or released), so renewing cannot create a second
    holder. `lost` turns true when a renewal finds another holder, or cannot reach Redis for a whole lease
    length: from then on another job may be working on the same list.
    """

    def __init__(self, r: redis.Redis, key: str, token: str, lease_ms: int, queued: bool = False):
        self.r, self.key, self.token, self.lease_ms = r, key, token, lease_ms
        self.queued = queued  # the lease may be a queued claim (`job_key`), which holding it ends
        self._hold = r.register_script(HOLD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def hold(self, take_if_free: bool = True) -> bool:
        """Hold the lease for another `lease_ms` (taking it when nobody holds it, unless told not to): how a job
        starts under it, a queued claim of it becoming the short lease."""
        keys = [self.key, job_key(self.key)] if self.queued else [self.key]
        return bool(self._hold(keys=keys, args=[self.token, self.lease_ms, 1 if take_if_free else 0]))

    def _renewed(self) -> bool:
        return bool(self._hold(keys=[self.key], args=[self.token, self.lease_ms, 0]))

    def __enter__(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._renew, name=f"lease {self.key}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _renew(self) -> None:
        every = self.lease_ms / 3000
        failing = 0.0  # seconds of renewals that could not reach Redis, in a row
        while not self._stop.wait(every):
            try:
                held = self._renewed()
            except (redis.ConnectionError, redis.TimeoutError):
                failing += every
                if failing * 1000 >= self.lease_ms and not self.lost:
                    self.lost = True
                    log.warning("lease %s may have lapsed: Redis unreachable while renewing", self.key)
                continue
            failing = 0.0
            if not held:
                self.lost = True
                log.warning("lease %s is no longer this job's: another may be working on its list", self.key)
                return
