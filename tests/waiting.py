"""Waiting on a condition with a deadline, instead of sleeping for a guessed time and hoping it has passed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float = 15.0, interval: float = 0.02) -> T:
    """Call `condition` until it returns something truthy, and return that; fail naming `what` after `timeout`
    seconds. The deadline is generous on purpose: it only bounds a test that would otherwise hang, it never
    decides whether the code under test was fast enough."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
