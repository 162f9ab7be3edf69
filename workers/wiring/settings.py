"""Hookline's runtime settings: one frozen dataclass built from the environment by `Settings.from_env`.

Nothing here reads the environment at import time; callers pass the mapping in (default `os.environ`). This is
the one module that reads Hookline's environment variables, and the `DEFAULT_*` constants below are the one
home of their defaults: code that needs a default without a Settings at hand imports the constant.

It also owns the files `hookline up` leaves under `./.hookline/` (`secrets.env`, `up.env`) and the order in
which a command run beside it reads them (`beside_up`): a `--redis-url` flag, then the environment, then
`up.env`, then `secrets.env`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from workers.core.durations import parse_duration
from workers.core.partitions import MAX_PARTITIONS
from workers.errors import ConfigError
from workers.store.connection import check_url, is_sentinel_url

DIRECT_BASE_URL = "https://rest.clicksend.com"
"""ClickSend's API, used when CLICKSEND_USERNAME and CLICKSEND_API_KEY are set."""

MATON_BASE_URL = "https://api.maton.ai/clicksend"
"""Maton's ClickSend gateway, used when MATON_API_KEY is set."""

DEFAULT_RULES_DIR = "rules"
"""Folder with sources.yaml, rule files and templates (HOOKLINE_RULES_DIR)."""

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest webhook body accepted, in bytes; larger ones get 413 (HOOKLINE_MAX_BODY)."""

DEFAULT_DEDUPE_WINDOW = 24 * 3600.0
"""Seconds a repeated event id is answered as a duplicate (HOOKLINE_DEDUPE_WINDOW)."""

DEFAULT_EVENT_TTL = 7 * 24 * 3600.0
"""Seconds event records are kept; never shorter than the dedupe window (HOOKLINE_EVENT_TTL)."""

DEFAULT_SIGNATURE_TOLERANCE = 300.0
"""Largest clock skew accepted on signed timestamps, in seconds: the replay window (HOOKLINE_SIGNATURE_TOLERANCE)."""

DEFAULT_REGION = "US"
"""Region assumed for phone numbers written without a country code (HOOKLINE_DEFAULT_REGION)."""

DEFAULT_TIMEZONE = "UTC"
"""Zone for naive times in payloads and for daily budgets (HOOKLINE_TIMEZONE)."""

DEFAULT_MESSAGE_TTL = 90 * 24 * 3600.0
"""Seconds a message that reached a final state is kept, with its timeline (HOOKLINE_MESSAGE_TTL)."""

DEFAULT_EVENT_BATCH = 500
"""Events handed to the workers per drain job (HOOKLINE_EVENT_BATCH)."""

DEFAULT_PARTITIONS = 16
"""Partitions of the pending events, each drained by one job at a time (HOOKLINE_PARTITIONS): up to this many
worker processes, on any number of machines, process events at once."""

DEFAULT_SEND_RATE = 5.0
"""ClickSend requests per second across all workers (HOOKLINE_SEND_RATE)."""

MAX_SEND_BATCH = 1000
"""Most messages ClickSend accepts in one call; the ceiling of HOOKLINE_SEND_BATCH."""

DEFAULT_SEND_BATCH = MAX_SEND_BATCH
"""Messages per provider call (HOOKLINE_SEND_BATCH)."""

DEFAULT_TEMPLATE_REFRESH = 300.0
"""Seconds a fetched copy of the account's stored templates (`template: clicksend:…`) is used before it is
fetched again (HOOKLINE_TEMPLATE_REFRESH)."""

DEFAULT_LOG_LEVEL = "INFO"
"""Level of the `hookline` loggers (HOOKLINE_LOG_LEVEL)."""

DEFAULT_HOME = ".hookline"
"""Folder `hookline up` keeps its state in (the private Redis's data, generated secrets, where it runs)."""

SECRETS_FILE = "secrets.env"
"""In the home folder: the development secrets `hookline up` generated (NAME=value lines, mode 600)."""

RUNNING_FILE = "up.env"
"""In the home folder: where a running `hookline up` has its Redis, rules and web server (HOOKLINE_URL);
removed when it stops."""

DEFAULT_LOG_FORMAT = "plain"
"""`plain` lines, or `json`: one JSON object per line (HOOKLINE_LOG_FORMAT)."""

DEFAULT_CLICKSEND_TIMEOUT = 30.0
"""Seconds a ClickSend call waits for its answer before its outcome is unknown (HOOKLINE_CLICKSEND_TIMEOUT); at
most MAX_CLICKSEND_TIMEOUT, so that no call outlasts a flush job (`pipeline.FLUSH_TIMEOUT`) or the sending lease."""

MAX_CLICKSEND_TIMEOUT = 60.0
"""The ceiling of HOOKLINE_CLICKSEND_TIMEOUT."""

DEFAULT_RECONCILE_GRACE = 30.0
"""Seconds an unknown send must stay absent from ClickSend's history, which may lag, before it is sent again
(HOOKLINE_RECONCILE_GRACE)."""

DEFAULT_POLL_INTERVAL = 30.0
"""Seconds between `rq cron`'s polls of ClickSend's receipts and replies and its sweeps for sends whose worker
died (HOOKLINE_POLL_INTERVAL)."""


@dataclass(frozen=True)
class Settings:
    """Everything a Hookline process needs to know about its environment.

    Each field's environment variable is named in `from_env`; its default is the `DEFAULT_*` constant above.
    """

    redis_url: str  # REDIS_URL; "" only when built with require_redis=False and it is unset
    rules_dir: str = DEFAULT_RULES_DIR
    api_token: str | None = None
    receipt_token: str | None = None
    clicksend_username: str | None = None
    clicksend_api_key: str | None = None
    maton_api_key: str | None = None
    maton_connection: str | None = None
    clicksend_base_url: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    dedupe_window: float = DEFAULT_DEDUPE_WINDOW
    event_ttl: float = DEFAULT_EVENT_TTL
    signature_tolerance: float = DEFAULT_SIGNATURE_TOLERANCE
    default_region: str = DEFAULT_REGION
    timezone: str = DEFAULT_TIMEZONE
    message_ttl: float = DEFAULT_MESSAGE_TTL
    event_batch: int = DEFAULT_EVENT_BATCH
    partitions: int = DEFAULT_PARTITIONS
    send_rate: float = DEFAULT_SEND_RATE
    send_batch: int = DEFAULT_SEND_BATCH
    template_refresh: float = DEFAULT_TEMPLATE_REFRESH
    min_replicas: int = 0  # HOOKLINE_MIN_REPLICAS; default 1 when REDIS_URL names a Sentinel-managed Redis
    log_level: str = DEFAULT_LOG_LEVEL
    log_format: str = DEFAULT_LOG_FORMAT
    clicksend_timeout: float = DEFAULT_CLICKSEND_TIMEOUT
    reconcile_grace: float = DEFAULT_RECONCILE_GRACE
    poll_interval: float = DEFAULT_POLL_INTERVAL

    @property
    def provider_mode(self) -> str:
        """`direct`, `maton` or `simulated` (no credentials configured)."""
        if self.clicksend_username and self.clicksend_api_key:
            return "direct"
        if self.maton_api_key:
            return "maton"
        return "simulated"

    @property
    def provider_base_url(self) -> str | None:
        """Base URL of the ClickSend API to talk to (None when simulated and no simulator URL is set)."""
        if self.clicksend_base_url:
            return self.clicksend_base_url.rstrip("/")
        return {"direct": DIRECT_BASE_URL, "maton": MATON_BASE_URL}.get(self.provider_mode)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and `hookline up`)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, require_redis: bool = True) -> Settings:
        """Build settings from `environ` (default `os.environ`), reporting every problem at once.

        `require_redis=False` is for commands that work without Redis (`hookline rules check`, `rules test`):
        an unset REDIS_URL is then no problem and `redis_url` is "" (a malformed one is still reported).
        """
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, Any] = {}

        def get(name: str) -> str | None:
            raw = env.get(name)
            return raw.strip() if raw is not None and raw.strip() else None

        def take(field: str, name: str, convert: Callable[[str], Any] = str) -> None:
            raw = get(name)
            if raw is None:
                return
            try:
                values[field] = convert(raw)
            except (ValueError, TypeError) as exc:
                problems.append(f"{name}: {exc}")

        if get("REDIS_URL") is None and require_redis:
            problems.append("REDIS_URL: not set (e.g. redis://127.0.0.1:6379/0); a command run beside `hookline up` "
                            f"reads it from {DEFAULT_HOME}/{RUNNING_FILE}, or pass --redis-url")
        take("redis_url", "REDIS_URL", _redis_url)
        if is_sentinel_url(values.get("redis_url", "")):
            values["min_replicas"] = 1  # every 202 is on a replica too, so a failover keeps it
        take("rules_dir", "HOOKLINE_RULES_DIR")
        take("api_token", "HOOKLINE_API_TOKEN")
        take("receipt_token", "HOOKLINE_RECEIPT_TOKEN")
        take("clicksend_username", "CLICKSEND_USERNAME")
        take("clicksend_api_key", "CLICKSEND_API_KEY")
        take("maton_api_key", "MATON_API_KEY")
        take("maton_connection", "MATON_CONNECTION")
        take("clicksend_base_url", "CLICKSEND_BASE_URL", _url)
        take("max_body", "HOOKLINE_MAX_BODY", _positive_int)
        take("dedupe_window", "HOOKLINE_DEDUPE_WINDOW", _positive_duration)
        take("event_ttl", "HOOKLINE_EVENT_TTL", _positive_duration)
        take("signature_tolerance", "HOOKLINE_SIGNATURE_TOLERANCE", _positive_duration)
        take("default_region", "HOOKLINE_DEFAULT_REGION", _region)
        take("timezone", "HOOKLINE_TIMEZONE", _zone)
        take("message_ttl", "HOOKLINE_MESSAGE_TTL", _positive_duration)
        take("event_batch", "HOOKLINE_EVENT_BATCH", _positive_int)
        take("partitions", "HOOKLINE_PARTITIONS", _partitions)
        take("send_rate", "HOOKLINE_SEND_RATE", _positive_float)
        take("send_batch", "HOOKLINE_SEND_BATCH", _batch_size)
        take("template_refresh", "HOOKLINE_TEMPLATE_REFRESH", _positive_duration)
        take("min_replicas", "HOOKLINE_MIN_REPLICAS", _count)
        take("log_level", "HOOKLINE_LOG_LEVEL", _log_level)
        take("log_format", "HOOKLINE_LOG_FORMAT", _log_format)
        take("clicksend_timeout", "HOOKLINE_CLICKSEND_TIMEOUT", _call_timeout)
        take("reconcile_grace", "HOOKLINE_RECONCILE_GRACE", _positive_duration)
        take("poll_interval", "HOOKLINE_POLL_INTERVAL", _positive_duration)

        if bool(get("CLICKSEND_USERNAME")) != bool(get("CLICKSEND_API_KEY")):
            problems.append("CLICKSEND_USERNAME, CLICKSEND_API_KEY: set both or neither")
        if get("MATON_CONNECTION") and not get("MATON_API_KEY"):
            problems.append("MATON_CONNECTION: needs MATON_API_KEY")
        if problems:
            raise ConfigError(problems)
        settings = cls(**({"redis_url": ""} | values))
        if settings.event_ttl < settings.dedupe_window:
            settings = settings.with_(event_ttl=settings.dedupe_window)
        return settings


def read_env_file(path: Path) -> dict[str, str]:
    """The NAME=value lines of `path` (blank lines and `#` comments skipped); {} when there is no such file."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def write_env_file(path: Path, values: Mapping[str, str], comment: str = "") -> None:
    """Write `values` as NAME=value lines readable only by their owner (they may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # before the secrets go in, and whatever mode an older file had
    path.write_text(header + "".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")


def recorded_redis_url(home: Path | str = DEFAULT_HOME) -> str | None:
    """The Redis a `hookline up` running with this home folder recorded, if any."""
    return read_env_file(Path(home) / RUNNING_FILE).get("REDIS_URL")


def recorded_web_url(home: Path | str = DEFAULT_HOME) -> str | None:
    """The web server (http://host:port) a `hookline up` running with this home folder recorded, if any."""
    return read_env_file(Path(home) / RUNNING_FILE).get("HOOKLINE_URL")


def beside_up(home: Path | str = DEFAULT_HOME, environ: Mapping[str, str] | None = None,
              redis_url: str | None = None) -> dict[str, str]:
    """The environment a command run beside `hookline up` works in, for `Settings.from_env` and `${VAR}`s.

    Lowest first: `home/secrets.env`, then `home/up.env`, then the environment (default `os.environ`; a variable
    set to an empty value counts as unset), then `redis_url` (a command's `--redis-url`).
    """
    home = Path(home)
    env = os.environ if environ is None else environ
    merged = read_env_file(home / SECRETS_FILE) | read_env_file(home / RUNNING_FILE)
    merged.update({name: value for name, value in env.items() if value.strip() or name not in merged})
    if redis_url:
        merged["REDIS_URL"] = redis_url
    return merged


def _redis_url(raw: str) -> str:
    check_url(raw)
    return raw


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def _partitions(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_PARTITIONS:
        raise ValueError(f"must be a whole number from 1 to {MAX_PARTITIONS}")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _batch_size(raw: str) -> int:
    value = _positive_int(raw)
    if value > MAX_SEND_BATCH:
        raise ValueError(f"ClickSend accepts at most {MAX_SEND_BATCH} messages per call")
    return value


def _positive_duration(raw: str) -> float:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError("must be a positive duration")
    return value


def _call_timeout(raw: str) -> float:
    value = _positive_duration(raw)
    if value > MAX_CLICKSEND_TIMEOUT:
        raise ValueError(f"at most {MAX_CLICKSEND_TIMEOUT:.0f}s (a flush job is stopped after 90s)")
    return value


def _region(raw: str) -> str:
    region = raw.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {raw!r} (use ISO 3166 alpha-2, e.g. US, AU, GB)")
    return region


def _zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {raw!r}") from exc
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _log_format(raw: str) -> str:
    value = raw.lower()
    if value not in {"plain", "json"}:
        raise ValueError("must be plain or json")
    return value
