"""The `sources.yaml` model: who may send events, how to trust them, and how to read their id and type.

A source either spells out `verify:` or names a `provider:` from `workers.core.providers`, whose preset fills
in verification, id, type, replay window, body format, dedupe window and schema; the source's own keys win.
Pure: takes already-parsed YAML data and an environment mapping; never reads files or `os.environ`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jmespath
import jsonschema
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from workers.core import envrefs, providers, schemes
from workers.core.fields import Duration, StrOrList
from workers.core.lifecycle import REPORTED
from workers.core.schemes import Verify, Where
from workers.core.schemes.base import SECRET_KEYS
from workers.errors import ConfigError, Problem

__all__ = ["BODY_FORMATS", "SCHEMES", "Callback", "Extract", "Source", "Verify", "flatten_errors", "nearest_line",
           "parse_sources"]

# The scheme names come from the registry, which also holds each scheme's checks and id/type defaults.
SCHEMES = schemes.names()
CALLBACK_STATES = (*sorted(REPORTED), "reply")
BODY_FORMATS = ("json", "form")
# What a provider source may say about its verification, beside the preset (the rest is the preset's).
PROVIDER_VERIFY_KEYS = ("secret", "secrets", "username", "url", "tolerance")


@dataclass(frozen=True)
class Extract:
    """Where a value comes from: a request header, a JMESPath path into the body, or a constant."""

    header: str | None = None
    path: str | None = None
    value: str | None = None

    def read(self, headers: Mapping[str, str], body: Any) -> str | None:
        """The value for this request, or None when absent."""
        if self.value is not None:
            return self.value
        if self.header is not None:
            got = headers.get(self.header)
            return got if got else None
        if self.path is not None:
            try:
                got = jmespath.search(self.path, body)
            except jmespath.exceptions.JMESPathError:  # a function given the wrong type: no value here
                return None
            if got is None or isinstance(got, dict | list):
                return None
            return str(got)
        return None


@dataclass(frozen=True)
class Callback:
    """How to tell the originating system what happened (used by the callback sender)."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    on: tuple[str, ...] = ("sent", "delivered", "undelivered", "failed")
    secret: str | None = None
    allow_private: bool = False
    timeout: float = 10.0
    max_attempts: int = 8
    max_age: float = 24 * 3600
    forward_replies: bool = False


@dataclass(frozen=True)
class Source:
    """One configured event source."""

    name: str
    verify: Verify
    event_type: Extract
    event_id: Extract | None = None
    partition_key: Extract | None = None  # events with the same key are processed in arrival order
    schema: Mapping[str, Any] | None = None
    keep_headers: tuple[str, ...] = ()
    callback: Callback | None = None
    provider: str | None = None  # the catalog entry this source was built from, if any
    dedupe_window: float | None = None  # None: the global HOOKLINE_DEDUPE_WINDOW
    body: str = "json"  # how request bodies are encoded: json | form
    handshake: providers.Handshake | None = None  # the provider's endpoint check, answered instead of stored
    # Compiled once at load from `schema`; checks payloads at the edge.
    validator: jsonschema.protocols.Validator | None = field(default=None, compare=False, repr=False)

    def handshake_answer(self, event_type: str, payload: Any) -> dict[str, str] | None:
        """What to answer instead of storing a verified request of `event_type`: the provider's handshake
        (Slack's url_verification challenge); None for an ordinary event."""
        return self.handshake.answer(event_type, payload) if self.handshake is not None else None

    def payload_errors(self, payload: Any, limit: int = 10) -> list[str]:
        """Why `payload` fails this source's schema (`path: problem`), at most `limit`; empty when it passes."""
        if self.validator is None:
            return []
        out = []
        for err in sorted(self.validator.iter_errors(payload), key=lambda e: list(e.path)):
            path = "/".join(str(p) for p in err.path) or "(root)"
            out.append(f"{path}: {err.message}")
            if len(out) >= limit:
                break
        return out


class VerifySchema(Schema):
    scheme = fields.String(required=True, validate=validate.OneOf(SCHEMES))
    secret = StrOrList()
    secrets = StrOrList()
    header = fields.String()
    encoding = fields.String(validate=validate.OneOf(("hex", "base64")))
    prefix = fields.String()
    timestamp_header = fields.String()
    username = fields.String()
    password = StrOrList()
    tolerance = Duration(positive=True)
    url = fields.String()

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "secret" in data and "secrets" in data:
            raise ValidationError("give secret or secrets, not both", "secrets")
        scheme = schemes.get(data.get("scheme", ""))
        if scheme is None:  # already reported by the field's OneOf
            return
        problems: dict[str, list[str]] = {}
        for field_name, problem in scheme.config_problems(data):
            problems.setdefault(field_name, []).append(problem)
        if problems:
            raise ValidationError(problems)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Verify:
        scheme = schemes.get(data["scheme"])
        assert scheme is not None  # the field's OneOf came first
        secrets = scheme.secrets_from(data)
        rest = {key: value for key, value in data.items() if key not in SECRET_KEYS}
        return Verify(secrets=secrets, **rest)


class ExtractSchema(Schema):
    header = fields.String()
    path = fields.String()
    value = fields.String()

    @validates_schema
    def _one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if len(data) != 1:
            raise ValidationError("give exactly one of header, path or value", "_schema")
        if "path" in data:
            try:
                jmespath.compile(data["path"])
            except jmespath.exceptions.JMESPathError as exc:
                raise ValidationError(f"bad JMESPath expression: {exc}", "path") from exc

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Extract:
        return Extract(**data)


class CallbackSchema(Schema):
    url = fields.String(required=True)
    method = fields.String(validate=validate.OneOf(("POST", "PUT", "PATCH")))
    headers = fields.Dict(keys=fields.String(), values=fields.String())
    body = fields.Raw()
    on = fields.List(fields.String(validate=validate.OneOf(CALLBACK_STATES)), validate=validate.Length(min=1))
    secret = fields.String()
    allow_private = fields.Boolean()
    timeout = Duration(positive=True)
    max_attempts = fields.Integer(validate=validate.Range(min=1, max=50))
    max_age = Duration(positive=True)
    forward_replies = fields.Boolean()

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Callback:
        if "on" in data:
            data["on"] = tuple(data["on"])
        return Callback(**data)


class SourceSchema(Schema):
    provider = fields.String(validate=validate.OneOf(providers.names()))
    verify = fields.Nested(VerifySchema)
    # With `provider:`, the credentials and the few verification options a preset leaves to the source.
    secret = StrOrList()
    secrets = StrOrList()
    username = fields.String()
    url = fields.String()
    tolerance = Duration(positive=True)
    event_type = fields.Nested(ExtractSchema)
    event_id = fields.Nested(ExtractSchema)
    partition_key = fields.Nested(ExtractSchema)
    schema = fields.Dict()
    keep_headers = fields.List(fields.String())
    callback = fields.Nested(CallbackSchema)
    dedupe_window = Duration(positive=True)
    body = fields.String(validate=validate.OneOf(BODY_FORMATS))

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("provider" in data) == ("verify" in data):
            raise ValidationError("give provider (a preset) or verify (spelled out), not both" if "verify" in data
                                  else "required: name a provider or spell out verify", "verify")
        if "verify" in data:
            stray = [key for key in PROVIDER_VERIFY_KEYS if key in data]
            if stray:
                raise ValidationError({key: ["goes inside verify: (or name a provider:)"] for key in stray})
        if "schema" in data:
            try:
                jsonschema.Draft202012Validator.check_schema(data["schema"])
            except jsonschema.SchemaError as exc:
                raise ValidationError(f"not a valid JSON Schema: {exc.message}", "schema") from None

    @post_load
    def _preset(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """A provider source's `verify`: the preset's scheme and options with the source's credentials."""
        if "provider" not in data:
            return data
        provider = providers.get(data["provider"])
        assert provider is not None  # the field's OneOf came first
        spec: dict[str, Any] = {"scheme": provider.scheme, **dict(provider.options)}
        if provider.tolerance is not None:
            spec["tolerance"] = provider.tolerance
        spec.update({key: data.pop(key) for key in PROVIDER_VERIFY_KEYS if key in data})
        if "username" in spec and provider.scheme != "basic":
            raise ValidationError(f"{provider.title} authenticates without a username", "username")
        try:
            data["verify"] = VerifySchema().load(_as_loaded(spec))
        except ValidationError as exc:
            raise ValidationError(_preset_messages(provider, exc.messages)) from None
        return data


def _as_loaded(spec: dict[str, Any]) -> dict[str, Any]:
    # VerifySchema loads raw YAML; already-loaded values go back in the form its fields read.
    raw = dict(spec)
    for key in ("secret", "secrets"):
        if isinstance(raw.get(key), tuple):
            raw[key] = list(raw[key])
    return raw


def _preset_messages(provider: providers.Provider, messages: Any) -> dict[str, list[str]]:
    """VerifySchema's problems, said of the provider source's own keys and in the provider's words."""
    out: dict[str, list[str]] = {}
    for field_name, texts in (messages.items() if isinstance(messages, dict) else [("_schema", messages)]):
        for text in texts if isinstance(texts, list) else [texts]:
            if field_name == "secret" and str(text).endswith("needs a secret"):
                text = f"{provider.title} needs a secret: {provider.secret_name}"
            out.setdefault(field_name, []).append(str(text))
    return out


class SourcesFileSchema(Schema):
    sources = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]*$")),
                          values=fields.Nested(SourceSchema), required=True)


def parse_sources(data: Any, environ: Mapping[str, str], filename: str = "sources.yaml",
                  lines: Mapping[tuple[str, ...], int] | None = None) -> dict[str, Source]:
    """Validate parsed `sources.yaml` data and build the sources, resolving `${ENV}` references.

    Raises ConfigError listing every problem as `file: source: field: problem`.
    """
    lines = lines or {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(filename, "", "", "must be a mapping with a top-level 'sources' key")])
    problems: list[Problem] = []
    missing_by_source: dict[str, list[tuple[str, str]]] = {}
    resolved = dict(data)
    if isinstance(data.get("sources"), dict):
        resolved["sources"] = {}
        for name, body in data["sources"].items():
            missing: list[tuple[str, str]] = []
            resolved["sources"][name] = envrefs.resolve(body, environ, missing)
            if missing:
                missing_by_source[str(name)] = missing
    try:
        loaded = SourcesFileSchema().load(resolved)
    except ValidationError as exc:
        problems.extend(flatten_errors(exc.messages, filename, lines, top="sources"))
        loaded = None
    # A field whose ${VAR} is unset fails its other checks too; say only what is really wrong.
    unresolved = {(name, path) for name, refs in missing_by_source.items() for path, _ in refs}
    problems = [p for p in problems if (p.item, p.field) not in unresolved]
    for name, refs in missing_by_source.items():
        for fieldpath, var in dict.fromkeys(refs):
            line = nearest_line(lines, ("sources", name, *fieldpath.split(".")))
            problems.append(Problem(filename, name, fieldpath, f"environment variable {var} is not set", line))
    if problems:
        raise ConfigError(problems)
    assert loaded is not None
    return {name: _build(name, body) for name, body in loaded["sources"].items()}


def _build(name: str, body: dict[str, Any]) -> Source:
    verify: Verify = body["verify"]
    scheme = schemes.get(verify.scheme)
    assert scheme is not None  # validated by VerifySchema
    preset = providers.get(body["provider"]) if "provider" in body else None
    # The source's own keys first, then its provider's preset, then the scheme's conventions.
    event_type = (body.get("event_type") or _extract(preset.event_type if preset else None)
                  or _extract(scheme.defaults.event_type) or Extract(value="event"))
    event_id = (body.get("event_id") or _extract(preset.event_id if preset else None)
                or _extract(scheme.defaults.event_id))
    schema = body.get("schema")
    if schema is None and preset is not None and preset.schema is not None:
        schema = dict(preset.schema)
    keep_headers = body.get("keep_headers", preset.keep_headers if preset else ())
    return Source(
        name=name,
        verify=verify,
        event_type=event_type,
        event_id=event_id,
        partition_key=body.get("partition_key"),
        schema=schema,
        validator=jsonschema.Draft202012Validator(schema) if schema else None,
        keep_headers=tuple(keep_headers),
        callback=body.get("callback"),
        provider=preset.name if preset else None,
        dedupe_window=body.get("dedupe_window", preset.dedupe_window if preset else None),
        body=body.get("body", preset.body if preset else "json"),
        handshake=preset.handshake if preset else None,
    )


def _extract(where: Where | None) -> Extract | None:
    if where is None:
        return None
    return Extract(header=where.header, path=where.path)


def flatten_errors(messages: Any, filename: str, lines: Mapping[tuple[str, ...], int],
                   top: str) -> list[Problem]:
    """Turn marshmallow's nested error dict into `file: item: field: problem` lines.

    `top` is the collection key (`sources`, `rules`…): its children name the item, the rest the field.
    """
    out: list[Problem] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                walk(sub, path + (str(key),))
            return
        texts = node if isinstance(node, list) else [node]
        for text in texts:
            if isinstance(text, dict):
                walk(text, path)
                continue
            parts = [p for p in path if p not in ("value", "_schema")]
            if parts and parts[0] == top:
                parts = parts[1:]
            item = parts[0] if parts else ""
            fieldpath = ".".join(parts[1:])
            line = nearest_line(lines, (top, *parts))
            out.append(Problem(filename, item, fieldpath, _message(str(text)), line))

    walk(messages, ())
    return out


def nearest_line(lines: Mapping[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of `path` in the YAML file, or of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _message(text: str) -> str:
    if text == "Unknown field.":
        return "unknown key (check its spelling)"
    if text == "Missing data for required field.":
        return "required"
    return text
