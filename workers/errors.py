"""Hookline's one exception tree.

Owns every exception Hookline raises on purpose; errors carry their meaning as attributes, not strings.
"""

from __future__ import annotations

from dataclasses import dataclass


class HooklineError(Exception):
    """Root of every error Hookline raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration file: `file: item: field: problem`."""

    file: str
    item: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where, self.item, self.field, self.message]
        return ": ".join(p for p in parts if p)


class ConfigError(HooklineError):
    """Configuration (environment, sources, rules, policies) is invalid; carries every problem at once."""

    def __init__(self, problems: list[Problem] | list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreUnavailable(HooklineError):
    """Redis could not be reached; nothing was written."""


# --- ingest -----------------------------------------------------------------------------------------


@dataclass
class IngestError(HooklineError):
    """A webhook request was refused; `status` and `code` are what the HTTP edge answers."""

    message: str
    status: int = 400
    code: str = "bad_request"

    def __post_init__(self) -> None:
        super().__init__(self.message)


class SignatureInvalid(IngestError):
    """Signature missing, wrong, or its timestamp outside the replay window (never says which)."""

    def __init__(self, detail: str = "") -> None:
        # `detail` is for logs only; the client always gets the same message.
        self.detail = detail
        super().__init__("signature verification failed", 401, "unauthorized")


class PayloadInvalid(IngestError):
    """The body parsed but does not satisfy the source's declared payload schema."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message, 422, "schema_mismatch")


# --- rendering and rules ---------------------------------------------------------------------------


class RenderError(HooklineError):
    """A template could not be rendered for one message (missing field, bad value)."""


# --- provider --------------------------------------------------------------------------------------


@dataclass
class ProviderError(HooklineError):
    """ClickSend (or the gateway) refused or failed a call. The subclass says what to do about it."""

    message: str
    status: int | None = None
    response_code: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass
class RateLimited(ProviderError):
    """HTTP 429: try again after `retry_after` seconds (None when the provider did not say)."""

    retry_after: float | None = None


@dataclass
class ProviderUnavailable(ProviderError):
    """5xx or no usable answer. `outcome_unknown` is true when the request may have been acted on."""

    outcome_unknown: bool = False


class ProviderRejected(ProviderError):
    """4xx other than 401/403/429: the request itself is wrong; retrying it unchanged will not help."""


class AuthenticationFailed(ProviderError):
    """401/403: credentials are wrong or the account is not allowed to do this."""


class InsufficientCredit(ProviderError):
    """The account has no credit left; sending must pause until an operator tops it up."""


__all__ = [
    "AuthenticationFailed",
    "ConfigError",
    "HooklineError",
    "IngestError",
    "InsufficientCredit",
    "PayloadInvalid",
    "Problem",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RateLimited",
    "RenderError",
    "SignatureInvalid",
    "StoreUnavailable",
]
