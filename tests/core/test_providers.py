"""The provider catalog: every entry is complete and usable, and a `provider:` source is its preset plus overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from workers.core import providers, schemes
from workers.core.sources import BODY_FORMATS, Extract, Verify, parse_sources
from workers.errors import ConfigError

VERIFY_FIELDS = {f.name for f in dataclasses.fields(Verify)}


def load(body: dict[str, Any], lines: dict[tuple[str, ...], int] | None = None) -> Any:
    return parse_sources({"sources": {"src": body}}, {}, lines=lines)["src"]


def minimal(name: str) -> dict[str, Any]:
    provider = providers.CATALOG[name]
    body: dict[str, Any] = {"provider": name, "secret": "whsec_c2VjcmV0LXNlY3JldC0wMTIz"}
    if "url" in provider.needs:
        body["url"] = "https://hooks.example.com/hooks/src"
    return body


@pytest.mark.parametrize("name", providers.names())
def test_every_entry_is_complete(name: str) -> None:
    provider = providers.CATALOG[name]
    assert provider.name == name
    assert schemes.get(provider.scheme) is not None, "a provider's scheme must be in the registry"
    assert provider.title and provider.authenticates and provider.secret_name
    assert provider.docs.startswith("https://")
    assert provider.body in BODY_FORMATS
    assert {key for key, _ in provider.options} <= VERIFY_FIELDS
    assert set(provider.needs) <= VERIFY_FIELDS
    assert all(isinstance(t, str) and t for t in provider.event_types)


def test_the_issue_asks_for_at_least_these() -> None:
    assert {"shopify", "stripe", "github", "gitlab", "slack", "twilio", "calendly", "calcom", "pagerduty",
            "standard-webhooks", "svix", "alertmanager", "grafana", "square", "typeform",
            "woocommerce"} <= set(providers.names())


@pytest.mark.parametrize("name", providers.names())
def test_a_provider_source_gets_its_preset(name: str) -> None:
    provider = providers.CATALOG[name]
    source = load(minimal(name))
    scheme = schemes.REGISTRY[provider.scheme]
    assert source.provider == name
    assert source.verify.scheme == provider.scheme
    assert source.verify.tolerance == provider.tolerance
    for key, value in provider.options:
        assert getattr(source.verify, key) == value
    expected_type = provider.event_type or scheme.defaults.event_type
    assert source.event_type == (Extract(header=expected_type.header, path=expected_type.path) if expected_type
                                 else Extract(value="event"))
    expected_id = provider.event_id or scheme.defaults.event_id
    assert source.event_id == (Extract(header=expected_id.header, path=expected_id.path) if expected_id else None)
    assert source.dedupe_window == provider.dedupe_window
    assert source.body == provider.body
    assert source.keep_headers == provider.keep_headers
    assert source.schema == (dict(provider.schema) if provider.schema else None)


def test_anything_the_preset_sets_can_be_overridden() -> None:
    source = load({"provider": "alertmanager", "secret": "t", "event_type": {"value": "alert"},
                   "event_id": {"path": "groupKey"}, "schema": {"type": "object"}, "dedupe_window": "5m",
                   "keep_headers": ["User-Agent"], "tolerance": "1m", "body": "json"})
    assert source.event_type == Extract(value="alert")
    assert source.event_id == Extract(path="groupKey")
    assert source.schema == {"type": "object"}
    assert source.dedupe_window == 300
    assert source.keep_headers == ("User-Agent",)
    assert source.verify.tolerance == 60


def test_secrets_rotate_as_for_any_source() -> None:
    assert load({"provider": "calcom", "secrets": ["new", "old"]}).verify.secrets == ("new", "old")
    assert load({"provider": "calcom", "secret": ["new", "old"]}).verify.secrets == ("new", "old")


def test_a_missing_secret_is_named_as_the_provider_calls_it() -> None:
    with pytest.raises(ConfigError) as info:
        load({"provider": "stripe"}, lines={("sources", "src"): 7})
    assert [str(p) for p in info.value.problems] == [
        "sources.yaml:7: src: secret: Stripe needs a secret: the endpoint's Signing secret (whsec_...) under "
        "Developers > Webhooks"]


@pytest.mark.parametrize("body, expected", [
    ({"provider": "calcom", "secret": "s", "verify": {"scheme": "calcom", "secret": "s"}},
     "src: verify: give provider (a preset) or verify (spelled out), not both"),
    ({"verify": {"scheme": "github", "secret": "s"}, "secret": "s"},
     "src: secret: goes inside verify: (or name a provider:)"),
    ({"provider": "shopfiy", "secret": "s"}, "src: provider: Must be one of: " + ", ".join(providers.names()) + "."),
    ({"provider": "square", "secret": "s"},
     "src: url: square needs url: the notification URL exactly as configured at the sender"),
    ({"provider": "twilio", "secret": "s", "url": "hooks.example.com/sms"},
     "src: url: must be the full URL, starting https://"),
    ({"provider": "grafana", "secret": "s", "username": "u"},
     "src: username: Grafana Alerting authenticates without a username"),
    ({"provider": "calcom", "secret": "s", "dedupe_window": "0s"}, "src: dedupe_window: must be positive"),
    ({}, "src: verify: required: name a provider or spell out verify"),
])
def test_problems_keep_the_file_source_field_format(body: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(body)
    assert [str(p) for p in info.value.problems] == [f"sources.yaml: {expected}"]


def test_verify_sources_take_a_dedupe_window_too() -> None:
    source = load({"verify": {"scheme": "bearer", "secret": "t"}, "dedupe_window": "90s"})
    assert (source.provider, source.dedupe_window, source.body) == (None, 90, "json")
    assert load({"verify": {"scheme": "bearer", "secret": "t"}}).dedupe_window is None


def test_an_unset_secret_variable_is_reported_once_under_the_source_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_sources({"sources": {"src": {"provider": "calcom", "secret": "${CAL_SECRET}"}}}, {})
    assert [str(p) for p in info.value.problems] == [
        "sources.yaml: src: secret: environment variable CAL_SECRET is not set"]


def test_a_handshake_echoes_its_field_only_for_its_own_type() -> None:
    handshake = providers.CATALOG["slack"].handshake
    assert handshake is not None
    assert handshake.answer("url_verification", {"type": "url_verification", "challenge": "c1"}) == {"challenge": "c1"}
    assert handshake.answer("app_mention", {"challenge": "c1"}) is None  # an event, whatever it holds
    assert handshake.answer("url_verification", {"type": "url_verification"}) is None  # nothing to echo: stored
    assert handshake.answer("url_verification", ["challenge"]) is None


@pytest.mark.parametrize("name, body, expected", [
    ("standard-webhooks", {"type": "invoice.paid", "timestamp": "2022-11-03T20:26:10Z", "data": {}}, "invoice.paid"),
    ("svix", {"type": "user.created", "timestamp": "2022-11-03T20:26:10Z", "data": {}}, "user.created"),
])
def test_standard_webhooks_and_svix_read_the_type_from_the_body(name: str, body: dict[str, Any],
                                                                 expected: str) -> None:
    source = load(minimal(name))
    assert source.event_type.read({}, body) == expected
    overridden = load(minimal(name) | {"event_type": {"header": "X-Kind"}})
    assert overridden.event_type.read({"X-Kind": "k"}, body) == "k"
