"""Entry points: RQ job shells, `rq cron` registrations, the worker class and the `hookline` CLI. The only
code that sees the composition root (`workers.entry.runtime`)."""
