"""The one exception tree: every exception class Hookline defines lives in workers/errors.py under HooklineError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import webhooks
import workers
from workers import errors
from workers.errors import (
    ConditionError,
    ConfigError,
    DestinationRefused,
    DryRunError,
    HooklineError,
    OutboundError,
    RedisNotStarted,
    ToolError,
)


def _modules() -> Iterator[ModuleType]:
    for package in (workers, webhooks):
        yield package
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            yield importlib.import_module(info.name)


def _classes(holder: object, seen: set[type]) -> Iterator[type]:
    # Nested classes too: an exception defined inside another class is still one of ours.
    for _, cls in inspect.getmembers(holder, inspect.isclass):
        if cls in seen or not cls.__module__.startswith(("workers", "webhooks")):
            continue
        seen.add(cls)
        yield cls
        yield from _classes(cls, seen)


def test_every_exception_class_is_in_workers_errors_and_derives_from_hookline_error() -> None:
    seen: set[type] = set()
    found = [cls for module in _modules() for cls in _classes(module, seen) if issubclass(cls, BaseException)]
    assert len(found) > 10  # the walk really reached the modules
    misplaced = sorted(f"{c.__module__}.{c.__qualname__}" for c in found if c.__module__ != errors.__name__)
    assert misplaced == [], "define exceptions in workers/errors.py"
    rootless = sorted(c.__qualname__ for c in found if not issubclass(c, HooklineError))
    assert rootless == [], "derive every exception from HooklineError"


def test_moved_errors_keep_their_meaning_as_attributes() -> None:
    cond = ConditionError("when.payload.x", "needs a list")
    assert (cond.where, cond.problem, str(cond)) == ("when.payload.x", "needs a list", "when.payload.x: needs a list")
    assert isinstance(cond, ConfigError) and len(cond.problems) == 1
    refused = DestinationRefused("db.internal: private address", "db.internal")
    assert isinstance(refused, OutboundError) and refused.host == "db.internal"
    assert issubclass(DryRunError, ToolError) and issubclass(RedisNotStarted, ToolError)
    assert RedisNotStarted("exited", "/tmp/r/redis.log").log_file == "/tmp/r/redis.log"
