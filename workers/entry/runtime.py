"""The workers' composition root: builds, once per process, the settings, Redis clients, the loaded rules and
the ClickSend client, and hands each flow step the collaborators it uses.

Only entry points (RQ job shells, cron, the worker class, the CLI) import this; the web edge builds its own
smaller context (`webhooks.context`) and never sees a ClickSend client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

from workers.clicksend.client import Call, ClickSendClient, Observer
from workers.clicksend.facts import CachedFacts
from workers.core.templates import environment
from workers.errors import ConfigError, StoreUnavailable
from workers.flow.admission import Admission
from workers.flow.approvals import Approvals
from workers.flow.feedback import Feedback
from workers.flow.origin import CallbackSender, Notifier
from workers.flow.processing import Processing
from workers.flow.sender import Sender
from workers.flow.storedtemplates import StoredTemplateCache
from workers.store import Store
from workers.wiring import logs
from workers.wiring.connections import open_store, rq_connection
from workers.wiring.pipeline import Enqueuer
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
    _templates: StoredTemplateCache | None = None

    @property
    def client(self) -> ClickSendClient:
        """The ClickSend client the settings describe (built on first use: web processes never need it)."""
        if self._client is None:
            self._client = clicksend_client(self.settings, call_counter(self.store))
        return self._client

    @property
    def templates(self) -> StoredTemplateCache:
        """The account's stored templates, shared through Redis, fetched on this runtime's client."""
        if self._templates is None:
            self._templates = StoredTemplateCache(self.store.templates, lambda: self.client,
                                                  self.settings.template_refresh,
                                                  environment(self.settings.timezone, self.settings.default_region))
        return self._templates

    @property
    def enqueuer(self) -> Enqueuer:
        """The one way jobs are started."""
        return Enqueuer(self.rq_connection, self.store.outbox)

    # The flow steps, built from the current parts on each use (cheap), so a runtime whose rules or settings
    # change (a test, a reload) never hands out a step holding the old ones.

    @property
    def notifier(self) -> Notifier:
        return Notifier(self.store, self.rules, self.enqueuer)

    @property
    def admission(self) -> Admission:
        return Admission(self.store, self.rules, self.settings, lambda: self.client)

    @property
    def processing(self) -> Processing:
        return Processing(self.store, self.rules, self.settings, self.enqueuer, self.admission, self.notifier,
                          self.templates)

    @property
    def approvals(self) -> Approvals:
        return Approvals(self.store, self.rules, self.notifier)

    @property
    def feedback(self) -> Feedback:
        return Feedback(self.store, lambda: self.client, self.settings, self.notifier)

    def sender(self, client: ClickSendClient | None = None) -> Sender:
        """The sender, on this runtime's ClickSend client unless another is given (tests, benchmarks)."""
        return Sender(self.store, client or self.client, self.settings, self.enqueuer, self.admission,
                      self.notifier)

    def callback_sender(self) -> CallbackSender:
        """A callback sender with its own HTTP sessions."""
        return CallbackSender(self.store, self.rules, self.enqueuer)

    @classmethod
    def build(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Runtime:
        """Connect to Redis and load the rules directory (a bad directory is reported, not fatal).

        `environ` resolves `${VAR}` references in the rules directory (default `os.environ`).
        """
        logs.configure(settings)
        store = open_store(settings)
        account = CachedFacts(lambda: clicksend_client(settings)) if settings.provider_mode != "simulated" else None
        rules = RulesDir(settings.rules_dir, settings, environ, account)
        runtime = cls(settings=settings, store=store, rq_connection=rq_connection(settings), rules=rules)
        if account is not None:  # with credentials, a missing stored template is a load error too
            rules.stored = lambda: runtime.templates.fetch(time.time())
        rules.reload()
        return runtime


def call_counter(store: Store) -> Observer:
    """The ClickSend client's observer: every call counted in Redis by endpoint and status, with its latency.
    A Redis outage loses that count (logged), never the call or its outcome."""

    def observe(call: Call) -> None:
        try:
            store.counters.count_call(f"{call.method} {call.endpoint}", call.status, call.seconds)
        except (StoreUnavailable, redis.RedisError) as exc:  # READONLY during a failover, OOM…
            logging.getLogger("hookline.metrics").warning("ClickSend call not counted: %s", exc)

    return observe


def clicksend_client(settings: Settings, observer: Observer | None = None) -> ClickSendClient:
    """The client the settings describe: direct, through Maton, or the simulator at CLICKSEND_BASE_URL;
    `observer` is told of every call.

    Raises ConfigError when there is nowhere to send: no credentials and no simulator URL.
    """
    url = settings.provider_base_url
    if not url:
        raise ConfigError(["no ClickSend base URL: set credentials, or CLICKSEND_BASE_URL for the simulator"])
    timeout = (5.0, settings.clicksend_timeout)
    if settings.provider_mode == "maton":
        return ClickSendClient(url, bearer=settings.maton_api_key, connection=settings.maton_connection,
                               timeout=timeout, observer=observer)
    return ClickSendClient(url, username=settings.clicksend_username or "simulator",
                           api_key=settings.clicksend_api_key or "simulator", timeout=timeout, observer=observer)


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
