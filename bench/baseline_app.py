"""Baseline for the ingest benchmark: a Flask endpoint that only parses the JSON body and enqueues an RQ job.

It runs behind the same WSGI wrapper as Hookline (`webhooks.bodies.BoundedBodies`: bodies read whole, at most 32
requests in the app per worker), so both apps are served the same way; unwrapped under gevent workers, a
thousand connections at once exhaust redis-py's connection pool ("Too many connections").
"""

import os

import redis
from flask import Flask, jsonify, request
from rq import Queue

from webhooks.bodies import BoundedBodies


def create_app() -> Flask:
    app = Flask(__name__)
    queue = Queue("bench-baseline", connection=redis.Redis.from_url(os.environ["REDIS_URL"]))

    @app.post("/hooks/<source>")
    def enqueue(source: str):  # noqa: ANN202
        payload = request.get_json()
        job = queue.enqueue("builtins.len", [payload])
        return jsonify({"job_id": job.id}), 202

    app.wsgi_app = BoundedBodies(app.wsgi_app, 1024 * 1024)  # type: ignore[method-assign]
    return app
