"""The provider catalog: one `Provider` entry per product that sends webhooks, as data.

A source that says `provider: calcom` gets that entry's verification (a scheme from `workers.core.schemes` with
its fixed options), where its event id and type live, its replay window, its body format, its dedupe window,
and its schema; anything the entry sets the source may still override. This module owns only that data and
the lookups over it; the verifiers are the registry's, and turning an entry into a `Source` is `sources`'.
Pure: no I/O, no clock, nothing of Hookline's but the scheme types.

To add a provider: one `Provider(...)` below (its scheme must be in the registry; add one there first if none
fits), and its signer and request in tests/webhooks/test_providers_edge.py, which fails until every entry has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from workers.core.schemes.base import Where

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


@dataclass(frozen=True)
class Provider:
    """One sender: how it authenticates and how its deliveries read, and what a person needs to set it up."""

    name: str  # what a source writes as `provider:`
    title: str  # the product's own name
    scheme: str  # a registry scheme
    authenticates: str  # one line: how a request proves it came from the provider
    secret_name: str  # what the secret is called in the provider's own settings
    event_types: tuple[str, ...]  # the types it documents (empty: the sender defines its own)
    docs: str  # where the provider documents its webhooks and their signature
    options: tuple[tuple[str, str], ...] = ()  # fixed `verify:` options of the scheme (header, prefix…)
    event_id: Where | None = None  # None: the scheme's default, else the body's digest
    event_type: Where | None = None  # None: the scheme's default
    # A replay window this provider's sender demands instead of HOOKLINE_SIGNATURE_TOLERANCE; None (every entry
    # today): the setting's, so one knob governs every signed timestamp. A source's `tolerance:` beats both.
    tolerance: float | None = None
    body: str = "json"  # json | form (application/x-www-form-urlencoded)
    dedupe_window: float | None = None  # None: HOOKLINE_DEDUPE_WINDOW
    needs: tuple[str, ...] = ()  # source options the provider cannot work without (url)
    keep_headers: tuple[str, ...] = ()
    schema: Mapping[str, Any] | None = None
    handshake: Handshake | None = None  # a check the provider sends to an endpoint, answered instead of stored


@dataclass(frozen=True)
class Handshake:
    """A request a provider sends to prove an endpoint is theirs before it delivers anything (Slack's
    `url_verification`): answered 200 with one field of its body echoed back, and never stored as an event.

    It is recognised by the event type the source reads, after the request's signature was verified.
    """

    event_type: str  # the type such a request has
    echo: str  # the body field sent back, under the same name

    def answer(self, event_type: str, payload: Any) -> dict[str, str] | None:
        """The JSON answer for a request of `event_type` with `payload`; None when it is not this handshake."""
        if event_type != self.event_type or not isinstance(payload, dict):
            return None
        value = payload.get(self.echo)
        return {self.echo: value} if isinstance(value, str) and value else None


def _frozen(schema: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(schema)


_ALERT_WINDOW = MINUTE
# Alertmanager and Grafana retry a failed notification within seconds; a still-firing alert is notified again
# only after repeat_interval (minutes to hours), byte for byte the same. A minute tells the two apart.

_ENTRIES = (
    Provider(
        "shopify", "Shopify", "shopify",
        authenticates="X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the body",
        secret_name="the app's client secret (or the key shown under Settings > Notifications > Webhooks)",
        event_types=("orders/create", "orders/paid", "orders/fulfilled", "orders/cancelled", "orders/updated",
                     "fulfillments/create", "fulfillments/update", "refunds/create"),
        docs="https://shopify.dev/docs/apps/build/webhooks",
        # X-Shopify-Webhook-Id is the same on every retry; Shopify retries for hours.
        dedupe_window=2 * DAY,
        keep_headers=("X-Shopify-Shop-Domain",),
    ),
    Provider(
        "stripe", "Stripe", "stripe",
        authenticates="Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
        secret_name="the endpoint's Signing secret (whsec_...) under Developers > Webhooks",
        event_types=("payment_intent.succeeded", "payment_intent.payment_failed", "invoice.paid",
                     "invoice.payment_failed", "charge.refunded", "checkout.session.completed",
                     "customer.subscription.deleted"),
        docs="https://docs.stripe.com/webhooks",
        dedupe_window=3 * DAY,  # Stripe retries a live-mode event for up to three days; the event id stays
    ),
    Provider(
        "github", "GitHub", "github",
        authenticates="X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>",
        secret_name="the webhook's Secret",
        event_types=("push", "pull_request", "issues", "release", "workflow_run", "check_suite", "ping"),
        docs="https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries",
        dedupe_window=3 * DAY,  # a redelivery (allowed for three days) keeps its X-GitHub-Delivery
    ),
    Provider(
        "gitlab", "GitLab", "gitlab",
        authenticates="X-Gitlab-Token: the secret token itself (GitLab signs nothing)",
        secret_name="the webhook's Secret token",
        event_types=("Push Hook", "Tag Push Hook", "Issue Hook", "Merge Request Hook", "Pipeline Hook",
                     "Job Hook", "Deployment Hook", "Release Hook"),
        docs="https://docs.gitlab.com/user/project/integrations/webhooks/",
    ),
    Provider(
        "slack", "Slack", "slack",
        authenticates="X-Slack-Signature: v0=<hex HMAC-SHA256 of 'v0:<X-Slack-Request-Timestamp>:<body>'>",
        secret_name="the app's Signing Secret (Basic Information > App Credentials)",
        event_types=("url_verification", "app_mention", "message", "reaction_added", "team_join"),
        docs="https://docs.slack.dev/authentication/verifying-requests-from-slack",
        # Slack checks a new Events API Request URL with a signed url_verification and enables it only once
        # the challenge comes back (docs.slack.dev "url_verification event"): answered, never an event.
        handshake=Handshake("url_verification", "challenge"),
    ),
    Provider(
        "twilio", "Twilio", "twilio",
        authenticates="X-Twilio-Signature: base64 HMAC-SHA1 of the URL and the sorted form parameters",
        secret_name="the account's Auth Token (Console > Account Info)",
        event_types=("received", "queued", "sent", "delivered", "undelivered", "failed", "ringing", "in-progress",
                     "completed", "busy", "no-answer"),
        docs="https://www.twilio.com/docs/usage/webhooks/webhooks-security",
        body="form",
        needs=("url",),
    ),
    Provider(
        "calendly", "Calendly", "calendly",
        authenticates="Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
        secret_name="the signing_key given when the webhook subscription is created",
        event_types=("invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted",
                     "routing_form_submission.created"),
        docs="https://developer.calendly.com/api-docs/webhook-signatures",
        # No delivery id: an event is its type and the invitee it is about (one created, one canceled each).
        event_id=Where(path="join(' ', [event, payload.uri])"),
    ),
    Provider(
        "calcom", "Cal.com", "calcom",
        authenticates="X-Cal-Signature-256: hex HMAC-SHA256 of the body",
        secret_name="the webhook's Secret (Settings > Developer > Webhooks)",
        event_types=("BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED", "BOOKING_REQUESTED",
                     "BOOKING_REJECTED", "BOOKING_PAID", "MEETING_STARTED", "MEETING_ENDED"),
        docs="https://cal.com/docs/developing/guides/automation/webhooks",
        keep_headers=("x-cal-webhook-version",),
        schema=_frozen({"type": "object", "required": ["triggerEvent", "payload"]}),
    ),
    Provider(
        "pagerduty", "PagerDuty", "hmac-sha256",
        authenticates="X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>, one per secret while rotating",
        secret_name="the webhook subscription's Secret (shown once, when it is created)",
        event_types=("incident.triggered", "incident.acknowledged", "incident.resolved", "incident.escalated",
                     "incident.reassigned", "incident.annotated", "pagey.ping"),
        docs="https://developer.pagerduty.com/docs/webhooks/v3-overview/",
        options=(("header", "X-PagerDuty-Signature"), ("prefix", "v1="), ("encoding", "hex")),
        event_id=Where(path="event.id"),
        event_type=Where(path="event.event_type"),
    ),
    Provider(
        "standard-webhooks", "Standard Webhooks", "standard-webhooks",
        authenticates="webhook-signature: v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>",
        secret_name="the endpoint's signing secret (whsec_...)",
        event_types=(),
        docs="https://www.standardwebhooks.com/",
        event_type=Where(path="type"),  # the spec's payload structure: {"type", "timestamp", "data"}
    ),
    Provider(
        "svix", "Svix", "svix",
        authenticates="svix-signature: v1,<base64 HMAC-SHA256 of '<svix-id>.<svix-timestamp>.<body>'>",
        secret_name="the endpoint's Signing Secret (whsec_...)",
        event_types=(),
        docs="https://docs.svix.com/receiving/verifying-payloads/how-manual",
        event_type=Where(path="type"),  # Svix messages carry their eventType as the payload's `type`
    ),
    Provider(
        "alertmanager", "Prometheus Alertmanager", "bearer",
        authenticates="Authorization: Bearer <token> (Alertmanager signs nothing)",
        secret_name="the receiver's webhook_configs http_config.authorization.credentials",
        event_types=("firing", "resolved"),
        docs="https://prometheus.io/docs/alerting/latest/configuration/#webhook_config",
        event_type=Where(path="status"),
        dedupe_window=_ALERT_WINDOW,
        schema=_frozen({
            "type": "object",
            "required": ["version", "status", "alerts"],
            "properties": {"version": {"const": "4"}, "status": {"enum": ["firing", "resolved"]},
                           "alerts": {"type": "array"}},
        }),
    ),
    Provider(
        "grafana", "Grafana Alerting", "bearer",
        authenticates="Authorization: Bearer <token>",
        secret_name="the webhook contact point's Authorization Header - Credentials (Optional Webhook settings)",
        event_types=("firing", "resolved"),
        docs="https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/"
             "integrations/webhook-notifier/",
        event_type=Where(path="status"),
        dedupe_window=_ALERT_WINDOW,
        schema=_frozen({"type": "object", "required": ["status", "alerts"],
                        "properties": {"status": {"enum": ["firing", "resolved"]}, "alerts": {"type": "array"}}}),
    ),
    Provider(
        "square", "Square", "square",
        authenticates="x-square-hmacsha256-signature: base64 HMAC-SHA256 of the notification URL + body",
        secret_name="the webhook subscription's Signature key (Developer Console > Webhooks)",
        event_types=("payment.created", "payment.updated", "order.created", "order.updated", "refund.created",
                     "invoice.payment_made"),
        docs="https://developer.squareup.com/docs/webhooks/step3validate",
        needs=("url",),
    ),
    Provider(
        "typeform", "Typeform", "typeform",
        authenticates="Typeform-Signature: sha256=<base64 HMAC-SHA256 of the body>",
        secret_name="the webhook's Secret (Connect > Webhooks > Edit)",
        event_types=("form_response",),
        docs="https://www.typeform.com/developers/webhooks/secure-your-webhooks/",
    ),
    Provider(
        "woocommerce", "WooCommerce", "woocommerce",
        authenticates="X-WC-Webhook-Signature: base64 HMAC-SHA256 of the body",
        secret_name="the webhook's Secret (WooCommerce > Settings > Advanced > Webhooks)",
        event_types=("order.created", "order.updated", "order.deleted", "order.restored", "product.created",
                     "product.updated", "customer.created", "coupon.created"),
        docs="https://woocommerce.com/document/webhooks/",
        keep_headers=("X-WC-Webhook-Source",),
    ),
)

CATALOG: Mapping[str, Provider] = MappingProxyType({provider.name: provider for provider in _ENTRIES})
if len(CATALOG) != len(_ENTRIES):  # two entries with one name: the second would silently win
    raise RuntimeError("duplicate provider names in the catalog")


def names() -> tuple[str, ...]:
    """Every provider name, in catalog order."""
    return tuple(CATALOG)


def get(name: str) -> Provider | None:
    """The provider called `name`, or None when there is none."""
    return CATALOG.get(name)
