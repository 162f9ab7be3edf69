"""Verifiers that compare a shared credential instead of signing the body: `bearer`, `basic`, `gitlab`, `none`.

Pure: reads only the headers it is given; comparisons are constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from workers.core.schemes.base import Verifier, Verify
from workers.core.schemes.common import any_equal
from workers.errors import SignatureInvalid


def bearer(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """`Authorization: Bearer <token>`, the token being one of the secrets."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise SignatureInvalid("missing bearer token")
    if not any_equal(token.strip(), spec.secrets):
        raise SignatureInvalid("bearer token did not match")


def basic(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """`Authorization: Basic <base64 user:password>`, for the configured username and any of the passwords."""
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise SignatureInvalid("missing basic credentials")
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise SignatureInvalid("malformed basic credentials") from None
    user_ok = hmac.compare_digest(user.encode(), (spec.username or "").encode())
    # Both checks always run, so the time taken does not say whether the username was right.
    if not (sep and any_equal(password, spec.secrets) and user_ok):
        raise SignatureInvalid("basic credentials did not match")


def header_token(header: str) -> Verifier:
    """A verifier for a plain shared token sent as `<header>: <token>` (GitLab's `X-Gitlab-Token`)."""

    def verify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
        token = headers.get(header, "")
        if not token:
            raise SignatureInvalid(f"missing {header}")
        if not any_equal(token, spec.secrets):
            raise SignatureInvalid(f"{header} did not match")

    return verify


# GitLab signs nothing: the webhook's "Secret token" comes back verbatim in X-Gitlab-Token.
gitlab = header_token("X-Gitlab-Token")


def none(spec: Verify, body: bytes, headers: Mapping[str, str], now: float, window: float) -> None:
    """Accept every request (the source must say `scheme: none`; loading it logs a warning)."""
    return None
