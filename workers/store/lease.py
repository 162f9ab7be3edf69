"""The lease that lets one job at a time work through a Redis list (the event drain, each outbox's flush).

Owns the Lua that ends one round of such a job; the lists and lease keys are the callers'.
"""

from __future__ import annotations

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
