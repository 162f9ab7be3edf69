"""Verification of incoming webhook signatures, one function per scheme.

Pure: takes the raw body, the headers and `now`; never touches the request, Redis or the clock.
Every comparison is constant-time; every failure raises SignatureInvalid with a log-only detail.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import standardwebhooks

from workers.core.sources import Verify
from workers.errors import SignatureInvalid

DEFAULT_TOLERANCE = 300.0


def verify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float,
           tolerance: float = DEFAULT_TOLERANCE) -> None:
    """Raise SignatureInvalid unless `body` and `headers` carry a valid signature for `spec`.

    `headers` must be case-insensitive (werkzeug's Headers is). A per-source tolerance wins over `tolerance`.
    """
    window = spec.tolerance if spec.tolerance is not None else tolerance
    _CHECKS[spec.scheme](spec, body, headers, now, window)


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _any_secret_matches(spec: Verify, message: bytes, given: list[bytes]) -> bool:
    # Every secret (rotation) against every signature offered; no early exit that would leak which matched.
    ok = False
    for secret in spec.secrets:
        expected = _hmac(secret, message)
        for candidate in given:
            ok |= hmac.compare_digest(expected, candidate)
    return ok


def _check_timestamp(raw: str | None, now: float, window: float) -> int:
    if not raw:
        raise SignatureInvalid("missing timestamp")
    try:
        ts = int(raw.strip())
    except ValueError:
        raise SignatureInvalid("timestamp is not an integer") from None
    if abs(now - ts) > window:
        raise SignatureInvalid(f"timestamp outside the {window:.0f}s window")
    return ts


def _decode(value: str, encoding: str) -> bytes:
    try:
        if encoding == "hex":
            return bytes.fromhex(value.strip())
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise SignatureInvalid(f"signature is not valid {encoding}") from None


def _standard_webhooks(spec: Verify, body: bytes, headers: Mapping[str, str], now: float,
                       window: float) -> None:
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not (msg_id and stamp and signature):
        raise SignatureInvalid("missing webhook-id, webhook-timestamp or webhook-signature")
    # The library checks a fixed 5-minute window against the real clock; we check ours against `now`
    # first, so the replay window is testable and configurable.
    _check_timestamp(stamp, now, window)
    for secret in spec.secrets:
        try:
            wh = standardwebhooks.Webhook(secret)
            expected = wh.sign(msg_id, _as_datetime(int(stamp)), body.decode("utf-8", "surrogateescape"))
        except (ValueError, UnicodeError, standardwebhooks.webhooks.EmptyWebhookSecretError):
            continue
        expected_sig = expected.split(",", 1)[1].encode()
        for part in signature.split():
            version, _, value = part.partition(",")
            if version == "v1" and hmac.compare_digest(expected_sig, value.encode()):
                return
    raise SignatureInvalid("no webhook-signature matched")


def _as_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _github(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    raw = headers.get("X-Hub-Signature-256", "")
    if not raw.startswith("sha256="):
        raise SignatureInvalid("missing or malformed X-Hub-Signature-256")
    if not _any_secret_matches(spec, body, [_decode(raw[len("sha256="):], "hex")]):
        raise SignatureInvalid("X-Hub-Signature-256 did not match")


def _stripe(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    raw = headers.get("Stripe-Signature", "")
    stamp, signatures = None, []
    for item in raw.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            signatures.append(_decode(value, "hex"))
    if stamp is None or not signatures:
        raise SignatureInvalid("missing or malformed Stripe-Signature")
    _check_timestamp(stamp, now, window)
    if not _any_secret_matches(spec, stamp.encode() + b"." + body, signatures):
        raise SignatureInvalid("Stripe-Signature did not match")


def _shopify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    raw = headers.get("X-Shopify-Hmac-Sha256")
    if not raw:
        raise SignatureInvalid("missing X-Shopify-Hmac-Sha256")
    if not _any_secret_matches(spec, body, [_decode(raw, "base64")]):
        raise SignatureInvalid("X-Shopify-Hmac-Sha256 did not match")


def _hmac_sha256(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    assert spec.header is not None  # enforced by the schema
    raw = headers.get(spec.header, "")
    if not raw.startswith(spec.prefix) or len(raw) == len(spec.prefix):
        raise SignatureInvalid(f"missing or malformed {spec.header}")
    message = body
    if spec.timestamp_header:
        stamp = headers.get(spec.timestamp_header)
        _check_timestamp(stamp, now, window)
        message = f"{stamp}.".encode() + body
    if not _any_secret_matches(spec, message, [_decode(raw[len(spec.prefix):], spec.encoding)]):
        raise SignatureInvalid(f"{spec.header} did not match")


def _bearer(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise SignatureInvalid("missing bearer token")
    if not _any_equal(token.strip(), spec.secrets):
        raise SignatureInvalid("bearer token did not match")


def _basic(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise SignatureInvalid("missing basic credentials")
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise SignatureInvalid("malformed basic credentials") from None
    user_ok = hmac.compare_digest(user.encode(), (spec.username or "").encode())
    if not (sep and _any_equal(password, spec.secrets) and user_ok):
        raise SignatureInvalid("basic credentials did not match")


def _any_equal(given: str, secrets: tuple[str, ...]) -> bool:
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(given.encode(), secret.encode())
    return ok


def _none(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    return None


_CHECKS: dict[str, Callable[[Verify, bytes, Mapping[str, str], float, float], None]] = {
    "standard-webhooks": _standard_webhooks,
    "github": _github,
    "stripe": _stripe,
    "shopify": _shopify,
    "hmac-sha256": _hmac_sha256,
    "bearer": _bearer,
    "basic": _basic,
    "none": _none,
}
