"""HMAC-SHA256 schemes keyed by the plain shared secret: github, stripe, shopify, calendly, slack, calcom, typeform,
woocommerce, and the generic hmac-sha256.

Each verifier recomputes the HMAC with every configured secret and compares it, in constant time, with every
signature the request offers. Pure: no request objects; timestamps are checked against the `now` passed in.
"""

from __future__ import annotations

from collections.abc import Mapping

from workers.core.schemes.base import Verifier, Verify
from workers.core.schemes.common import any_secret_matches, check_timestamp, decode
from workers.errors import SignatureInvalid


def body_signature(header: str, encoding: str, prefix: str = "") -> Verifier:
    """A verifier for `<header>: <prefix><signature of the raw body>` (no timestamp, one signature)."""

    def verify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
        raw = headers.get(header, "")
        if not raw or not raw.startswith(prefix):
            raise SignatureInvalid(f"missing or malformed {header}")
        if not any_secret_matches(spec.secrets, body, [decode(raw[len(prefix):], encoding)]):
            raise SignatureInvalid(f"{header} did not match")

    return verify


def timestamp_and_v1(header: str) -> Verifier:
    """A verifier for `<header>: t=<unix>,v1=<hex>[,v1=<hex>…]` signing `<t>.<body>` (Stripe's layout)."""

    def verify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
        stamp, signatures = None, []
        for item in headers.get(header, "").split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                stamp = value
            elif key == "v1":
                signatures.append(decode(value, "hex"))
        if stamp is None or not signatures:
            raise SignatureInvalid(f"missing or malformed {header}")
        check_timestamp(stamp, now, window)
        if not any_secret_matches(spec.secrets, stamp.encode() + b"." + body, signatures):
            raise SignatureInvalid(f"{header} did not match")

    return verify


def slack(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """Slack's v0 signing: `X-Slack-Signature: v0=<hex of "v0:<X-Slack-Request-Timestamp>:<body>">`."""
    raw = headers.get("X-Slack-Signature", "")
    if not raw.startswith("v0=") or len(raw) == len("v0="):
        raise SignatureInvalid("missing or malformed X-Slack-Signature")
    stamp = headers.get("X-Slack-Request-Timestamp")
    check_timestamp(stamp, now, window)
    # The timestamp is signed exactly as sent, as Slack's own SignatureVerifier does.
    message = f"v0:{stamp}:".encode() + body
    if not any_secret_matches(spec.secrets, message, [decode(raw[len("v0="):], "hex")]):
        raise SignatureInvalid("X-Slack-Signature did not match")


def configured(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """The generic `hmac-sha256` scheme: header, encoding, prefix and optional timestamp header from config.

    The header may hold several comma-separated `<prefix><signature>` items, any one matching being enough:
    PagerDuty sends `v1=<old>,v1=<new>` while a key is rotated.
    """
    assert spec.header is not None  # enforced by the config checks
    offered = _prefixed(headers.get(spec.header, ""), spec.prefix)
    if not offered:
        raise SignatureInvalid(f"missing or malformed {spec.header}")
    message = body
    if spec.timestamp_header:
        stamp = headers.get(spec.timestamp_header)
        check_timestamp(stamp, now, window)
        message = f"{stamp}.".encode() + body
    if not any_secret_matches(spec.secrets, message, [decode(value, spec.encoding) for value in offered]):
        raise SignatureInvalid(f"{spec.header} did not match")


def _prefixed(raw: str, prefix: str) -> list[str]:
    # Hex and base64 never contain a comma, so splitting on it cannot cut a signature in two. Items with
    # another prefix (a future `v2=`) are skipped, as PagerDuty's documentation says to.
    items = (item.strip() for item in raw.split(","))
    return [item[len(prefix):] for item in items if item.startswith(prefix) and len(item) > len(prefix)]


github = body_signature("X-Hub-Signature-256", "hex", prefix="sha256=")
shopify = body_signature("X-Shopify-Hmac-Sha256", "base64")
# Cal.com's sender (packages/features/webhooks/lib/sendPayload.ts): hex HMAC of the body, no prefix, no timestamp.
calcom = body_signature("X-Cal-Signature-256", "hex")
# Typeform: "sha256=" and the base64 (not hex) HMAC of the body, keyed by the webhook's secret; no timestamp.
typeform = body_signature("Typeform-Signature", "base64", prefix="sha256=")
# WooCommerce (WC_Webhook::generate_signature): base64 HMAC-SHA256 of the body, keyed by the webhook's secret.
woocommerce = body_signature("X-WC-Webhook-Signature", "base64")
stripe = timestamp_and_v1("Stripe-Signature")
# developer.calendly.com "Webhook Signatures": the same t=/v1= layout over "<t>.<body>", keyed by the signing key.
calendly = timestamp_and_v1("Calendly-Webhook-Signature")
