"""Hookline's pure core: models, rules, templates, segments, policy, backoff.

Nothing in this package does I/O: no Redis, HTTP, environment variables, files or clock.
Time is passed in as `now`, randomness as `rand`, the environment as a mapping.
"""
