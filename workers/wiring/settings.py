"""Hookline's runtime settings: one frozen dataclass built from the environment by `Settings.from_env`.

Nothing here reads the environment at import time; callers pass the mapping in (default `os.environ`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from workers.core.durations import parse_duration
from workers.errors import ConfigError

DIRECT_BASE_URL = "https://rest.clicksend.com"
MATON_BASE_URL = "https://api.maton.ai/clicksend"


@dataclass(frozen=True)
class Settings:
    """Everything a Hookline process needs to know about its environment.

    Each field's environment variable is named in `from_env`; defaults live here, in one place.
    """

    redis_url: str
    rules_dir: str = "rules"
    api_token: str | None = None
    receipt_token: str | None = None
    clicksend_username: str | None = None
    clicksend_api_key: str | None = None
    maton_api_key: str | None = None
    maton_connection: str | None = None
    clicksend_base_url: str | None = None
    # Largest webhook body accepted, in bytes (HOOKLINE_MAX_BODY).
    max_body: int = 1024 * 1024
    # How long a repeated event id is answered as a duplicate (HOOKLINE_DEDUPE_WINDOW).
    dedupe_window: float = 24 * 3600
    # How long event records are kept (HOOKLINE_EVENT_TTL); never shorter than the dedupe window.
    event_ttl: float = 7 * 24 * 3600
    # Largest clock skew accepted on signed timestamps (HOOKLINE_SIGNATURE_TOLERANCE).
    signature_tolerance: float = 300
    # Region assumed for phone numbers written without a country code (HOOKLINE_DEFAULT_REGION).
    default_region: str = "US"
    # Zone for naive times in payloads and for daily budgets (HOOKLINE_TIMEZONE).
    timezone: str = "UTC"
    # How long a message that reached a final state is kept, with its timeline (HOOKLINE_MESSAGE_TTL).
    message_ttl: float = 90 * 24 * 3600
    # Events handed to the workers per drain job (HOOKLINE_EVENT_BATCH).
    event_batch: int = 500
    # ClickSend requests per second across all workers (HOOKLINE_SEND_RATE).
    send_rate: float = 5.0
    # Messages per provider call (HOOKLINE_SEND_BATCH; ClickSend allows 1000).
    send_batch: int = 1000
    log_level: str = "INFO"

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
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`), reporting every problem at once."""
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

        redis_url = get("REDIS_URL")
        if redis_url is None:
            problems.append("REDIS_URL: not set (e.g. redis://127.0.0.1:6379/0)")
        elif not redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append("REDIS_URL: must start with redis://, rediss:// or unix://")
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
        take("send_rate", "HOOKLINE_SEND_RATE", _positive_float)
        take("send_batch", "HOOKLINE_SEND_BATCH", _batch_size)
        take("log_level", "HOOKLINE_LOG_LEVEL", _log_level)

        if bool(get("CLICKSEND_USERNAME")) != bool(get("CLICKSEND_API_KEY")):
            problems.append("CLICKSEND_USERNAME, CLICKSEND_API_KEY: set both or neither")
        if get("MATON_CONNECTION") and not get("MATON_API_KEY"):
            problems.append("MATON_CONNECTION: needs MATON_API_KEY")
        if problems:
            raise ConfigError(problems)
        settings = cls(redis_url=redis_url or "", **values)
        if settings.event_ttl < settings.dedupe_window:
            settings = settings.with_(event_ttl=settings.dedupe_window)
        return settings


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _batch_size(raw: str) -> int:
    value = _positive_int(raw)
    if value > 1000:
        raise ValueError("ClickSend accepts at most 1000 messages per call")
    return value


def _positive_duration(raw: str) -> float:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError("must be a positive duration")
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
