"""Hookline's one exception tree.

Owns every exception Hookline raises on purpose; errors carry their meaning as attributes, not strings.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def __init__(self, problems: Sequence[Problem | str]):
        self.problems: list[Problem | str] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConditionError(ConfigError):
    """A rule's `when:` block is malformed: `where` is the path into it (`when.any[0].payload.x`), `problem`
    what is wrong there. Caught by the rule file's loader, which reports it with the file and rule."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__([Problem(file="", item="", field=where, message=problem)])


class StoreUnavailable(HooklineError):
    """Redis could not be reached; nothing was written."""


class NotReplicated(StoreUnavailable):
    """The primary took a write, but fewer replicas than required (HOOKLINE_MIN_REPLICAS) acknowledged it in
    time, so a failover now could lose it: the caller acts as if it had not been done (the edge answers 503 and
    the sender retries; a retry of an event that survived after all is a duplicate)."""

    def __init__(self, required: int, acknowledged: int):
        self.required = required
        self.acknowledged = acknowledged
        super().__init__(f"{acknowledged} of {required} replicas acknowledged the write in time")


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


class BadJSON(IngestError):
    """The body is not JSON Hookline accepts; `reason` says why and, where it can, where (syntax, encoding,
    nesting depth, NaN or Infinity, a key repeated in one object, a lone surrogate)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"body is not valid JSON: {reason}", 400, "bad_json")


class BadForm(IngestError):
    """A form-encoded body (a source whose provider posts forms) that cannot be read: `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"body is not a valid form: {reason}", 400, "bad_form")


class PayloadInvalid(IngestError):
    """The body parsed but does not satisfy the source's declared payload schema (or has no event type)."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message, 422, "schema_mismatch")


class EventTypeMissing(PayloadInvalid):
    """The body parsed, but the event type is not where the source reads it from; `errors` says where."""

    def __init__(self, where: str) -> None:
        super().__init__("event type not found", [where])


# --- rendering and rules ---------------------------------------------------------------------------


class RenderError(HooklineError):
    """A template could not be rendered for one message (missing field, bad value)."""


# --- outbound calls (callbacks) -------------------------------------------------------------------


class OutboundError(HooklineError):
    """Hookline stopped a call of its own to someone else's server (a callback) before it reached them."""


class DestinationRefused(OutboundError):
    """The destination may not be called: not an http(s) URL, too many redirects, unresolvable, or it
    resolves to an address a source may not reach (private, loopback, link-local). `host` names the host when
    the refusal is about one."""

    def __init__(self, message: str, host: str | None = None) -> None:
        self.host = host
        super().__init__(message)


# --- local tools ----------------------------------------------------------------------------------


class ToolError(HooklineError):
    """An operator's tool (`hookline rules test`, the private Redis of `hookline up`) could not do its job."""


class DryRunError(ToolError):
    """The event or its source cannot be used for a dry run; the message says what to change."""


class RedisNotStarted(ToolError):
    """No redis-server binary was found, or the one started did not answer. `log_file` is its log, when one
    was started."""

    def __init__(self, message: str, log_file: str | None = None) -> None:
        self.log_file = log_file
        super().__init__(message)


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


class ListUnknown(ProviderRejected):
    """No ClickSend contact list has the id or name a rule or a command gave (or several share the name)."""


class AuthenticationFailed(ProviderError):
    """401/403: credentials are wrong or the account is not allowed to do this."""


class InsufficientCredit(ProviderError):
    """The account has no credit left; sending must pause until an operator tops it up."""


__all__ = [
    "AuthenticationFailed",
    "BadForm",
    "BadJSON",
    "ConditionError",
    "ConfigError",
    "DestinationRefused",
    "DryRunError",
    "EventTypeMissing",
    "HooklineError",
    "IngestError",
    "InsufficientCredit",
    "ListUnknown",
    "OutboundError",
    "PayloadInvalid",
    "Problem",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RateLimited",
    "RedisNotStarted",
    "RenderError",
    "SignatureInvalid",
    "StoreUnavailable",
    "ToolError",
]
