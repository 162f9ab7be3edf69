"""Callback rules: refused addresses and what follows each attempt."""

from __future__ import annotations

import ipaddress
import random

import pytest

from workers.core.callbacks import ANSWER_KEPT, after_attempt, answer_excerpt, forbidden_address, request_secrets
from workers.core.sources import Callback

SPEC = Callback(url="https://origin.example/x", max_attempts=5, max_age=3600)


def v4(*parts: int) -> str:
    # Addresses outside loopback are built from their parts, never written out: tests send traffic to loopback
    # only, and this one only classifies addresses.
    return ".".join(map(str, parts))


def v6(*groups: int) -> str:
    return str(ipaddress.IPv6Address(sum(g << (16 * (7 - i)) for i, g in enumerate(groups))))


@pytest.mark.parametrize(
    ("address", "refused"),
    [("127.0.0.1", "loopback"), ("::1", "loopback"), (v4(10, 1, 2, 3), "private"), (v4(192, 168, 0, 9), "private"),
     (v4(172, 20, 0, 1), "private"), (v4(169, 254, 169, 254), "link-local"), (v6(0xFE80, 0, 0, 0, 0, 0, 0, 1),
     "link-local"), ("::ffff:127.0.0.1", "loopback"), (v4(0, 0, 0, 0), "unspecified"),
     (v4(224, 0, 0, 1), "multicast"), (v4(93, 184, 216, 34), None), (v6(0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111), None)],
)
def test_forbidden_addresses(address: str, refused: str | None) -> None:
    why = forbidden_address(address)
    assert (why is None) if refused is None else (refused in why)


@pytest.mark.parametrize(
    ("status", "error", "attempt", "expected"),
    [(200, None, 1, "delivered"), (204, None, 3, "delivered"), (410, None, 1, "failed"), (404, None, 1, "failed"),
     (400, None, 1, "failed"), (500, None, 1, "retry"), (503, None, 4, "retry"), (429, None, 1, "retry"),
     (408, None, 1, "retry"), (None, "ConnectTimeout", 1, "retry"), (500, None, 5, "exhausted")],
)
def test_after_attempt(status: int | None, error: str | None, attempt: int, expected: str) -> None:
    assert after_attempt(status, error, attempt, 0.0, SPEC, rand=random.Random(1)).status == expected


def test_retry_after_is_honoured() -> None:
    step = after_attempt(429, None, 1, 0.0, SPEC, retry_after=7.0)
    assert (step.status, step.delay) == ("retry", 7.0)


def test_too_old_gives_up() -> None:
    assert after_attempt(500, None, 2, 3590.0, SPEC, retry_after=60.0).status == "exhausted"


def test_the_secrets_a_request_carried_are_its_signing_key_and_its_header_values() -> None:
    spec = Callback(url="https://origin.example/x", secret="whsec_c2VjcmV0LWtleS0x")
    found = request_secrets(spec, {"Authorization": "Bearer tok-0123456789", "X-Shop": "json"})
    assert set(found) == {"whsec_c2VjcmV0LWtleS0x", "c2VjcmV0LWtleS0x", "Bearer tok-0123456789", "tok-0123456789"}
    # longest first: a whole value goes before the token inside it
    assert found.index("Bearer tok-0123456789") < found.index("tok-0123456789")


def test_an_answer_is_kept_short_and_without_the_secrets_even_one_the_read_stopped_inside() -> None:
    secrets = ("tok-0123456789",)
    assert answer_excerpt(b'{"echo": "tok-0123456789"}', secrets, cut=False) == '{"echo": "[redacted]"}'
    assert answer_excerpt(b"ok \xff", secrets, cut=False) == "ok \ufffd"
    assert answer_excerpt(b"header: tok-0123", secrets, cut=True) == "header: [redacted]…"
    long = answer_excerpt(b"y" * 5000, secrets, cut=False)
    assert long == "y" * ANSWER_KEPT + "…"
