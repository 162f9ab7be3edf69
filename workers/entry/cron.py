"""Periodic jobs for `rq cron` (Procfile `cron:`, and `hookline up`).

RQ loads this module by path and reads the registrations; it holds no logic of its own. The registrations
happen as RQ imports it, so the one setting they take, HOOKLINE_POLL_INTERVAL, is read here (through
`Settings.from_env`, which reports a bad value as every process does).
"""

from rq import cron

from workers.entry import jobs
from workers.wiring import pipeline
from workers.wiring.settings import Settings

POLL = max(1, round(Settings.from_env(require_redis=False).poll_interval))

# Every 10 s: with the drain lease lapsing 15 s after a dead holder, pending events wait at most ~25 s for a
# drain even when no new event arrives to claim it (a new event claims it at once).
cron.register(jobs.sweep_pending_events, pipeline.EVENTS_QUEUE, interval=10, result_ttl=60)
cron.register(jobs.fire_due_messages, pipeline.EVENTS_QUEUE, interval=15, result_ttl=60)
cron.register(jobs.recover_sending, pipeline.SEND_QUEUE, interval=POLL, result_ttl=60)
cron.register(jobs.sweep_pushed, pipeline.SEND_QUEUE, interval=10, result_ttl=60)
cron.register(jobs.poll_feedback, pipeline.SEND_QUEUE, interval=POLL, result_ttl=60)
cron.register(jobs.sync_optouts, pipeline.SEND_QUEUE, interval=60, result_ttl=60)
cron.register(jobs.expire_holds, pipeline.EVENTS_QUEUE, interval=60, result_ttl=60)
cron.register(jobs.trim_indexes, pipeline.EVENTS_QUEUE, interval=3600, result_ttl=60)
cron.register(jobs.sweep_callbacks, pipeline.CALLBACKS_QUEUE, interval=60, result_ttl=60)
