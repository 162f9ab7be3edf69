"""Schemes that sign the notification URL along with the request: `square` and `twilio`.

Both senders put the URL they called into the signed text, so a source names that URL (`url:`, exactly as it is
configured at the sender); it cannot be read back from the request, which a proxy may have rewritten. Pure: no
request objects; works on the raw body and the headers handed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from workers.core.schemes.base import Verify
from workers.core.schemes.common import any_secret_matches, decode
from workers.errors import SignatureInvalid

SQUARE_HEADER = "x-square-hmacsha256-signature"
TWILIO_HEADER = "X-Twilio-Signature"


def square(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """Square: `x-square-hmacsha256-signature: <base64 HMAC-SHA256 of notification URL + raw body>`.

    As Square's own `square.utils.webhooks_helper.verify_signature` computes it, keyed by the subscription's
    signature key. Square signs no timestamp; its `event_id` is the dedupe key.
    """
    assert spec.url is not None  # enforced by the config checks
    raw = headers.get(SQUARE_HEADER, "")
    if not raw:
        raise SignatureInvalid(f"missing {SQUARE_HEADER}")
    if not any_secret_matches(spec.secrets, spec.url.encode() + body, [decode(raw, "base64")]):
        raise SignatureInvalid(f"{SQUARE_HEADER} did not match")


def twilio(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1 of the URL, then each form parameter name+value>`.

    Parameters are sorted by name (and a repeated name's values sorted), as the `twilio` package's
    RequestValidator does; the key is the account's Auth Token. Like that validator, the URL is tried with and
    without its default port, because Twilio's signing has been inconsistent about it. Form bodies only: a JSON
    body is signed through a `bodySHA256` query parameter of the request URL, which a static `url` cannot know.
    """
    assert spec.url is not None  # enforced by the config checks
    raw = headers.get(TWILIO_HEADER, "")
    if not raw:
        raise SignatureInvalid(f"missing {TWILIO_HEADER}")
    given = decode(raw, "base64")
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise SignatureInvalid("form body is not UTF-8") from None
    signed = _form_text(params)
    ok = False
    for url in _port_variants(spec.url):
        message = (url + signed).encode()
        for secret in spec.secrets:  # every secret and URL form, no early exit
            ok |= hmac.compare_digest(hmac.new(secret.encode(), message, hashlib.sha1).digest(), given)
    if not ok:
        raise SignatureInvalid(f"{TWILIO_HEADER} did not match")


def _form_text(params: list[tuple[str, str]]) -> str:
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    return "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def _port_variants(url: str) -> tuple[str, str]:
    """The URL as configured, and with its default port added (or removed, when it names one)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        port = 443 if parts.scheme == "https" else 80
        other = parts._replace(netloc=f"{parts.netloc}:{port}" if host else parts.netloc)
    return url, urlunsplit(other)
