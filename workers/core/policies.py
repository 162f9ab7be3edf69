"""`policies.yaml`: its schema and the Policy model (approval, holds, countries, quiet hours, rates, budget).

Pure: takes parsed YAML data; reports problems as `file: policy: field: problem`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

import phonenumbers
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates

from workers.core.fields import Duration
from workers.core.sources import flatten_errors
from workers.errors import ConfigError

POLICIES_FILE = "policies.yaml"
DEFAULT_PRICES = {"sms": Decimal("0.0792"), "mms": Decimal("0.33"), "voice": Decimal("0.11")}


@dataclass(frozen=True)
class HoldIf:
    """Thresholds above which an automatic approval becomes a hold for a person."""

    segments_over: int | None = None
    cost_over: Decimal | None = None
    recipients_over: int | None = None


@dataclass(frozen=True)
class QuietHours:
    """Recipient-local hours in which messages are deferred, dropped or sent anyway."""

    start: clock_time
    end: clock_time
    action: str = "defer"
    critical_allowed: bool = True


@dataclass(frozen=True)
class RateLimit:
    """At most `count` messages per recipient per `per` seconds, across all workers."""

    count: int
    per: float
    action: str = "defer"


@dataclass(frozen=True)
class Policy:
    """One named policy."""

    name: str
    approval: str = "auto"
    hold_if: HoldIf = field(default_factory=HoldIf)
    allow_countries: tuple[str, ...] | None = None
    quiet_hours: QuietHours | None = None
    max_per_recipient: RateLimit | None = None
    duplicate_window: float | None = None
    daily_budget: Decimal | None = None
    approval_expires: float = 24 * 3600
    balance_floor: Decimal | None = None
    # Price per part by channel and country ("default" for the rest): used when ClickSend's price endpoint
    # cannot be reached.
    prices: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    price_cache_ttl: float = 3600

    def fallback_price(self, channel: str, country: str | None, parts: int) -> Decimal:
        """The estimate from the price table (or built-in defaults) for `parts` parts."""
        table = self.prices.get(channel, {})
        per_part = table.get(country or "", table.get("default", DEFAULT_PRICES.get(channel, Decimal("0.10"))))
        return per_part * max(1, parts)


DEFAULT_POLICY = Policy("default")


class _Clock(fields.Field[clock_time]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> clock_time:
        text = str(value)
        if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 sexagesimal: 21:00 → 1260
            text = f"{value // 60:02d}:{value % 60:02d}"
        if not re.fullmatch(r"\d{1,2}:\d{2}", text):
            raise ValidationError("use HH:MM (24-hour)")
        hours, minutes = (int(p) for p in text.split(":"))
        if hours > 23 or minutes > 59:
            raise ValidationError("use HH:MM (24-hour)")
        return clock_time(hours, minutes)


class _Money(fields.Field[Decimal]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            amount = Decimal(str(value))
        except ArithmeticError:
            raise ValidationError("must be an amount") from None
        if amount < 0:
            raise ValidationError("must not be negative")
        return amount


class HoldIfSchema(Schema):
    segments_over = fields.Integer(validate=validate.Range(min=0))
    cost_over = _Money()
    recipients_over = fields.Integer(validate=validate.Range(min=0))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> HoldIf:
        return HoldIf(**data)


class QuietHoursSchema(Schema):
    from_ = _Clock(required=True, data_key="from")
    to = _Clock(required=True)
    action = fields.String(validate=validate.OneOf(("defer", "drop", "send")))
    critical_allowed = fields.Boolean()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> QuietHours:
        return QuietHours(start=data.pop("from_"), end=data.pop("to"), **data)


class RateSchema(Schema):
    count = fields.Integer(required=True, validate=validate.Range(min=1))
    per = Duration(positive=True, required=True)
    action = fields.String(validate=validate.OneOf(("defer", "suppress")))

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> RateLimit:
        return RateLimit(**data)


class PolicySchema(Schema):
    approval = fields.String(validate=validate.OneOf(("auto", "manual")))
    hold_if = fields.Nested(HoldIfSchema)
    allow_countries = fields.List(fields.String(), validate=validate.Length(min=1))
    quiet_hours = fields.Nested(QuietHoursSchema)
    max_per_recipient = fields.Nested(RateSchema)
    duplicate_window = Duration(positive=True)
    daily_budget = _Money()
    approval_expires = Duration(positive=True)
    balance_floor = _Money()
    prices = fields.Dict(keys=fields.String(validate=validate.OneOf(("sms", "mms", "voice"))),
                         values=fields.Dict(keys=fields.String(), values=_Money()))
    price_cache_ttl = Duration(positive=True)

    @validates("allow_countries")
    def _countries(self, value: list[str], **kwargs: Any) -> None:
        unknown = [c for c in value if c.upper() not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValidationError(f"unknown region(s): {', '.join(unknown)} (ISO 3166 alpha-2)")


class PoliciesFileSchema(Schema):
    policies = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")),
                           values=fields.Nested(PolicySchema), required=True)


def parse_policies(data: Any, filename: str = POLICIES_FILE,
                   lines: Mapping[tuple[str, ...], int] | None = None) -> dict[str, Policy]:
    """Validate parsed policies.yaml; ConfigError lists every problem. `default` always exists."""
    try:
        loaded = PoliciesFileSchema().load(data if isinstance(data, dict) else {"policies": None})
    except ValidationError as exc:
        raise ConfigError(flatten_errors(exc.messages, filename, lines or {}, top="policies")) from None
    out = {"default": DEFAULT_POLICY}
    for name, body in loaded["policies"].items():
        countries = body.pop("allow_countries", None)
        out[name] = Policy(name=name, allow_countries=tuple(c.upper() for c in countries) if countries else None,
                           **body)
    return out
