"""Bearer-token guard for operator APIs (`HOOKLINE_API_TOKEN`), compared in constant time."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from flask import request

from webhooks.context import error, runtime


def token_ok(given: str | None) -> bool:
    """True when `given` equals the configured API token (never when none is configured)."""
    expected = runtime().settings.api_token
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_ok() -> bool:
    """True when this request carries `Authorization: Bearer <the API token>`."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_ok(token.strip())


def require_token(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 401, with no hint why, unless the request carries `Authorization: Bearer <token>`."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not bearer_ok():
            return error(401, "unauthorized", "a valid API token is required")
        return view(*args, **kwargs)

    return wrapped
