"""The lease that lets one job at a time work through a Redis list (each partition's event drain, each outbox's
flush, the pushed receipts), and the keeper that renews a short lease for as long as the job holding it is alive.

Owns the Lua that ends one round of such a job and the renewal of a held lease; the lists and lease keys are
the callers'.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

import redis

log = logging.getLogger("hookline.lease")

# KEYS: the list, the lease. ARGV: the holder's token, items to drop from the head (0: none), lease ms.
# Drop what the round handled (only while still the holder); keep the lease if more waits (1), else
# release it (0); -1 when the lease was lost to another job.
FINISH_ROUND = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return -1
end
if tonumber(ARGV[2]) > 0 then
  redis.call('LTRIM', KEYS[1], ARGV[2], -1)
end
if redis.call('LLEN', KEYS[1]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
redis.call('DEL', KEYS[2])
return 0
"""

# KEYS: the list, the lease. ARGV: a new token, lease ms. Claim the lease for a new job when items wait and
# nobody holds it (the periodic sweep; a lost enqueue): 1 when claimed.
CLAIM = """
if redis.call('LLEN', KEYS[1]) == 0 then
  return 0
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

# KEYS: the lease. ARGV: the token, lease ms, 1 to take the lease back when nobody holds it (0: renew only).
# 1 when `token` holds the lease for another ARGV[2] ms; 0 when another token holds it (or, renewing only,
# when it was released or expired).
HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (holder == false and ARGV[3] == '1') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class LeaseKeeper:
    """Renews a lease every third of its length from a daemon thread while a job works under it.

    The lease can then be short: it lapses within `lease_ms` of the process dying (SIGKILL, a lost machine),
    where a fixed long lease would keep everyone else waiting for it. The thread only renews while the lease
    is still this token's (never takes it back once lost or released), so renewing cannot create a second
    holder. `lost` turns true when a renewal finds another holder, or cannot reach Redis for a whole lease
    length: from then on another job may be working on the same list.
    """

    def __init__(self, r: redis.Redis, key: str, token: str, lease_ms: int):
        self.r, self.key, self.token, self.lease_ms = r, key, token, lease_ms
        self._hold = r.register_script(HOLD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def hold(self, take_if_free: bool = True) -> bool:
        """Hold the lease for another `lease_ms` (taking it when nobody holds it, unless told not to)."""
        return bool(self._hold(keys=[self.key], args=[self.token, self.lease_ms, 1 if take_if_free else 0]))

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
                held = self.hold(take_if_free=False)
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
