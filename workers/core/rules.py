"""Rule files: their schema, and the compiled Rule (templates compiled once, at load).

Pure: data and template text are handed in (`read_template`); never reads files itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from workers.core.conditions import Condition, compile_condition
from workers.core.contactfields import CONTACT_FIELDS
from workers.core.contactlists import (
    ContactRemoveSchema,
    ContactSchema,
    ContactWrite,
    ListTarget,
    Recipients,
    compile_write,
)
from workers.core.fields import Duration, StrOrList
from workers.core.messages import ContactOp
from workers.core.sources import flatten_errors, nearest_line
from workers.core.storedtemplates import stored_ref
from workers.core.templates import compile_template
from workers.errors import ConditionError, ConfigError, Problem

CHANNELS = ("sms", "mms", "voice")
WRITES = {"contact": ContactOp.UPSERT, "contact_remove": ContactOp.REMOVE}  # a rule's writes to contact lists
ACTIONS = ("send", "cancel", *WRITES)  # what a rule does: exactly one of these


class SendSchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    to = Recipients()
    list_id = fields.Integer(validate=validate.Range(min=1))
    from_ = fields.String(data_key="from")
    body = fields.String(validate=validate.Length(min=1))
    template = fields.String()
    placeholders = fields.Dict(keys=fields.String(validate=validate.OneOf(CONTACT_FIELDS)), values=fields.String())
    country = fields.String(validate=validate.Length(equal=2))
    subject = fields.String()
    media_file = fields.String()
    voice = fields.String(validate=validate.OneOf(("female", "male")))
    lang = fields.String()
    require_input = fields.Boolean()
    machine_detection = fields.Boolean()

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("to" in data) == ("list_id" in data):
            raise ValidationError("give exactly one of to or list_id", "to")
        if ("body" in data) == ("template" in data):
            raise ValidationError("give exactly one of body or template", "body")
        _check_stored(data)
        channel = data.get("channel")
        if channel == "mms":
            if "media_file" not in data:
                raise ValidationError("mms needs media_file", "media_file")
            if "subject" not in data:
                raise ValidationError("mms needs a subject (at most 20 characters)", "subject")
            if "{" not in data["subject"] and len(data["subject"]) > 20:
                raise ValidationError("at most 20 characters", "subject")
        elif "media_file" in data or "subject" in data:
            raise ValidationError("only mms messages have media_file and subject", "media_file")
        voice_only = {"voice", "lang", "require_input", "machine_detection"} & set(data)
        if channel != "voice" and voice_only:
            raise ValidationError(f"only voice messages have {', '.join(sorted(voice_only))}", sorted(voice_only)[0])


def _check_stored(data: dict[str, Any]) -> None:
    """`template: clicksend:<id or name>` names a stored template, which alone takes `placeholders`."""
    ref = stored_ref(data.get("template") or "")
    if ref == "":
        raise ValidationError("name the stored template: clicksend:<id or name>", "template")
    if "placeholders" in data and ref is None:
        raise ValidationError("placeholders go with a stored template (template: clicksend:<id or name>)",
                              "placeholders")


class CancelSchema(Schema):
    key = fields.String(required=True)


class ScheduleSchema(Schema):
    delay = Duration()
    at = fields.String()
    offset = Duration()
    zone = fields.String()
    if_past = fields.String(validate=validate.OneOf(("send", "skip")))

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("delay" in data) == ("at" in data):
            raise ValidationError("give exactly one of delay or at", "at")
        if "offset" in data and "at" not in data:
            raise ValidationError("offset goes with at", "offset")
        if "zone" in data and "at" not in data:
            raise ValidationError("zone goes with at", "zone")


class RuleSchema(Schema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))
    description = fields.String()
    source = StrOrList(required=True)
    event = StrOrList(required=True)
    when = fields.Dict()
    send = fields.Nested(SendSchema)
    cancel = fields.Nested(CancelSchema)
    contact = fields.Nested(ContactSchema)
    contact_remove = fields.Nested(ContactRemoveSchema)
    schedule = fields.Nested(ScheduleSchema)
    key = fields.String()
    replace = fields.Boolean()
    order = fields.String()
    policy = fields.String()
    critical = fields.Boolean()
    recipient_timezone = fields.String()

    @validates("when")
    def _when(self, value: dict[str, Any], **kwargs: Any) -> None:
        try:
            compile_condition(value)
        except ConditionError as exc:
            raise ValidationError(str(exc)) from None

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        actions = [name for name in ACTIONS if name in data]
        if len(actions) != 1:
            raise ValidationError(f"give exactly one of {', '.join(ACTIONS[:-1])} or {ACTIONS[-1]}",
                                  actions[1] if len(actions) > 1 else "send")
        if actions[0] in WRITES and {"schedule", "key", "replace", "order"} & set(data):
            raise ValidationError("a contact write has no schedule, key, replace or order", actions[0])
        if data.get("replace") and "key" not in data:
            raise ValidationError("replace needs a key", "replace")
        if "cancel" in data and ("schedule" in data or "replace" in data):
            raise ValidationError("a cancel rule has no schedule or replace", "cancel")
        if "order" in data and "key" not in data and "cancel" not in data:
            raise ValidationError("order needs a key or a cancel", "order")


class RuleFileSchema(Schema):
    rules = fields.List(fields.Dict(), required=True)


@dataclass(frozen=True)
class Send:
    """What a matching rule sends; text fields are compiled templates."""

    channel: str
    to: tuple[jinja2.Template, ...] = ()
    to_list: str | None = None  # every number on this ClickSend list (id or name), each its own message
    list_id: int | None = None
    from_: jinja2.Template | None = None
    body: jinja2.Template | None = None
    stored: str | None = None  # a stored ClickSend template's id or name (`template: clicksend:…`), body None
    placeholders: Mapping[str, jinja2.Template] = field(default_factory=dict)  # its `{name}`s' values
    country: str | None = None
    subject: jinja2.Template | None = None
    media_file: jinja2.Template | None = None
    voice: str = "female"
    lang: str = "en-us"
    require_input: bool = False
    machine_detection: bool = False


@dataclass(frozen=True)
class Schedule:
    """When a message goes out: after `delay`, or at a rendered time plus `offset`."""

    delay: float | None = None
    at: jinja2.Template | None = None
    offset: float = 0.0
    zone: jinja2.Template | None = None  # the zone a naive `at` is read in (default HOOKLINE_TIMEZONE)
    if_past: str = "skip"


@dataclass(frozen=True)
class Rule:
    """One compiled rule."""

    name: str
    file: str
    sources: tuple[str, ...]
    events: tuple[str, ...]
    when: Condition
    send: Send | None = None
    write: ContactWrite | None = None
    cancel_key: jinja2.Template | None = None
    key: jinja2.Template | None = None
    replace: bool = False
    order: jinja2.Template | None = None  # when the event happened at the origin (time or number), per key
    schedule: Schedule | None = None
    policy: str = "default"
    critical: bool = False
    recipient_timezone: str | None = None

    def selects(self, source: str, event_type: str) -> tuple[bool, str]:
        """Whether this rule listens to `source` and `event_type`, and why not."""
        if "*" not in self.sources and source not in self.sources:
            return False, f"source {source!r} is not one of {list(self.sources)}"
        if not any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events):
            return False, f"event type {event_type!r} does not match {list(self.events)}"
        return True, ""


def parse_rule_file(data: Any, filename: str, env: SandboxedEnvironment,
                    read_template: Callable[[str], str],
                    lines: Mapping[tuple[str, ...], int] | None = None) -> list[Rule]:
    """Validate and compile one rule file. Raises ConfigError with every `file: rule: field: problem`."""
    lines = lines or {}
    try:
        RuleFileSchema().load(data if isinstance(data, dict) else {"rules": None})
    except ValidationError as exc:
        raise ConfigError(flatten_errors(exc.messages, filename, lines, top="")) from None
    problems: list[Problem] = []
    rules: list[Rule] = []
    for index, raw in enumerate(data["rules"]):
        label = str(raw.get("name") or f"rules[{index}]")
        path = ("rules", str(index))
        try:
            loaded = RuleSchema().load(raw)
        except ValidationError as exc:
            for p in flatten_errors({label: exc.messages}, filename, {}, top=""):
                sub = tuple(p.field.split(".")) if p.field else ()
                problems.append(Problem(filename, label, p.field, p.message, nearest_line(lines, path + sub)))
            continue
        compiler = _Compiler(env, filename, label, path, lines, read_template, problems)
        rule = compiler.rule(loaded)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise ConfigError(problems)
    return rules


@dataclass
class _Compiler:
    env: SandboxedEnvironment
    file: str
    label: str
    path: tuple[str, ...]
    lines: Mapping[tuple[str, ...], int]
    read_template: Callable[[str], str]
    problems: list[Problem]

    def template(self, text: str | None, field: str, source_line: int | None = None) -> jinja2.Template | None:
        if text is None:
            return None
        try:
            return compile_template(self.env, text)
        except jinja2.TemplateSyntaxError as exc:
            line = source_line or nearest_line(self.lines, self.path + tuple(field.split(".")))
            self.problems.append(Problem(self.file, self.label, field, f"template syntax error: {exc.message}", line))
            return None

    def rule(self, data: dict[str, Any]) -> Rule | None:
        before = len(self.problems)
        send = self.send(data["send"]) if "send" in data else None
        cancel_key = self.template(data["cancel"]["key"], "cancel.key") if "cancel" in data else None
        write = next((compile_write(data[k], op, self.template) for k, op in WRITES.items() if k in data), None)
        key = self.template(data.get("key"), "key")
        order = self.template(data.get("order"), "order")
        schedule = None
        if "schedule" in data:
            spec = data["schedule"]
            schedule = Schedule(delay=spec.get("delay"), at=self.template(spec.get("at"), "schedule.at"),
                                offset=spec.get("offset", 0.0), zone=self.template(spec.get("zone"), "schedule.zone"),
                                if_past=spec.get("if_past", "skip"))
        if len(self.problems) > before:
            return None
        return Rule(
            name=data["name"], file=self.file, sources=data["source"], events=data["event"],
            when=compile_condition(data.get("when")), send=send, write=write, cancel_key=cancel_key, key=key,
            replace=data.get("replace", False), order=order, schedule=schedule, policy=data.get("policy", "default"),
            critical=data.get("critical", False), recipient_timezone=data.get("recipient_timezone"),
        )

    def send(self, spec: dict[str, Any]) -> Send:
        body_text = spec.get("body")
        stored = stored_ref(spec.get("template") or "")
        if stored is not None:
            body_text = None
        elif "template" in spec:
            try:
                body_text = self.read_template(spec["template"])
            except (OSError, ValueError) as exc:
                self.problems.append(Problem(self.file, self.label, "send.template", f"cannot read template: {exc}",
                                             nearest_line(self.lines, self.path + ("send", "template"))))
                body_text = None
        voice_defaults = {k: spec[k] for k in ("voice", "lang", "require_input", "machine_detection") if k in spec}
        to = spec.get("to", ())
        return Send(
            channel=spec["channel"],
            to=() if isinstance(to, ListTarget) else tuple(t for t in (self.template(x, "send.to") for x in to)
                                                           if t is not None),
            to_list=to.ref if isinstance(to, ListTarget) else None,
            list_id=spec.get("list_id"),
            from_=self.template(spec.get("from_"), "send.from"),
            body=self.template(body_text, "send.template" if "template" in spec else "send.body"),
            country=spec.get("country", "").upper() or None,
            subject=self.template(spec.get("subject"), "send.subject"),
            media_file=self.template(spec.get("media_file"), "send.media_file"),
            stored=stored, placeholders=self.placeholders(spec.get("placeholders") or {}),
            **voice_defaults,
        )

    def placeholders(self, spec: dict[str, str]) -> dict[str, jinja2.Template]:
        """A stored template's placeholder values, each a template rendered with the event."""
        compiled = {name: self.template(text, f"send.placeholders.{name}") for name, text in spec.items()}
        return {name: template for name, template in compiled.items() if template is not None}


def check_unique_names(rules: list[Rule]) -> list[Problem]:
    """A problem for every rule name used more than once across all files."""
    seen: dict[str, Rule] = {}
    out = []
    for rule in rules:
        if rule.name in seen:
            out.append(Problem(rule.file, rule.name, "name", f"duplicate rule name (also in {seen[rule.name].file})"))
        else:
            seen[rule.name] = rule
    return out
