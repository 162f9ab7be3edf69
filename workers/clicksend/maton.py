"""Maton's connection API (`https://ctrl.maton.ai/connections`): the connections a Maton key holds, which
`Maton-Connection` picks between when the gateway relays a ClickSend call.

Shapes from Maton's public docs (third-party, fact sheet §1.2): list `{"connections": [...]}`, one
`{"connection": {...}}`. Owns those calls; maps failures onto the exception tree as the ClickSend client does.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from workers.clicksend.client import USER_AGENT
from workers.core.coerce import parse_retry_after
from workers.errors import AuthenticationFailed, ProviderRejected, ProviderUnavailable, RateLimited

MATON_CTRL_URL = "https://ctrl.maton.ai"


class MatonConnections:
    """Calls to Maton's connection API with one API key."""

    def __init__(self, api_key: str, base_url: str = MATON_CTRL_URL, timeout: tuple[float, float] = (5.0, 30.0),
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT,
                                     "Accept": "application/json"})

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"Maton unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or body.get("error") or response.reason or response.status_code)
        if response.status_code in (401, 403):
            raise AuthenticationFailed(f"Maton: {message}", status=response.status_code)
        if response.status_code == 429:
            raise RateLimited(f"Maton: {message}", status=429,
                              retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()))
        if response.status_code >= 500:
            raise ProviderUnavailable(f"Maton: {message}", status=response.status_code)
        if response.status_code >= 400:
            raise ProviderRejected(f"Maton: {message}", status=response.status_code)
        return body

    def list(self, app: str | None = "clicksend", status: str | None = None) -> list[dict[str, Any]]:
        """The key's connections (of `app`, in `status`, when given)."""
        params = {k: v for k, v in (("app", app), ("status", status)) if v}
        return list(self._call("GET", "/connections", params=params).get("connections") or [])

    def get(self, connection_id: str) -> dict[str, Any]:
        """One connection."""
        return dict(self._call("GET", f"/connections/{connection_id}").get("connection") or {})

    def create(self, app: str = "clicksend") -> dict[str, Any]:
        """A new connection; open its `url` to finish it (Maton asks for the ClickSend credentials there)."""
        return dict(self._call("POST", "/connections", json={"app": app}).get("connection") or {})

    def delete(self, connection_id: str) -> None:
        """Delete a connection."""
        self._call("DELETE", f"/connections/{connection_id}")
