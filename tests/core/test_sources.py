"""Validation of sources.yaml: every problem reported at once as `file: source: field: problem`."""

from __future__ import annotations

import pytest
import yaml

from workers.core.sources import Extract, parse_sources
from workers.errors import ConfigError

ENV = {"SECRET": "s3", "WHSEC": "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="}


def load(text: str, env: dict[str, str] = ENV):  # noqa: ANN201
    return parse_sources(yaml.safe_load(text), env)


def problems(text: str, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return [str(p) for p in info.value.problems]


def test_env_references_are_resolved() -> None:
    sources = load("sources: {shop: {verify: {scheme: shopify, secret: '${SECRET}'}}}")
    assert sources["shop"].verify.secrets == ("s3",)


def test_missing_env_variable_is_named() -> None:
    assert problems("sources: {shop: {verify: {scheme: shopify, secret: '${NOPE}'}}}") == [
        "sources.yaml: shop: verify.secret: environment variable NOPE is not set"
    ]


def test_every_problem_is_reported_at_once_with_source_and_field() -> None:
    found = problems(
        """
sources:
  a: {verify: {scheme: shopfy, secret: x}}
  b: {verify: {scheme: github}}
  c: {verify: {scheme: bearer, secret: t}, event_typ: {header: X}}
  d: {verify: {scheme: hmac-sha256, secret: s}}
"""
    )
    assert any(p.startswith("sources.yaml: a: verify.scheme: Must be one of") for p in found)
    assert "sources.yaml: b: verify.secret: github needs a secret" in found
    assert "sources.yaml: c: event_typ: unknown key (check its spelling)" in found
    assert any(p.startswith("sources.yaml: d: verify.header: hmac-sha256 needs the header") for p in found)


def test_line_numbers_are_given_when_known() -> None:
    text = "sources:\n  shop:\n    verify: {scheme: nope, secret: x}\n"
    data = yaml.safe_load(text)
    with pytest.raises(ConfigError) as info:
        parse_sources(data, ENV, lines={("sources", "shop", "verify", "scheme"): 3})
    assert str(info.value.problems[0]).startswith("sources.yaml:3: shop: verify.scheme:")


def test_standard_webhooks_secret_must_be_whsec() -> None:
    assert problems("sources: {cal: {verify: {scheme: standard-webhooks, secret: plain}}}") == [
        "sources.yaml: cal: verify.secret: standard-webhooks secrets start with whsec_"
    ]


def test_password_on_a_scheme_that_does_not_read_it_is_a_problem_not_a_crash() -> None:
    assert problems("sources: {a: {verify: {scheme: bearer, secret: t, password: p}}}") == [
        "sources.yaml: a: verify.password: bearer takes secret, not password (password is for basic)"
    ]


def test_svix_secret_must_be_whsec() -> None:
    assert problems("sources: {sv: {verify: {scheme: svix, secret: plain}}}") == [
        "sources.yaml: sv: verify.secret: svix secrets start with whsec_"
    ]
    assert load("sources: {sv: {verify: {scheme: svix, secret: '${WHSEC}'}}}")["sv"].event_id == \
        Extract(header="svix-id")


def test_calendly_defaults_to_the_event_field_and_needs_its_signing_key() -> None:
    source = load("sources: {cal: {verify: {scheme: calendly, secret: k}}}")["cal"]
    assert source.event_type == Extract(path="event") and source.event_id is None
    assert problems("sources: {cal: {verify: {scheme: calendly}}}") == [
        "sources.yaml: cal: verify.secret: calendly needs a secret"
    ]


def test_slack_defaults_to_the_event_id_and_the_inner_event_type() -> None:
    source = load("sources: {sl: {verify: {scheme: slack, secret: k}}}")["sl"]
    callback = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
    assert source.event_id is not None
    assert source.event_id.read({}, callback) == "Ev1"
    assert source.event_type.read({}, callback) == "app_mention"
    assert source.event_type.read({}, {"type": "url_verification", "challenge": "c"}) == "url_verification"


def test_calcom_defaults_to_the_trigger_event() -> None:
    source = load("sources: {cal: {verify: {scheme: calcom, secret: k}}}")["cal"]
    assert source.event_type == Extract(path="triggerEvent") and source.event_id is None


def test_secrets_list_for_rotation() -> None:
    sources = load("sources: {gh: {verify: {scheme: github, secrets: ['${SECRET}', old]}}}")
    assert sources["gh"].verify.secrets == ("s3", "old")


def test_scheme_defaults_for_event_id_and_type() -> None:
    sources = load(
        """
sources:
  gh: {verify: {scheme: github, secret: x}}
  st: {verify: {scheme: stripe, secret: x}}
  cal: {verify: {scheme: standard-webhooks, secret: '${WHSEC}'}, event_type: {path: type}}
"""
    )
    assert sources["gh"].event_id == Extract(header="X-GitHub-Delivery")
    assert sources["gh"].event_type == Extract(header="X-GitHub-Event")
    assert sources["st"].event_type == Extract(path="type")
    assert sources["cal"].event_id == Extract(header="webhook-id")


def test_extract_needs_exactly_one_way() -> None:
    found = problems("sources: {a: {verify: {scheme: none}, event_type: {header: X, path: y}}}")
    assert found == ["sources.yaml: a: event_type: give exactly one of header, path or value"]


def test_bad_payload_schema_is_reported() -> None:
    found = problems("sources: {a: {verify: {scheme: none}, schema: {type: objekt}}}")
    assert found[0].startswith("sources.yaml: a: schema: not a valid JSON Schema")


def test_payload_errors_name_the_path() -> None:
    sources = load("sources: {a: {verify: {scheme: none}, schema: {type: object, required: [id]}}}")
    assert sources["a"].payload_errors({"x": 1}) == ["(root): 'id' is a required property"]
    assert sources["a"].payload_errors({"id": 1}) == []


def test_extract_reads_header_path_or_constant() -> None:
    body = {"data": {"kind": "x"}, "list": [1]}
    assert Extract(header="X-T").read({"X-T": "a"}, body) == "a"
    assert Extract(path="data.kind").read({}, body) == "x"
    assert Extract(path="list").read({}, body) is None
    assert Extract(value="order").read({}, body) == "order"
    assert Extract(path="join('.', list)").read({}, body) is None  # join() of a number: no value, not an error
