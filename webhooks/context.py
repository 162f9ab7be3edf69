"""What a request can reach: the web context (settings, store, rules, enqueuer), and the JSON error reply.

The web edge verifies, stores and hands over; it holds no ClickSend client and runs no flow step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import redis
from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from workers.core.events import decode_json
from workers.store import Store
from workers.wiring import logs
from workers.wiring.connections import open_store, rq_connection
from workers.wiring.pipeline import Enqueuer
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import Settings


class Parts(Protocol):
    """What the web app is built on: its own `WebContext`, or a workers runtime in tests."""

    settings: Settings
    store: Store
    rules: RulesDir

    @property
    def enqueuer(self) -> Enqueuer: ...


@dataclass
class WebContext:
    """The web process's collaborators, built once by `create_app`."""

    settings: Settings
    store: Store
    rules: RulesDir
    rq_connection: redis.Redis

    @property
    def enqueuer(self) -> Enqueuer:
        """The one way the edge hands work over."""
        return Enqueuer(self.rq_connection, self.store.outbox)

    @classmethod
    def build(cls, settings: Settings) -> WebContext:
        """Connect to Redis and load the rules directory (a bad directory is reported, not fatal)."""
        logs.configure(settings)
        rules = RulesDir(settings.rules_dir, settings)
        rules.reload()
        return cls(settings, open_store(settings), rules, rq_connection(settings))


def runtime() -> Parts:
    """The parts this app was built with."""
    parts: Parts = current_app.extensions["hookline"]
    return parts


def error(status: int, code: str, message: str, **extra: object) -> ResponseReturnValue:
    """The one error shape: `{"error": code, "message": text}` with the status."""
    return jsonify({"error": code, "message": message, **extra}), status


def json_object() -> dict[str, Any]:
    """The request's JSON body when it is an object; {} for no body, bad JSON (too deep included), any other
    JSON value, or a body that is not declared as JSON."""
    if not request.is_json:
        return {}
    try:
        body = decode_json(request.get_data(cache=True))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
