"""What every `/v3` request passes before a resource sees it: injected latency, the credentials check, the
rate limit and random 500s (refused in ClickSend's envelope, or on the Maton stand-in's `/connections` in
Maton's own shape, a 429 with its Retry-After either way); and ClickSend-shaped answers for Flask's own HTTP
errors.

Owns the order of those checks and the credentials the app was started with; must not answer any resource.
"""

from __future__ import annotations

import base64
import hmac
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from workers.clicksend.sim.wire import envelope, state

CREDENTIALS_KEY = "simcredentials"  # app.extensions key holding the app's Credentials
# The control API and the health check need no ClickSend credentials; nor does ClickSend's country list.
OPEN_PATHS = ("/_sim/", "/healthz", "/v3/countries")
MATON_PATHS = ("/connections",)  # the stand-in for Maton's connection API (ctrl.maton.ai)


@dataclass(frozen=True)
class Credentials:
    """What callers must present: ClickSend's basic auth (`username`, `api_key`), Maton's form (`bearer`, and
    the `Maton-Connection` header when `connection` is set), or both. With none set anything is accepted."""

    username: str | None = None
    api_key: str | None = None
    bearer: str | None = None
    connection: str | None = None

    @property
    def open(self) -> bool:
        """No credentials configured: any basic or bearer auth is accepted (how tests and benchmarks run)."""
        return self.username is None and self.api_key is None and self.bearer is None


def credentials() -> Credentials:
    """The credentials of the app serving this request."""
    found: Credentials = current_app.extensions[CREDENTIALS_KEY]
    return found


def authorised(expected: Credentials) -> bool:
    """Whether this request's Authorization (and Maton-Connection) headers are acceptable.

    Once any credentials are configured only they pass: a form that was not configured is refused too.
    """
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if request.path.startswith(MATON_PATHS):  # Maton's own API: its key alone, no connection, no basic auth
        return scheme.lower() == "bearer" and bool(value) and (expected.open or (
            expected.bearer is not None and hmac.compare_digest(value.encode(), expected.bearer.encode())))
    if scheme.lower() == "bearer" and value:
        if expected.open:
            return True
        # A connection id, when configured, must be named: without it Maton would pick the account's oldest
        # connection, which may not be the one meant (a misconfiguration the simulator should show).
        connection = request.headers.get("Maton-Connection")
        return (expected.bearer is not None and hmac.compare_digest(value.encode(), expected.bearer.encode())
                and (expected.connection is None or connection == expected.connection))
    if scheme.lower() == "basic" and value:
        try:
            user, _, key = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if not (user and key):
            return False
        if expected.open:
            return True
        return (expected.username is not None and expected.api_key is not None and user == expected.username
                and hmac.compare_digest(key.encode(), expected.api_key.encode()))
    return False


def before_request() -> Response | None:
    """Latency first (a slow ClickSend is slow for everyone), then auth, then the rate limit and 500s."""
    if request.path.startswith(OPEN_PATHS):
        return None
    sim = state()
    f = sim.faults
    if f.latency:
        time.sleep(f.latency)
    if not authorised(credentials()):
        if request.path.startswith(MATON_PATHS):
            return _refusal(401, "UNAUTHORIZED", "Invalid API key.")
        return envelope(401, "UNAUTHORIZED", "Invalid credentials.")
    wait = sim.rate_limited()
    if wait is not None or sim.chance(f.rate_429, "429"):
        sim.count_call("429")
        response = _refusal(429, "TOO_MANY_REQUESTS", "Too many requests.")
        response.headers["Retry-After"] = str(int(wait or 1))
        return response
    if sim.chance(f.rate_500, "500"):
        sim.count_call("500")
        return _refusal(500, "INTERNAL_SERVER_ERROR", "Simulated failure.")
    return None


def _refusal(status: int, code: str, message: str) -> Response:
    """A refusal in the shape of the API asked: Maton's own (`{"error", "message"}`) or ClickSend's envelope."""
    if not request.path.startswith(MATON_PATHS):
        return envelope(status, code, message)
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    return response


def http_error(exc: HTTPException) -> Response:
    """Flask's 404/405/400 in ClickSend's envelope."""
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_FOUND", 400: "BAD_REQUEST"}.get(exc.code or 500, "ERROR")
    return envelope(exc.code or 500, code, exc.description or exc.name)


def install(app: Flask, expected: Credentials) -> None:
    """Put the gate and the error handler on `app`."""
    app.extensions[CREDENTIALS_KEY] = expected
    app.before_request(before_request)
    app.register_error_handler(HTTPException, http_error)
