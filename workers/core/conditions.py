"""Rule conditions (`when:`): JMESPath paths into the event, operators, `any:`, `all:` and `not:`.

Pure: compiled once at load; evaluation explains itself so the dry run can say why a rule did not match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import jmespath

from workers.errors import ConditionError

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "matches", "exists", "contains")


def _number(value: Any) -> Decimal | None:
    # Shops send prices as strings ("25.00"): numeric comparisons accept both.
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    # "NaN", "Infinity" and "sNaN" parse as Decimals but are no amount anyone compares: not a number here.
    return number if number.is_finite() else None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and a == e
    return bool(actual == expected)


def _compare(op: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and op(a, e)

    return check


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return str(expected) in actual
    if isinstance(actual, list | tuple):
        return any(_equal(item, expected) for item in actual)
    if isinstance(actual, dict):
        return expected in actual
    return False


_CHECKS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda a, e: not _equal(a, e),
    "in": lambda a, e: any(_equal(a, item) for item in e),
    "not_in": lambda a, e: not any(_equal(a, item) for item in e),
    "gt": _compare(lambda a, e: a > e),
    "gte": _compare(lambda a, e: a >= e),
    "lt": _compare(lambda a, e: a < e),
    "lte": _compare(lambda a, e: a <= e),
    "matches": lambda a, e: a is not None and e.search(str(a)) is not None,
    "exists": lambda a, e: (a is not None) == bool(e),
    "contains": _contains,
}


@dataclass(frozen=True)
class Test:
    """One `path op value` check."""

    path: str
    op: str
    arg: Any
    expr: Any  # compiled JMESPath

    def evaluate(self, doc: Any) -> tuple[bool, str]:
        try:
            actual = self.expr.search(doc)
        except jmespath.exceptions.JMESPathError as exc:
            # A function applied to the wrong type (`length(n)` on a number): this payload fails the test;
            # it must not fail the whole event.
            return False, f"{self.path}: {exc}"
        ok = _CHECKS[self.op](actual, self.arg)
        shown = self.arg.pattern if isinstance(self.arg, re.Pattern) else self.arg
        return ok, f"{self.path} {self.op} {shown!r}: got {actual!r}"


@dataclass(frozen=True)
class Condition:
    """All of `tests` and `all`, at least one of `any` (when given), and none of `none` must hold."""

    tests: tuple[Test, ...] = ()
    all: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()
    none: tuple[Condition, ...] = ()

    def evaluate(self, doc: Any) -> tuple[bool, list[str]]:
        """Whether `doc` satisfies the condition, and the reasons it does not (empty when it does)."""
        failures: list[str] = []
        for test in self.tests:
            ok, why = test.evaluate(doc)
            if not ok:
                failures.append(why)
        for sub in self.all:
            failures.extend(sub.evaluate(doc)[1])
        if self.any:
            results = [sub.evaluate(doc) for sub in self.any]
            if not any(ok for ok, _ in results):
                failures.append("none of any: held (" + "; ".join(w for _, ws in results for w in ws) + ")")
        for sub in self.none:
            if sub.evaluate(doc)[0]:
                failures.append("not: held, so the rule is excluded")
        return not failures, failures


def compile_condition(spec: Any, where: str = "when") -> Condition:
    """Compile a `when:` mapping. Raises ConditionError naming the offending path."""
    if spec is None:
        return Condition()
    if not isinstance(spec, dict):
        raise ConditionError(where, "must be a mapping of path: value or path: {operator: value}")
    tests: list[Test] = []
    all_: list[Condition] = []
    any_: list[Condition] = []
    none: list[Condition] = []
    for key, value in spec.items():
        key = str(key)
        if key in ("any", "all"):
            if not isinstance(value, list) or not value:
                raise ConditionError(f"{where}.{key}", "must be a non-empty list of conditions")
            subs = [compile_condition(v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
            (any_ if key == "any" else all_).extend(subs)
        elif key == "not":
            none.append(compile_condition(value, f"{where}.not"))
        else:
            tests.extend(_tests(key, value, f"{where}.{key}"))
    return Condition(tuple(tests), tuple(all_), tuple(any_), tuple(none))


def _tests(path: str, value: Any, where: str) -> list[Test]:
    try:
        expr = jmespath.compile(path)
    except jmespath.exceptions.JMESPathError as exc:
        raise ConditionError(where, f"bad path: {exc}") from None
    if not isinstance(value, dict):
        return [Test(path, "eq", value, expr)]
    if not value:
        raise ConditionError(where, "empty operator mapping")
    out = []
    for op, arg in value.items():
        if op not in OPERATORS:
            raise ConditionError(where, f"unknown operator {op!r} (use one of {', '.join(OPERATORS)})")
        if op in ("in", "not_in") and not isinstance(arg, list):
            raise ConditionError(f"{where}.{op}", "needs a list")
        if op in ("gt", "gte", "lt", "lte") and _number(arg) is None:
            raise ConditionError(f"{where}.{op}", "needs a number")
        if op == "exists" and not isinstance(arg, bool):
            raise ConditionError(f"{where}.exists", "needs true or false")
        if op == "matches":
            try:
                arg = re.compile(str(arg))
            except re.error as exc:
                raise ConditionError(f"{where}.matches", f"bad regular expression: {exc}") from None
        out.append(Test(path, op, arg, expr))
    return out
