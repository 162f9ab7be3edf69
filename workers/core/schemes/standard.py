"""The Standard Webhooks family: `standard-webhooks` and schemes that differ from it only in header names.

They sign `{id}.{timestamp}.{body}` with HMAC-SHA256 keyed by a base64 `whsec_` secret, and send one or more
space-separated `v1,<base64>` signatures. Pure: the replay window is checked against the `now` passed in.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

import standardwebhooks

from workers.core.schemes.base import Verifier, Verify
from workers.core.schemes.common import check_timestamp
from workers.errors import SignatureInvalid


def standard_family(id_header: str, timestamp_header: str, signature_header: str) -> Verifier:
    """A verifier for a Standard Webhooks style scheme that uses these three header names."""

    def verify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
        msg_id = headers.get(id_header)
        stamp = headers.get(timestamp_header)
        signature = headers.get(signature_header)
        if not (msg_id and stamp and signature):
            raise SignatureInvalid(f"missing {id_header}, {timestamp_header} or {signature_header}")
        # The library checks a fixed 5-minute window against the real clock; we check ours against `now`
        # first, so the replay window is testable and configurable.
        check_timestamp(stamp, now, window)
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
        raise SignatureInvalid(f"no {signature_header} matched")

    return verify


def _as_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


standard_webhooks = standard_family("webhook-id", "webhook-timestamp", "webhook-signature")
# Svix is Standard Webhooks under svix-* names (its library maps svix-id/-timestamp/-signature onto webhook-*).
svix = standard_family("svix-id", "svix-timestamp", "svix-signature")
