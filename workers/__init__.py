"""Hookline's domain and everything that runs in RQ.

Owns the pure core, the Redis store, the jobs and the CLI. Never imports `webhooks`.
"""
