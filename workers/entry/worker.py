"""The RQ worker class Hookline runs: builds the runtime (settings, clients, rules) once in the parent,
so the work horse forked for each job starts with it instead of loading the rules again."""

from __future__ import annotations

from typing import Any

from rq import Worker

from workers.entry.runtime import get_runtime


class HooklineWorker(Worker):
    """An RQ Worker that prepares Hookline's runtime before it forks (redis-py resets pools after a fork)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        get_runtime()
