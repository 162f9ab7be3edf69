"""Message and key templates: Jinja2's sandbox with StrictUndefined, and Hookline's filters.

Pure: templates are compiled from text handed in; the clock never enters (times come from the event).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import phonenumbers
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from workers.core import phones
from workers.errors import RenderError

_SYMBOLS = {"USD": "$", "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "GBP": "£", "EUR": "€", "JPY": "¥"}
# To a recipient whose own currency it is, a currency's plain symbol; to anyone else, one that cannot be taken
# for theirs: "$25.00" is US dollars to a US number but reads as Australian dollars to an Australian one.
_HOME_SYMBOLS = {"USD": "$", "AUD": "$", "CAD": "$", "NZD": "$", "GBP": "£", "EUR": "€", "JPY": "¥"}
_FOREIGN_SYMBOLS = {"USD": "US$", "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "GBP": "£", "EUR": "€", "JPY": "JP¥"}
_EURO_REGIONS = ("AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT",
                 "NL", "PT", "SI", "SK")
_REGION_CURRENCY = {"US": "USD", "AU": "AUD", "CA": "CAD", "NZ": "NZD", "GB": "GBP", "JP": "JPY",
                    **dict.fromkeys(_EURO_REGIONS, "EUR")}


def _from_unix(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError) as exc:  # far beyond year 9999: a bad value, not a crash
        raise ValueError(f"not a date/time: {seconds!r} ({exc})") from None


def parse_time(value: Any, zone: str) -> datetime:
    """An aware datetime from an ISO 8601 string or Unix seconds; naive times are read in `zone`."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _from_unix(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return _from_unix(float(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not a date/time: {value!r}") from None
    else:
        raise ValueError(f"not a date/time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def _datetime_filter(zone: str) -> Callable[..., str]:
    def fmt(value: Any, pattern: str = "%a %d %b %H:%M", tz: str | None = None) -> str:
        try:
            target = ZoneInfo(tz or zone)
        except ZoneInfoNotFoundError:
            raise RenderError(f"unknown time zone {tz!r}") from None
        try:
            # A naive time is read in the zone it is shown in: "10:30" with "Australia/Sydney" is 10:30 there.
            return parse_time(value, tz or zone).astimezone(target).strftime(pattern)
        except ValueError as exc:
            raise RenderError(str(exc)) from None

    return fmt


@jinja2.pass_context
def _money(context: jinja2.runtime.Context, value: Any, currency: str = "USD") -> str:
    """`amount | money(currency)`: the amount to two places with a symbol the recipient cannot misread.

    The recipient is the number this message is rendered for (`recipient` in the context): a currency that is
    not theirs is marked ("US$25.00" to an Australian number); without one, the currency's usual symbol.
    """
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise RenderError(f"not an amount: {value!r}") from None
    code = str(currency).upper()
    home = _recipient_currency(context.get("recipient"))
    table = _SYMBOLS if home is None else _HOME_SYMBOLS if code == home else _FOREIGN_SYMBOLS
    symbol = table.get(code)
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,}" if symbol else f"{sign}{abs(amount):,} {code}"


def _recipient_currency(recipient: Any) -> str | None:
    """The currency of the region of the E.164 number `recipient`, when it is one we know."""
    if not isinstance(recipient, str) or not recipient.startswith("+"):
        return None
    number = phones.international(recipient)  # read already, when planning the message: cached
    return _REGION_CURRENCY.get(number.region or "") if number is not None else None


def _phone_filter(region: str) -> Callable[..., str]:
    def fmt(value: Any, style: str = "international") -> str:
        try:
            number = phonenumbers.parse(str(value), region)
        except phonenumbers.NumberParseException:
            raise RenderError(f"not a phone number: {value!r}") from None
        styles = {"international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                  "national": phonenumbers.PhoneNumberFormat.NATIONAL,
                  "e164": phonenumbers.PhoneNumberFormat.E164}
        return phonenumbers.format_number(number, styles.get(style, styles["international"]))

    return fmt


_INTERNALS = (ModuleType, jinja2.runtime.TemplateReference)  # `{{ self }}` and the like


def _shown_value(value: Any) -> Any:
    """`finalize`: what `{{ … }}` prints. A function, method or class is refused: its repr ("<built-in method
    items of dict object at 0x…>", "<class 'jinja2.utils.Cycler'>") is Python's internals, never a message;
    `{{ payload.items }}` for `{{ payload.items() }}` fails its message with a reason instead."""
    if (callable(value) and not isinstance(value, jinja2.Undefined)) or isinstance(value, _INTERNALS):
        raise RenderError("a function, class or template object cannot be shown (call it, or show a field)")
    return value


def environment(zone: str, region: str) -> SandboxedEnvironment:
    """The sandboxed environment every template compiles in; filters: datetime, money, phone."""
    # Immutable: a template must not change the event (payload.pop(…)) that the next rule reads.
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                        keep_trailing_newline=False, finalize=_shown_value)
    env.filters["datetime"] = _datetime_filter(zone)
    env.filters["money"] = _money
    env.filters["phone"] = _phone_filter(region)
    return env


def compile_template(env: SandboxedEnvironment, source: str) -> jinja2.Template:
    """Compile once (at load). Raises jinja2.TemplateSyntaxError for the loader to report with its line."""
    template = env.from_string(source)
    # Jinja keeps a template's globals as a ChainMap over the environment's (so later changes to the environment
    # show), and every render copies them into a new context: through the ChainMap that copy was two thirds of
    # rendering a short body. Nothing changes an environment's globals once it is built (`environment`), so a
    # plain copy holds the same names and values, read at a third of the cost.
    template.globals = dict(template.globals)
    return template


def render(template: jinja2.Template, context: dict[str, Any], what: str) -> str:
    """Render `template`; any failure becomes RenderError naming `what` and the missing field."""
    try:
        return template.render(context).strip()
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{what}: missing field ({_field_of(exc)})") from None
    except RenderError as exc:
        raise RenderError(f"{what}: {exc}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{what}: {exc}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"{what}: {exc}") from None
    except RecursionError:
        raise RenderError(f"{what}: template recursion too deep") from None


def _field_of(exc: jinja2.UndefinedError) -> str:
    # Jinja says "'dict object' has no attribute 'phone'"; keep the part that names the field.
    text = str(exc)
    if "has no attribute" in text:
        return text.split("has no attribute", 1)[1].strip().strip("'") + " is missing"
    return text
