"""The scheme registry: every entry is complete, and what its config checks accept its verifier can verify.

Each scheme has a case here: the smallest `verify:` config that loads, and a signer for requests to it. The
cases must cover the registry exactly, so a new scheme cannot be added without saying how it is signed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.datastructures import Headers

from tests import signing
from workers.core import schemes
from workers.core.schemes import Defaults, Verify, Where
from workers.core.sources import SCHEMES, Extract, parse_sources
from workers.errors import ConfigError, SignatureInvalid

NOW = 1_790_000_000
BODY = b'{"id": "evt_1", "type": "order.paid"}'
WHSEC = "whsec_" + base64.b64encode(b"registry-test-secret").decode()

SQUARE_URL = "https://hooks.example.com/hooks/square"
TWILIO_URL = "https://hooks.example.com/hooks/twilio"

Signer = Callable[[bytes, int], dict[str, str]]

# scheme -> (minimal verify config besides `scheme`, signer(body, ts) -> headers for that config)
CASES: dict[str, tuple[dict[str, Any], Signer]] = {
    "standard-webhooks": ({"secret": WHSEC}, lambda b, t: signing.standard(WHSEC, b, t)),
    "svix": ({"secret": WHSEC}, lambda b, t: signing.svix(WHSEC, b, t)),
    "github": ({"secret": "s1"}, lambda b, t: signing.github("s1", b)),
    "stripe": ({"secret": "s1"}, lambda b, t: signing.stripe_sdk("s1", b, t)),
    "shopify": ({"secret": "s1"}, lambda b, t: signing.shopify("s1", b)),
    "calendly": ({"secret": "s1"}, lambda b, t: signing.calendly("s1", b, t)),
    "slack": ({"secret": "s1"}, lambda b, t: signing.slack("s1", b, t)),
    "calcom": ({"secret": "s1"}, lambda b, t: signing.calcom("s1", b)),
    "gitlab": ({"secret": "s1"}, lambda b, t: signing.gitlab("s1")),
    "typeform": ({"secret": "s1"}, lambda b, t: signing.typeform("s1", b)),
    "woocommerce": ({"secret": "s1"}, lambda b, t: signing.woocommerce("s1", b)),
    "square": ({"secret": "s1", "url": SQUARE_URL}, lambda b, t: signing.square("s1", SQUARE_URL, b)),
    "twilio": ({"secret": "s1", "url": TWILIO_URL}, lambda b, t: signing.twilio("s1", TWILIO_URL, b)),
    "hmac-sha256": ({"secret": "s1", "header": "X-Sig"}, lambda b, t: {"X-Sig": signing.hmac_hex("s1", b)}),
    "bearer": ({"secret": "s1"}, lambda b, t: {"Authorization": "Bearer s1"}),
    "basic": ({"username": "am", "password": "s1"}, lambda b, t: signing.basic("am", "s1")),
    "none": ({}, lambda b, t: {}),
}


def load_verify(config: dict[str, Any]) -> Verify:
    sources = parse_sources({"sources": {"src": {"verify": config}}}, {})
    return sources["src"].verify


def run(spec: Verify, headers: dict[str, str], body: bytes = BODY) -> None:
    scheme = schemes.get(spec.scheme)
    assert scheme is not None
    scheme.verifier(spec, body, Headers(headers), NOW, 300.0)


def test_the_cases_cover_the_registry_exactly() -> None:
    assert set(CASES) == set(schemes.REGISTRY)


def test_the_config_enum_is_the_registry() -> None:
    assert SCHEMES == schemes.names() == tuple(schemes.REGISTRY)


@pytest.mark.parametrize("name", schemes.names())
def test_every_entry_has_verifier_checks_and_defaults(name: str) -> None:
    scheme = schemes.REGISTRY[name]
    assert scheme.name == name
    assert callable(scheme.verifier)
    assert isinstance(scheme.checks, tuple) and all(callable(check) for check in scheme.checks)
    assert isinstance(scheme.defaults, Defaults)
    for where in (scheme.defaults.event_id, scheme.defaults.event_type):
        assert where is None or (isinstance(where, Where) and (where.header is None) != (where.path is None))
    # Only `none` may accept a config that gives nothing to check a request with.
    assert scheme.checks or name == "none"


@pytest.mark.parametrize("name", schemes.names())
def test_a_request_signed_for_the_minimal_config_verifies(name: str) -> None:
    config, sign = CASES[name]
    spec = load_verify({"scheme": name, **config})
    run(spec, sign(BODY, NOW))


@pytest.mark.parametrize("name", [n for n in schemes.names() if n != "none"])
def test_an_unsigned_request_is_refused(name: str) -> None:
    config, _ = CASES[name]
    with pytest.raises(SignatureInvalid):
        run(load_verify({"scheme": name, **config}), {})


@pytest.mark.parametrize("name", [n for n in schemes.names() if CASES[n][0]])
def test_the_minimal_config_is_minimal(name: str) -> None:
    # Whatever the verifier needs, the config checks demand: drop any key and loading fails with a reason.
    config, _ = CASES[name]
    for key in config:
        smaller = {k: v for k, v in config.items() if k != key}
        with pytest.raises(ConfigError) as info:
            load_verify({"scheme": name, **smaller})
        assert all(p.item == "src" and p.field.startswith("verify.") for p in info.value.problems)


@pytest.mark.parametrize("name", schemes.names())
def test_defaults_become_the_source_id_and_type(name: str) -> None:
    config, _ = CASES[name]
    source = parse_sources({"sources": {"src": {"verify": {"scheme": name, **config}}}}, {})["src"]
    defaults = schemes.REGISTRY[name].defaults

    def expected(where: Where | None) -> Extract | None:
        return None if where is None else Extract(header=where.header, path=where.path)

    assert source.event_id == expected(defaults.event_id)
    assert source.event_type == (expected(defaults.event_type) or Extract(value="event"))


def test_several_problems_in_one_verify_block_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load_verify({"scheme": "hmac-sha256"})
    assert sorted(str(p) for p in info.value.problems) == [
        "sources.yaml: src: verify.header: hmac-sha256 needs the header that carries the signature",
        "sources.yaml: src: verify.secret: hmac-sha256 needs a secret",
    ]
