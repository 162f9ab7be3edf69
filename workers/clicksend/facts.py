"""The account facts rule validation needs (voice languages with their voices, ClickSend's countries),
fetched from ClickSend and cached for a while, so a reload of the rules directory does not call it each time.

Owns the fetching, the parsing of those two replies and the cache; judging rules with the facts is
`workers.core.accountcheck`'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from workers.clicksend.client import ClickSendClient
from workers.core.accountcheck import AccountFacts

FACTS_TTL = 3600.0  # seconds: languages and countries change rarely; a restart or an hour picks changes up


def fetch_facts(client: ClickSendClient) -> AccountFacts:
    """The facts as ClickSend gives them now (`GET /v3/voice/lang`, `GET /v3/countries`)."""
    voices = {str(row["code"]).lower(): _genders(row.get("gender")) for row in client.voice_languages()
              if row.get("code")}
    countries = frozenset(str(row["code"]).upper() for row in client.countries() if row.get("code"))
    return AccountFacts(voices=voices, countries=countries)


def _genders(value: Any) -> frozenset[str]:
    # ClickSend gives one voice as a string and several as a list.
    items = value if isinstance(value, list) else [value] if value else []
    return frozenset(str(v).lower() for v in items)


class CachedFacts:
    """The facts, fetched on first use and again once `ttl` seconds have passed. Thread-safe."""

    def __init__(self, client: Callable[[], ClickSendClient], ttl: float = FACTS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._facts: tuple[float, AccountFacts] | None = None

    def __call__(self) -> AccountFacts:
        """The cached facts, fetching them when missing or stale (raises the client's errors)."""
        with self._lock:
            now = self.clock()
            if self._facts is None or now - self._facts[0] >= self.ttl:
                self._facts = (now, fetch_facts(self.client()))
            return self._facts[1]
