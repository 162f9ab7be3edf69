"""Pieces every verifier shares: HMAC, constant-time matching over rotated secrets, replay window, decoding.

Pure: works on bytes, strings and the `now` it is given; never reads the clock. Failures raise SignatureInvalid
with a log-only detail (the client always gets the same generic message).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from workers.errors import SignatureInvalid


def hmac_sha256(secret: str, message: bytes) -> bytes:
    """The HMAC-SHA256 of `message` keyed by the UTF-8 bytes of `secret`."""
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def any_secret_matches(secrets: tuple[str, ...], message: bytes, given: list[bytes]) -> bool:
    """Whether any secret's HMAC of `message` equals any of the `given` signatures, compared in constant time."""
    # Every secret (rotation) against every signature offered; no early exit that would leak which matched.
    ok = False
    for secret in secrets:
        expected = hmac_sha256(secret, message)
        for candidate in given:
            ok |= hmac.compare_digest(expected, candidate)
    return ok


def any_equal(given: str, secrets: tuple[str, ...]) -> bool:
    """Whether `given` equals any of `secrets`, compared in constant time (tokens and passwords)."""
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(given.encode(), secret.encode())
    return ok


def check_timestamp(raw: str | None, now: float, window: float) -> int:
    """The Unix timestamp in `raw`; raises unless it is within `window` seconds of `now`, either way."""
    if not raw:
        raise SignatureInvalid("missing timestamp")
    try:
        ts = int(raw.strip())
    except ValueError:
        raise SignatureInvalid("timestamp is not an integer") from None
    if abs(now - ts) > window:
        raise SignatureInvalid(f"timestamp outside the {window:.0f}s window")
    return ts


def decode(value: str, encoding: str) -> bytes:
    """A signature's bytes from its `hex` or `base64` text; raises SignatureInvalid when it is neither."""
    try:
        if encoding == "hex":
            return bytes.fromhex(value.strip())
        return base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise SignatureInvalid(f"signature is not valid {encoding}") from None
