"""Hookline's HTTP edge: the Flask app factory. Imports `workers` (never a flow step); is never imported by it."""

from __future__ import annotations

from flask import Flask

from webhooks import api, bodies, clicksend_push, errors, health, ingest, metrics, ui
from webhooks.context import Parts, WebContext
from workers.wiring.settings import Settings


def create_app(settings: Settings | None = None, runtime: Parts | None = None) -> Flask:
    """Build the web app. With no arguments, settings come from the environment (gunicorn, `hookline up`);
    tests may pass the parts (a workers runtime) so web and in-process workers share one set."""
    if runtime is None:
        runtime = WebContext.build(settings if settings is not None else Settings.from_env())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = runtime.settings.max_body
    # Every body is read whole and bounded before Flask sees it, whatever its framing (chunked included);
    # webhooks are then answered without Flask's request machinery, everything else goes on to Flask.
    app.wsgi_app = bodies.BoundedBodies(ingest.IngestEdge(app.wsgi_app, app),  # type: ignore[method-assign]
                                        runtime.settings.max_body)
    app.extensions["hookline"] = runtime
    errors.init_app(app)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(clicksend_push.bp)
    ui.init_app(app)
    return app
