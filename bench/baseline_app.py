"""Baseline for the ingest benchmark: a Flask endpoint that only parses the JSON body and enqueues an RQ job."""

import os

import redis
from flask import Flask, jsonify, request
from rq import Queue


def create_app() -> Flask:
    app = Flask(__name__)
    queue = Queue("bench-baseline", connection=redis.Redis.from_url(os.environ["REDIS_URL"]))

    @app.post("/hooks/<source>")
    def enqueue(source: str):  # noqa: ANN202
        payload = request.get_json()
        job = queue.enqueue("builtins.len", [payload])
        return jsonify({"job_id": job.id}), 202

    return app
