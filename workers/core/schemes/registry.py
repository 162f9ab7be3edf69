"""The registry: one `Scheme` entry per signature scheme, holding its verifier, config checks and defaults.

This is the only list of schemes: `sources.yaml` validation, event id/type defaults and request verification
all read it, so a scheme cannot be known to one and missing from another. Pure.

To add a scheme: write (or reuse) a verifier in a family module (`hmac`, `standard`, `tokens`), add one
`Scheme(...)` below, and add its signer and minimal config to tests/core/test_schemes.py (which fails until
every entry has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from workers.core.schemes import hmac, standard, tokens, urlsigned
from workers.core.schemes.base import (
    Defaults,
    Scheme,
    Where,
    needs_credentials,
    needs_header,
    needs_secret,
    needs_url,
    whsec_secrets,
)

_ENTRIES = (
    Scheme(
        "standard-webhooks",
        standard.standard_webhooks,
        checks=(needs_secret, whsec_secrets),
        defaults=Defaults(event_id=Where(header="webhook-id")),
        signs_timestamp=True,
    ),
    Scheme(
        "svix",
        standard.svix,
        checks=(needs_secret, whsec_secrets),
        defaults=Defaults(event_id=Where(header="svix-id")),
        signs_timestamp=True,
    ),
    Scheme(
        "github",
        hmac.github,
        checks=(needs_secret,),
        defaults=Defaults(event_id=Where(header="X-GitHub-Delivery"), event_type=Where(header="X-GitHub-Event")),
    ),
    Scheme(
        "stripe",
        hmac.stripe,
        checks=(needs_secret,),
        defaults=Defaults(event_id=Where(path="id"), event_type=Where(path="type")),
        signs_timestamp=True,
    ),
    Scheme(
        "shopify",
        hmac.shopify,
        checks=(needs_secret,),
        defaults=Defaults(event_id=Where(header="X-Shopify-Webhook-Id"), event_type=Where(header="X-Shopify-Topic")),
    ),
    Scheme(
        "calendly",
        hmac.calendly,
        checks=(needs_secret,),
        # Calendly's body says what happened (`event: invitee.created`) but carries no delivery id.
        defaults=Defaults(event_type=Where(path="event")),
        signs_timestamp=True,
    ),
    Scheme(
        "slack",
        hmac.slack,
        checks=(needs_secret,),
        # Events API bodies: `event_id` is kept across Slack's retries; the inner event's type says what
        # happened, and the outer `type` names the envelopes that have none (url_verification).
        defaults=Defaults(event_id=Where(path="event_id"), event_type=Where(path="event.type || type")),
        signs_timestamp=True,
    ),
    Scheme(
        "calcom",
        hmac.calcom,
        checks=(needs_secret,),
        # Cal.com bodies name their trigger (`triggerEvent: BOOKING_CREATED`); there is no delivery id.
        defaults=Defaults(event_type=Where(path="triggerEvent")),
    ),
    Scheme(
        "gitlab",
        tokens.gitlab,
        checks=(needs_secret,),
        # Idempotency-Key (GitLab 17.4+) is the same on every retry of one delivery; older GitLab sends none,
        # and the body's digest stands in.
        defaults=Defaults(event_id=Where(header="Idempotency-Key"), event_type=Where(header="X-Gitlab-Event")),
    ),
    Scheme(
        "typeform",
        hmac.typeform,
        checks=(needs_secret,),
        defaults=Defaults(event_id=Where(path="event_id"), event_type=Where(path="event_type")),
    ),
    Scheme(
        "woocommerce",
        hmac.woocommerce,
        checks=(needs_secret,),
        defaults=Defaults(event_id=Where(header="X-WC-Webhook-Delivery-ID"),
                          event_type=Where(header="X-WC-Webhook-Topic")),
    ),
    Scheme(
        "square",
        urlsigned.square,
        checks=(needs_secret, needs_url),
        defaults=Defaults(event_id=Where(path="event_id"), event_type=Where(path="type")),
    ),
    Scheme(
        "twilio",
        urlsigned.twilio,
        checks=(needs_secret, needs_url),
        # Twilio's own delivery id, the same on its retries; the type is the status the form reports.
        defaults=Defaults(event_id=Where(header="I-Twilio-Idempotency-Token"),
                          event_type=Where(path="MessageStatus || SmsStatus || CallStatus")),
    ),
    Scheme("hmac-sha256", hmac.configured, checks=(needs_secret, needs_header), defaults=Defaults()),
    Scheme("bearer", tokens.bearer, checks=(needs_secret,), defaults=Defaults()),
    # Basic auth's secrets are its passwords.
    Scheme("basic", tokens.basic, checks=(needs_credentials,), defaults=Defaults(), secret_keys=("password",)),
    Scheme("none", tokens.none, checks=(), defaults=Defaults()),
)

REGISTRY: Mapping[str, Scheme] = MappingProxyType({scheme.name: scheme for scheme in _ENTRIES})
if len(REGISTRY) != len(_ENTRIES):  # two entries with one name: the second would silently win
    raise RuntimeError("duplicate scheme names in the registry")


def names() -> tuple[str, ...]:
    """Every registered scheme name, in registry order."""
    return tuple(REGISTRY)


def get(name: str) -> Scheme | None:
    """The scheme called `name`, or None when there is none."""
    return REGISTRY.get(name)
