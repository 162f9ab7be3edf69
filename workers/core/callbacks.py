"""Callbacks to the originating system: compiled templates, rendering, which addresses are refused,
and what to do after each attempt.

Pure: no network; the caller resolves names and sends.
"""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from workers.core.sending import backoff
from workers.core.sources import Callback
from workers.core.templates import compile_template, render


@dataclass(frozen=True)
class CompiledCallback:
    """A source's callback with every template compiled once, at load."""

    spec: Callback
    url: jinja2.Template
    headers: dict[str, jinja2.Template] = field(default_factory=dict)
    body: Any = None  # the body structure with a compiled template at every string leaf


def compile_callback(env: SandboxedEnvironment, spec: Callback) -> CompiledCallback:
    """Compile the URL, header and body templates (raises jinja2.TemplateSyntaxError)."""

    def leaves(value: Any) -> Any:
        if isinstance(value, str):
            return compile_template(env, value)
        if isinstance(value, dict):
            return {k: leaves(v) for k, v in value.items()}
        if isinstance(value, list):
            return [leaves(v) for v in value]
        return value

    return CompiledCallback(spec, compile_template(env, spec.url),
                            {k: compile_template(env, v) for k, v in spec.headers.items()}, leaves(spec.body))


def default_body(context: dict[str, Any]) -> dict[str, Any]:
    """What a callback carries when the source gives no body template."""
    message = context["message"]
    body = {"type": f"message.{context['state']}", "event_id": message.get("event_id"),
            "message": {k: message.get(k) for k in ("id", "rule", "channel", "to", "state", "provider_id", "price",
                                                      "segments", "encoding", "key")}}
    if context.get("receipt"):
        body["receipt"] = context["receipt"]
    if context.get("reply"):
        body["reply"] = context["reply"]
    return body


def render_request(cb: CompiledCallback, context: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    """(method, url, headers, JSON body) for one callback. Raises RenderError naming the field."""

    def leaves(value: Any, where: str) -> Any:
        if isinstance(value, jinja2.Template):
            return render(value, context, where)
        if isinstance(value, dict):
            return {k: leaves(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [leaves(v, where) for v in value]
        return value

    url = render(cb.url, context, "callback.url")
    headers = {k: render(t, context, f"callback.headers.{k}") for k, t in cb.headers.items()}
    body = leaves(cb.body, "callback.body") if cb.body is not None else default_body(context)
    return cb.spec.method, url, headers, json.dumps(body, separators=(",", ":"), default=str).encode()


ANSWER_READ = 4096  # bytes of an origin's answer read at most: the rest is never downloaded
ANSWER_KEPT = 1000  # characters of it kept with the attempt
MIN_SECRET = 8  # shorter header words (`Bearer`, `json`) are not worth hiding, and would hide ordinary text
REDACTED = "[redacted]"


def request_secrets(spec: Callback, headers: dict[str, str]) -> tuple[str, ...]:
    """What the request carried that its answer must not show back: the signing secret (and the key inside a
    `whsec_` one), and every header value the source set, whole and word by word (`Bearer <token>`)."""
    found = {spec.secret or ""}
    if spec.secret and spec.secret.startswith("whsec_"):
        found.add(spec.secret.removeprefix("whsec_"))
    for value in headers.values():
        found.add(value)
        found.update(value.split())
    # The longest first, so a token inside a longer header value is not left half-replaced.
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True))


def answer_excerpt(body: bytes, secrets: Iterable[str], cut: bool) -> str:
    """The start of an origin's answer as kept with the attempt: decoded (bad bytes replaced), each of
    `secrets` replaced by `[redacted]`, at most ANSWER_KEPT characters, ending in `…` when there was more
    (`cut`: the read stopped before the end)."""
    text = body.decode("utf-8", errors="replace")
    for secret in secrets:
        text = text.replace(secret, REDACTED)
        if cut:  # a secret the read stopped in the middle of leaves its start at the end
            text = next((text[:-k] + REDACTED for k in range(len(secret) - 1, 3, -1)
                         if text.endswith(secret[:k])), text)
    if cut or len(text) > ANSWER_KEPT:
        return text[:ANSWER_KEPT] + "…"
    return text


def forbidden_address(address: str) -> str | None:
    """Why a callback may not go to `address` without `allow_private` (None when it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind, test in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                       ("link-local", ip.is_link_local),
                       ("private", ip.is_private), ("multicast", ip.is_multicast),
                       ("reserved", ip.is_reserved)):
        if test:
            return f"{address} is a {kind} address"
    return None


@dataclass(frozen=True)
class NextStep:
    """After an attempt: `delivered`, `retry` after `delay`, or give up as `failed` / `exhausted`."""

    status: str
    reason: str
    delay: float = 0.0


def after_attempt(http_status: int | None, error: str | None, attempt: int, age: float, spec: Callback,
                  retry_after: float | None = None, rand: random.Random | None = None) -> NextStep:
    """Decide what follows one attempt: 2xx delivered; 410 stops for good; other 4xx (but 408/429) are not
    retried; 5xx, 408, 429 and network errors retry with backoff (honouring Retry-After) within the budget."""
    if http_status is not None and 200 <= http_status < 300:
        return NextStep("delivered", f"HTTP {http_status}")
    if http_status == 410:
        return NextStep("failed", "HTTP 410 Gone: the origin asked us to stop")
    if http_status is not None and 400 <= http_status < 500 and http_status not in (408, 429):
        return NextStep("failed", f"HTTP {http_status}: not retried")
    reason = error or f"HTTP {http_status}"
    if attempt >= spec.max_attempts:
        return NextStep("exhausted", f"{reason}; gave up after {attempt} attempts")
    delay = retry_after if retry_after is not None else backoff(attempt, 2.0, 900.0, rand)
    if age + delay > spec.max_age:
        return NextStep("exhausted", f"{reason}; gave up: older than {spec.max_age:.0f}s")
    return NextStep("retry", reason, delay)
