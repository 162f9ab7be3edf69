"""The account's stored templates for rules that name one (`template: clicksend:<id or name>`): fetched from
ClickSend, kept in Redis for every worker, and fetched again once the refresh interval
(HOOKLINE_TEMPLATE_REFRESH) has passed; the clock is the caller's `now`.

Owns when to fetch; fetching is `clicksend/templates.py`'s, the Redis record `store/templates.py`'s, compiling
and rendering the core's (`core/storedtemplates.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from jinja2.sandbox import SandboxedEnvironment

from workers.clicksend.client import ClickSendClient
from workers.clicksend.templates import fetch_templates
from workers.core.storedtemplates import Snapshot, StoredTemplate, compile_snapshot
from workers.errors import ConfigError, ProviderError
from workers.store.templates import TemplateRecords

log = logging.getLogger("hookline.templates")


class StoredTemplateCache:
    """The stored templates to render with, as of the last fetch, and that fetch."""

    def __init__(self, records: TemplateRecords, client: Callable[[], ClickSendClient], refresh: float,
                 env: SandboxedEnvironment) -> None:
        self.records = records
        self.client = client
        self.refresh = refresh
        self.env = env
        self._compiled: Snapshot | None = None  # this process's compiled copy of the last snapshot it read

    def snapshot(self, now: float) -> Snapshot | None:
        """The templates at `now`: the shared copy while younger than the refresh interval, else fetched again.

        A fetch that fails keeps the copy there is for another interval (logged). With no copy yet its error is
        raised, so the events wait and are processed again rather than failing for an outage. None when there
        is no ClickSend to ask (no credentials and no simulator URL): the messages then fail, saying so.
        """
        saved = self.records.load()
        if saved is not None and now - saved[1] < self.refresh:
            return self._compile(saved[0])
        try:
            return self.fetch(now)
        except ConfigError:
            return None
        except ProviderError as exc:
            if saved is None:
                raise
            log.warning("stored templates not fetched again (%s); using the copy of %.0f s ago for another %.0f s",
                        exc, now - saved[1], self.refresh)
            self.records.save(saved[0], now)
            return self._compile(saved[0])

    def fetch(self, now: float) -> Snapshot:
        """Fetch the templates now and share them (the rules' load check wants the account as it is).

        Raises ConfigError when there is no ClickSend to ask, and the client's errors.
        """
        rows = fetch_templates(self.client())
        self.records.save(rows, now)
        return self._compile(rows)

    def _compile(self, rows: tuple[StoredTemplate, ...]) -> Snapshot:
        if self._compiled is None or tuple(c.template for c in self._compiled.templates) != rows:
            self._compiled = compile_snapshot(self.env, rows)
        return self._compiled
