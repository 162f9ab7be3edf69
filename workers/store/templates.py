"""The account's stored SMS templates as last fetched from ClickSend, kept in Redis so every worker process
(RQ forks one per job) shares one copy and one refresh.

Owns that record; when to fetch again is `flow/storedtemplates.py`'s.
"""

from __future__ import annotations

import json

import redis

from workers.core.storedtemplates import StoredTemplate
from workers.store.keys import STORED_TEMPLATES, available


class TemplateRecords:
    """The last fetched snapshot of the stored templates, with when it was fetched."""

    def __init__(self, r: redis.Redis):
        self.r = r

    def save(self, templates: tuple[StoredTemplate, ...], fetched_at: float) -> None:
        """Keep `templates`, fetched at `fetched_at` (Unix time), in place of the snapshot before."""
        rows = [{"id": t.id, "name": t.name, "body": t.body} for t in templates]
        with available():
            self.r.set(STORED_TEMPLATES, json.dumps({"fetched_at": fetched_at, "templates": rows}))

    def load(self) -> tuple[tuple[StoredTemplate, ...], float] | None:
        """The snapshot and when it was fetched; None before the first fetch."""
        with available():
            raw = self.r.get(STORED_TEMPLATES)
        if raw is None:
            return None
        data = json.loads(raw)
        rows = tuple(StoredTemplate(int(t["id"]), str(t["name"]), str(t["body"])) for t in data["templates"])
        return rows, float(data["fetched_at"])
