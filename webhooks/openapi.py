"""The OpenAPI 3.1 document of the HTTP surface (`GET /api/openapi.json`), generated with apispec from the
marshmallow schemas in `webhooks.schemas` and the app's own URL rules.

Every route of the app is listed (the `/ui/` pages, HTML for people with forms and CSRF tokens, are left out;
so is Flask's static route): paths, methods and path parameters come from `app.url_map`, what each operation
reads and answers from `OPERATIONS` below, its summary from the view's docstring. A route missing from
`OPERATIONS` fails `tests/webhooks/test_openapi.py`. Owns the document only; no view lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import Rule

from webhooks import schemas as s

UNDOCUMENTED = ("/ui/", "/static/")
"""Route prefixes left out of the document: the operator pages and static files."""

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad request", 401: "No or wrong credential",
                403: "Forbidden", 404: "Not found", 409: "Conflict", 413: "Body too large",
                415: "Unsupported media type", 422: "Unprocessable", 503: "Unavailable; try again"}
_JSON = "application/json"
_ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


@dataclass(frozen=True)
class Op:
    """What one operation reads and answers: `ok` maps a success status to its schema (None: plain text)."""

    ok: dict[int, type[Schema] | dict[str, Any] | None]
    errors: tuple[int, ...] = ()
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    token: bool = True  # needs the API bearer token (adds 401)
    forms: bool = False  # also reads form-encoded bodies
    free_body: bool = False  # a body of any JSON (a webhook)
    extra_query: tuple[dict[str, Any], ...] = field(default=())


_PUSH = Op({200: s.PushQueued}, (400, 401, 403, 503), token=False, forms=True,
           extra_query=({"in": "query", "name": "token", "schema": {"type": "string"},
                         "description": "the receipt token, when not in the path"},))

OPERATIONS: dict[str, dict[str, Op]] = {
    "ingest.receive": {"post": Op({202: s.Accepted, 200: s.Accepted}, (400, 401, 404, 413, 415, 422, 503),
                                  token=False, forms=True, free_body=True)},
    "api.openapi_document": {"get": Op({200: {"type": "object", "required": ["openapi", "paths"]}}, token=False)},
    "api.list_events": {"get": Op({200: s.EventPage}, (400, 503), query=s.EventListArgs)},
    "api.get_event": {"get": Op({200: s.EventDetail}, (400, 404, 503), query=s.RevealArgs)},
    "api.list_messages": {"get": Op({200: s.MessagePage}, (400, 503), query=s.MessageListArgs)},
    "api.get_message": {"get": Op({200: s.MessageDetail}, (400, 404, 503), query=s.RevealArgs)},
    "api.list_optouts": {"get": Op({200: s.Optouts}, (400, 503), query=s.RevealArgs)},
    "api.add_optout": {"post": Op({201: s.OptoutChange}, (400, 422, 503), query=s.RevealArgs, body=s.OptoutBody)},
    "api.remove_optout": {"delete": Op({200: s.OptoutChange}, (400, 404, 503), query=s.RevealArgs)},
    "api.list_approvals": {"get": Op({200: s.Approvals}, (400, 503), query=s.ApprovalArgs)},
    "api.decide_one": {"post": Op({200: s.Decisions}, (404, 409, 503), body=s.DecisionBody)},
    "api.decide_bulk": {"post": Op({200: s.Decisions}, (400, 404, 503), body=s.BulkDecisionBody)},
    "health.healthz": {"get": Op({200: s.Health}, token=False)},
    "health.readyz": {"get": Op({200: s.Ready, 503: s.Ready}, token=False)},
    "metrics.metrics": {"get": Op({200: None}, (503,))},
    "clicksend_push.receipts": {"post": _PUSH},
    "clicksend_push.inbound": {"post": _PUSH},
}

_ARG = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<opts>[^)]*)\))?:)?(?P<name>\w+)>")


def documented_rules(app: Flask) -> list[Rule]:
    """The app's URL rules that the document lists."""
    return [r for r in app.url_map.iter_rules() if not r.rule.startswith(UNDOCUMENTED) and r.endpoint != "static"]


def build(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of `app`'s routes."""
    plugin = MarshmallowPlugin()
    spec = APISpec(title="Hookline", version="1", openapi_version="3.1.0", plugins=[plugin],
                   info={"description": "Webhooks in, SMS/MMS/voice out through ClickSend: the ingest edge, the "
                                        "operator API (bearer token), health, metrics and ClickSend's pushes. "
                                        "Times are ISO-8601 with offset; phone numbers are masked unless "
                                        "`reveal=1`; every error is `{\"error\", \"message\"}`."})
    plugin.map_to_openapi_type(s.Time, "string", "date-time")  # type: ignore[no-untyped-call]
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for rule in sorted(documented_rules(app), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        summary = (view.__doc__ or rule.endpoint).strip().splitlines()[0]
        path, params = _path(rule.rule)
        operations = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = OPERATIONS[rule.endpoint][method.lower()]
            operations[method.lower()] = _operation(op, summary, params, f"{rule.endpoint}:{rule.rule}:{method}")
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """A Flask rule as an OpenAPI path template, with its path parameters."""
    params = []
    for m in _ARG.finditer(rule):
        schema: dict[str, Any] = {"type": "string"}
        if m["conv"] == "any":
            schema["enum"] = [o.strip() for o in (m["opts"] or "").split(",")]
        params.append({"in": "path", "name": m["name"], "required": True, "schema": schema})
    return _ARG.sub(lambda m: "{" + m["name"] + "}", rule), params


def _operation(op: Op, summary: str, path_params: list[dict[str, Any]], op_id: str) -> dict[str, Any]:
    """One operation object."""
    params: list[Any] = [*path_params, *op.extra_query]
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    out: dict[str, Any] = {"summary": summary, "operationId": re.sub(r"[^A-Za-z0-9_]+", "_", op_id).strip("_"),
                           "parameters": params, "responses": {}}
    if op.token:
        out["security"] = [{"bearer": []}]
    if op.body is not None or op.free_body or op.forms:
        body_schema: Any = op.body if op.body is not None else _ANY_OBJECT
        content = {_JSON: {"schema": {} if op.free_body else body_schema}}
        if op.forms:
            content["application/x-www-form-urlencoded"] = {"schema": _ANY_OBJECT}
        out["requestBody"] = {"required": op.free_body, "content": content}
    for status, schema in op.ok.items():
        media = {_JSON: {"schema": schema}} if schema is not None else {"text/plain": {"schema": {"type": "string"}}}
        out["responses"][str(status)] = {"description": _STATUS_TEXT.get(status, "OK"), "content": media}
    for status in sorted({*op.errors, *((401,) if op.token else ())}):
        out["responses"][str(status)] = {"description": _STATUS_TEXT[status],
                                         "content": {_JSON: {"schema": s.Error}}}
    return out
