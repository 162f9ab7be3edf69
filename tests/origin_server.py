"""A small origin server for tests: records every callback, verifies it with the standardwebhooks library,
and answers from a script (e.g. 500, then 429 with Retry-After, then 200)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks
from flask import Flask, Response, request


@dataclass
class Origin:
    """What the origin received and how it answers."""

    secret: str
    url: str = ""
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    answer: bytes = b"{}"  # the body of every answer, sent `repeat` times over as a stream
    repeat: int = 1
    echo: bool = False  # answer with the request's headers and body instead, as httpbin's /anything does
    sent_bytes: int = 0  # how much of the answers' bodies went out before the caller stopped reading
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("origin")

        @app.route("/<path:path>", methods=["POST", "PUT", "PATCH"])
        def receive(path: str) -> Response:
            body = request.get_data()
            try:
                standardwebhooks.Webhook(self.secret).verify(body, dict(request.headers))
                verified = True
            except standardwebhooks.webhooks.WebhookVerificationError:
                verified = False
            with self.lock:
                status, headers = self.script.pop(0) if self.script else (200, {})
                self.received.append({"path": "/" + path, "method": request.method, "verified": verified,
                                      "json": json.loads(body or b"null"), "headers": dict(request.headers),
                                      "answered": status})
            answer = json.dumps({"headers": dict(request.headers), "data": body.decode()}).encode() if self.echo \
                else self.answer
            return Response(self._stream(answer), status=status, headers=headers, mimetype="application/json")

        return app

    def _stream(self, answer: bytes) -> Iterator[bytes]:
        for _ in range(self.repeat):
            yield answer  # a write to a caller that hung up raises here, and the stream stops
            with self.lock:
                self.sent_bytes += len(answer)

    def delivered(self) -> list[dict[str, Any]]:
        """Callbacks answered with 2xx."""
        with self.lock:
            return [r for r in self.received if 200 <= r["answered"] < 300]
