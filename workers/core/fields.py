"""Marshmallow fields shared by the configuration schemas (sources, rules, policies).

Pure.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

from workers.core.durations import parse_duration


class Duration(fields.Field[float]):
    """A duration ("10m", "-24h", 90) as seconds; `positive` refuses zero and negatives."""

    def __init__(self, *, positive: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.positive = positive

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if self.positive and seconds <= 0:
            raise ValidationError("must be positive")
        return seconds


class StrOrList(fields.Field[tuple[str, ...]]):
    """One non-empty string or a non-empty list of them, as a tuple."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
            raise ValidationError("must be a non-empty string or a list of non-empty strings")
        return tuple(items)
