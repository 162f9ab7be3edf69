"""A thin ClickSend v3 client on `requests`: direct (HTTP basic) or through the Maton gateway (bearer).

Reads the HTTP status, the envelope's `response_code` and every message's own `status`; maps failures onto
the exception tree. It never retries by itself: the sender decides, because a send is not idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import requests

from workers.core.coerce import parse_retry_after, to_decimal, to_int
from workers.errors import (
    AuthenticationFailed,
    InsufficientCredit,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)

USER_AGENT = "Hookline/0.1 (+https://github.com/hookline)"
# Paths by channel, one table per resource (the channel-specific calls sit in their sections below).
SEND_PATHS = {"sms": "/v3/sms/send", "mms": "/v3/mms/send", "voice": "/v3/voice/send"}
PRICE_PATHS = {"sms": "/v3/sms/price", "mms": "/v3/mms/price", "voice": "/v3/voice/price"}
RECEIPT_PATHS = {"sms": "/v3/sms/receipts", "voice": "/v3/voice/receipts"}
HISTORY_PATHS = {"sms": "/v3/sms/history", "mms": "/v3/mms/history", "voice": "/v3/voice/history"}
MAX_PAGE = 100  # ClickSend's largest `limit`: fewest calls per pass


@dataclass(frozen=True)
class MessageResult:
    """One message's entry in a send reply."""

    custom_string: str | None
    status: str
    message_id: str | None = None
    price: Decimal | None = None
    parts: int | None = None
    to: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SendReply:
    """A send (or price) reply: every message's result, and the totals."""

    messages: list[MessageResult]
    total_price: Decimal | None
    currency: str | None
    response_code: str


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint."""

    items: list[dict[str, Any]]
    current_page: int
    last_page: int
    total: int


@dataclass(frozen=True)
class Call:
    """One HTTP call as the observer sees it: the path template (ids shown as {id}), the HTTP status or what
    went wrong before one (`connect_timeout`, `connection_error`, `timeout`), and how long it took."""

    method: str
    endpoint: str
    status: str
    seconds: float


Observer = Callable[[Call], None]
"""Told of every call after it finished (metrics); must not raise. The client does not know what it records."""


class FetchPage(Protocol):
    """One page of a list endpoint by its number, e.g. `partial(client.receipts, "sms")`."""

    def __call__(self, *, page: int) -> Page: ...


def iter_pages(fetch: FetchPage) -> Iterator[Page]:
    """Every page of a list endpoint: `fetch(page=1)`, `fetch(page=2)`, … until `current_page` reaches
    `last_page`. Also stops at the latest reply's `last_page`, so a server that keeps answering page 1
    cannot keep us paging forever.
    """
    number = 1
    while True:
        page = fetch(page=number)
        yield page
        if page.current_page >= page.last_page or number >= page.last_page:
            return
        number += 1


class ClickSendClient:
    """Calls to one ClickSend account. One requests.Session; explicit connect and read timeouts."""

    def __init__(self, base_url: str, *, username: str | None = None, api_key: str | None = None,
                 bearer: str | None = None, connection: str | None = None,
                 timeout: tuple[float, float] = (5.0, 30.0), session: requests.Session | None = None,
                 observer: Observer | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.observer = observer
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        if bearer:
            self.session.headers["Authorization"] = f"Bearer {bearer}"
            if connection:
                self.session.headers["Maton-Connection"] = connection
        elif username and api_key:
            self.session.auth = (username, api_key)

    # --- transport ----------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                idempotent: bool = True, endpoint: str | None = None) -> dict[str, Any]:
        """One call; returns the envelope's `data`. `idempotent=False` marks sends: their failures may be unknown.
        `endpoint` names the path for the observer when it holds an id."""
        url = f"{self.base_url}{path}"
        started, status = time.monotonic(), "connection_error"
        try:
            response = self.session.request(method, url, json=json, params=params, timeout=self.timeout)
            status = str(response.status_code)
        except requests.ConnectTimeout as exc:
            status = "connect_timeout"
            # Never connected: the request was not written, so nothing can have happened.
            raise ProviderUnavailable(f"connect timeout: {exc}", outcome_unknown=False) from exc
        except requests.ConnectionError as exc:
            # Refused before sending is safe; a reset or timeout after writing may have been acted on.
            unknown = not idempotent and not _refused(exc)
            raise ProviderUnavailable(f"connection failed: {exc}", outcome_unknown=unknown) from exc
        except requests.Timeout as exc:
            status = "timeout"
            raise ProviderUnavailable(f"read timeout: {exc}", outcome_unknown=not idempotent) from exc
        finally:
            if self.observer is not None:
                self.observer(Call(method, endpoint or path, status, time.monotonic() - started))
        return self._read(response, idempotent)

    def _read(self, response: requests.Response, idempotent: bool) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        envelope = body if isinstance(body, dict) else {}
        code = str(envelope.get("response_code") or "")
        message = str(envelope.get("response_msg") or response.reason or f"HTTP {status}")
        if status == 429:
            raise RateLimited(message, status=status, response_code=code or "TOO_MANY_REQUESTS",
                              retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()))
        if status >= 500:
            raise ProviderUnavailable(message, status=status, response_code=code or None,
                                      outcome_unknown=not idempotent)
        if status in (401, 403):
            raise AuthenticationFailed(message, status=status, response_code=code or None)
        if code == "INSUFFICIENT_CREDIT":
            raise InsufficientCredit(message, status=status, response_code=code)
        if status >= 400:
            data = envelope.get("data")
            if isinstance(data, dict) and data:  # field errors, as in ClickSend's documented 400
                message += " (" + "; ".join(f"{k}: {v}" for k, v in data.items())[:300] + ")"
            raise ProviderRejected(message, status=status, response_code=code or None)
        if body is None or not isinstance(body, dict):
            # A 2xx whose body we cannot read: for a send we do not know what happened.
            raise ProviderUnavailable("unreadable reply", status=status, outcome_unknown=not idempotent)
        data = body.get("data")
        return data if isinstance(data, dict) else {"items": data} if isinstance(data, list) else {}

    # --- account ----------------------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        """The account (balance as ClickSend gives it, a decimal string)."""
        return self.request("GET", "/v3/account")

    def balance(self) -> Decimal | None:
        """The account balance."""
        return to_decimal(self.account().get("balance"))

    # --- sending: SMS, MMS and voice share one send and one price shape ------------------------------

    def send(self, channel: str, body: dict[str, Any]) -> SendReply:
        """POST a prepared `/v3/{channel}/send` body; never retried here (not idempotent)."""
        return _send_reply(self.request("POST", SEND_PATHS[channel], json=body, idempotent=False))

    def price(self, channel: str, body: dict[str, Any]) -> SendReply:
        """What a send would cost; sends nothing."""
        return _send_reply(self.request("POST", PRICE_PATHS[channel], json=body))

    # --- sms ----------------------------------------------------------------------------------------

    def cancel_sms(self, message_id: str) -> dict[str, Any]:
        """Cancel a scheduled SMS at ClickSend."""
        return self.cancel("sms", message_id)

    def cancel(self, channel: str, message_id: str) -> dict[str, Any]:
        """Cancel one message scheduled at ClickSend (`sms` or `voice`); ProviderRejected (404) when unknown."""
        return self.request("PUT", f"/v3/{channel}/{message_id}/cancel", endpoint=f"/v3/{channel}/{{id}}/cancel")

    def cancel_all(self, channel: str) -> int:
        """Cancel every message scheduled at ClickSend on `channel` (`sms` or `voice`); how many were."""
        return to_int(self.request("PUT", f"/v3/{channel}/cancel-all").get("count")) or 0

    # --- mms: nothing of its own; it sends and prices through the shared section above ---------------

    # --- voice --------------------------------------------------------------------------------------

    def voice_languages(self) -> list[dict[str, Any]]:
        """Voice languages and their genders."""
        data = self.request("GET", "/v3/voice/lang")
        return list(data.get("items") or data.get("data") or [])

    def cancel_voice(self, message_id: str) -> dict[str, Any]:
        """Cancel a scheduled voice call at ClickSend."""
        return self.cancel("voice", message_id)

    # --- countries ----------------------------------------------------------------------------------

    def countries(self) -> list[dict[str, Any]]:
        """The countries ClickSend knows: `code` (ISO 3166 alpha-2) and `value` (the name)."""
        return list(self.request("GET", "/v3/countries").get("items") or [])

    # --- receipts -----------------------------------------------------------------------------------

    def receipts(self, channel: str = "sms", page: int = 1, limit: int = MAX_PAGE) -> Page:
        """One page of unread delivery receipts."""
        return _page(self.request("GET", RECEIPT_PATHS[channel], params={"page": page, "limit": limit}))

    def receipt(self, message_id: str) -> dict[str, Any]:
        """One SMS receipt, read or not."""
        return self.request("GET", f"/v3/sms/receipts/{message_id}", endpoint="/v3/sms/receipts/{id}")

    def mark_receipts_read(self, channel: str = "sms", date_before: int | None = None) -> None:
        """Mark receipts read (all, or those up to `date_before`)."""
        self.request("PUT", f"/v3/{channel}/receipts-read", json=_clean({"date_before": date_before}))

    # --- inbound ------------------------------------------------------------------------------------

    def inbound(self, page: int = 1, limit: int = MAX_PAGE) -> Page:
        """One page of unread inbound SMS."""
        return _page(self.request("GET", "/v3/sms/inbound", params={"page": page, "limit": limit}))

    def mark_inbound_read(self, date_before: int | None = None) -> None:
        """Mark inbound SMS read (all, or those before `date_before`)."""
        self.request("PUT", "/v3/sms/inbound-read", json=_clean({"date_before": date_before}))

    # --- history ------------------------------------------------------------------------------------

    def history(self, channel: str = "sms", *, date_from: int | None = None, date_to: int | None = None,
                q: str | None = None, page: int = 1, limit: int = MAX_PAGE) -> Page:
        """One page of sent-message history (filter `custom_string` client-side: `q` does not document it)."""
        params = {"page": page, "limit": limit, "date_from": date_from, "date_to": date_to, "q": q}
        return _page(self.request("GET", HISTORY_PATHS[channel], params=_clean(params)))

    # --- any paged list (lists, contacts, templates, sender addresses) --------------------------------

    def page(self, path: str, page: int = 1, limit: int = MAX_PAGE) -> Page:
        """One page of the list endpoint at `path`, e.g. `/v3/sms/templates`."""
        return _page(self.request("GET", path, params={"page": page, "limit": limit}))

    # --- lists and contacts -------------------------------------------------------------------------

    def lists(self, page: int = 1, limit: int = MAX_PAGE) -> Page:
        """Contact lists."""
        return _page(self.request("GET", "/v3/lists", params={"page": page, "limit": limit}))

    def list_contacts(self, list_id: int, page: int = 1, limit: int = MAX_PAGE) -> Page:
        """One page of a list's contacts."""
        return _page(self.request("GET", f"/v3/lists/{list_id}/contacts", params={"page": page, "limit": limit},
                                  endpoint="/v3/lists/{id}/contacts"))

    def add_contact(self, list_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """A new contact on a list (ClickSend does not look for an existing one with that number)."""
        return self.request("POST", f"/v3/lists/{list_id}/contacts", json=fields, idempotent=False,
                            endpoint="/v3/lists/{id}/contacts")

    def delete_contact(self, list_id: int, contact_id: int) -> None:
        """Remove a contact from a list."""
        self.request("DELETE", f"/v3/lists/{list_id}/contacts/{contact_id}", endpoint="/v3/lists/{id}/contacts/{id}")


def _refused(exc: requests.ConnectionError) -> bool:
    text = str(exc)
    return "Connection refused" in text or "Failed to establish a new connection" in text


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _page(data: dict[str, Any]) -> Page:
    items = data.get("data")
    if items is None:
        items = data.get("items") or []
    return Page(items=list(items), current_page=to_int(data.get("current_page")) or 1,
                last_page=to_int(data.get("last_page")) or 1, total=to_int(data.get("total")) or len(items))


def _send_reply(data: dict[str, Any]) -> SendReply:
    currency = data.get("_currency") or data.get("currency") or {}
    results = []
    for raw in data.get("messages") or []:
        results.append(MessageResult(
            custom_string=raw.get("custom_string") or None,
            status=str(raw.get("status") or "UNKNOWN").upper(),
            message_id=raw.get("message_id") or None,
            price=to_decimal(raw.get("message_price")),
            parts=to_int(raw.get("message_parts")),
            to=raw.get("to"),
            raw=raw,
        ))
    return SendReply(messages=results, total_price=to_decimal(data.get("total_price")),
                     currency=currency.get("currency_name_short") if isinstance(currency, dict) else None,
                     response_code="SUCCESS")
