"""The composition point: builds, once per process, the settings, Redis clients and loaded configuration.

Web (`webhooks.create_app`), RQ jobs and the CLI get their collaborators here; nothing else wires parts together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from workers.clicksend.client import ClickSendClient
from workers.store import Store
from workers.wiring import pipeline
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import Settings


@dataclass
class Runtime:
    """Everything a process shares: settings, the store, RQ's connection and the rules directory."""

    settings: Settings
    store: Store
    rq_connection: redis.Redis
    rules: RulesDir
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hookline"))
    _client: ClickSendClient | None = None

    @property
    def client(self) -> ClickSendClient:
        """The ClickSend client the settings describe (built on first use: web processes never need it)."""
        if self._client is None:
            self._client = ClickSendClient.from_settings(self.settings)
        return self._client

    def kick(self, channel: str) -> bool:
        """Start a flush of `channel`'s outbox unless one is already pending or running."""
        token = self.store.outbox.claim_flush(channel)
        if token:
            pipeline.enqueue_flush(self.rq_connection, channel, token)
        return token is not None

    def schedule_fire(self, message_id: str, at: float) -> None:
        """Queue a scheduled message at Unix time `at` (RQ's scheduler; the due sweep backs it up)."""
        pipeline.schedule_fire(self.rq_connection, message_id, datetime.fromtimestamp(at, tz=UTC))

    def schedule_reconcile(self, channel: str, message_ids: list[str], at: float) -> None:
        """Reconcile unknown outcomes at Unix time `at` (the recovery job backs it up)."""
        pipeline.enqueue_reconcile(self.rq_connection, channel, message_ids, datetime.fromtimestamp(at, tz=UTC))

    @classmethod
    def build(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Runtime:
        """Connect to Redis and load the rules directory (a bad directory is reported, not fatal).

        `environ` resolves `${VAR}` references in the rules directory (default `os.environ`).
        """
        if not logging.getLogger().handlers:
            logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("hookline").setLevel(settings.log_level)
        store = Store.from_url(settings.redis_url, settings.message_ttl)
        rq_connection = redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
        rules = RulesDir(settings.rules_dir, settings, environ)
        rules.reload()
        return cls(settings=settings, store=store, rq_connection=rq_connection, rules=rules)


_lock = threading.Lock()
_current: Runtime | None = None


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime.build(Settings.from_env())
        return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Install (or clear) this process's runtime: for tests and in-process workers."""
    global _current
    with _lock:
        _current = runtime
