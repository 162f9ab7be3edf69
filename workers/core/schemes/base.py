"""What a signature scheme is: the `Verify` settings a source gives, and the `Scheme` entry that checks them.

Owns the types every scheme is made of (`Verify`, `Scheme`, `Defaults`, `Where`) and the config checks schemes
share (needs a secret, needs a header, whsec_ secrets…). Pure: no request objects, no Redis, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import standardwebhooks


@dataclass(frozen=True)
class Verify:
    """How a source's requests are authenticated."""

    scheme: str
    secrets: tuple[str, ...] = ()
    header: str | None = None
    encoding: str = "hex"
    prefix: str = ""
    timestamp_header: str | None = None
    username: str | None = None
    tolerance: float | None = None
    # The public URL the sender signs along with the body (Square, Twilio): what it calls, as configured there.
    url: str | None = None


# (spec, raw body, case-insensitive headers, now, replay window in seconds) -> None, or raise SignatureInvalid.
Verifier = Callable[[Verify, bytes, Mapping[str, str], float, float], None]

# (scheme name, the loaded `verify:` mapping) -> [(field, problem)]; empty when the config is usable.
ConfigCheck = Callable[[str, Mapping[str, Any]], list[tuple[str, str]]]

# Config keys that can hold a scheme's secrets; each scheme reads some of them (`Scheme.secret_keys`).
SECRET_KEYS = ("secret", "secrets", "password")


@dataclass(frozen=True)
class Where:
    """Where a scheme's senders put a value by convention: a request header or a JMESPath path into the body."""

    header: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Defaults:
    """The event id and type a source of this scheme gets when its config does not say."""

    event_id: Where | None = None
    event_type: Where | None = None


@dataclass(frozen=True)
class Scheme:
    """One signature scheme: how to verify a request, what config it needs, and its conventional id/type.

    Every field but `secret_keys` is required, so a new entry has to say all three things.
    """

    name: str
    verifier: Verifier
    checks: tuple[ConfigCheck, ...]
    defaults: Defaults
    # Which config keys hold the secrets handed to the verifier as `Verify.secrets`, in this order.
    secret_keys: tuple[str, ...] = ("secret", "secrets")
    # Whether every request of this scheme carries a signed timestamp, checked against the replay window
    # (HOOKLINE_SIGNATURE_TOLERANCE, or the source's `tolerance:`). hmac-sha256 signs one only when configured.
    signs_timestamp: bool = False

    def config_problems(self, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Every problem with `data` (a loaded `verify:` mapping) for this scheme, as (field, problem)."""
        problems = [problem for check in self.checks for problem in check(self.name, data)]
        if "password" in data and "password" not in self.secret_keys:
            # Nothing would read it: the source would run without the credential its author meant to set.
            problems.append(("password", f"{self.name} takes secret, not password (password is for basic)"))
        return problems

    def secrets_from(self, data: Mapping[str, Any]) -> tuple[str, ...]:
        """The secrets this scheme verifies with, gathered from `data` in `secret_keys` order."""
        return tuple(secret for key in self.secret_keys for secret in data.get(key, ()))


def needs_secret(name: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A shared secret (`secret` or `secrets`) must be given."""
    if "secret" in data or "secrets" in data:
        return []
    return [("secret", f"{name} needs a secret")]


def needs_header(name: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The header that carries the signature must be given (schemes without a fixed header)."""
    if "header" in data:
        return []
    return [("header", f"{name} needs the header that carries the signature")]


def needs_url(name: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The public notification URL must be given: the sender signs it, so it cannot be read from the request."""
    url = data.get("url", "")
    if not url:
        return [("url", f"{name} needs url: the notification URL exactly as configured at the sender")]
    if not url.startswith(("https://", "http://")):
        return [("url", "must be the full URL, starting https://")]
    return []


def needs_credentials(name: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Both `username` and `password` must be given."""
    if "username" in data and "password" in data:
        return []
    return [("password", f"{name} needs username and password")]


def whsec_secrets(name: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every secret is a `whsec_` key: the prefix, then base64 (Standard Webhooks and Svix)."""
    for secret in (*data.get("secret", ()), *data.get("secrets", ())):
        if not secret.startswith("whsec_"):
            return [("secret", f"{name} secrets start with whsec_")]
        try:
            standardwebhooks.Webhook(secret)
        except (ValueError, standardwebhooks.webhooks.EmptyWebhookSecretError):
            return [("secret", "not a valid whsec_ secret (base64 after the prefix)")]
    return []
