"""A rule's use of ClickSend contact lists: its writes to them (`contact:` upserts, `contact_remove:` removes),
their schema and compiled `ContactWrite`, the contact fields ClickSend knows, and a list as a send's recipients
(`send.to: {list: Customers}`).

Pure: compiles templates through the function the rule compiler hands in; knows nothing of HTTP or Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from marshmallow import Schema, ValidationError, fields, validate

from workers.core.contactfields import CONTACT_FIELDS
from workers.core.fields import StrOrList
from workers.core.messages import Channel, ContactOp, Message


class ListRef(fields.Field[str]):
    """A contact list by id (a positive number) or by name (a non-empty string), kept as text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return list_ref(value)


def list_ref(value: Any) -> str:
    """A list id or name as text; ValidationError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValidationError("must be a list id (a positive number) or a list name")


class Recipients(fields.Field[Any]):
    """`send.to`: a number (a template), a list of them, or `{list: <id or name>}`: a ListTarget."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict):
            if set(value) != {"list"}:
                raise ValidationError("a list of recipients is written {list: <list id or name>}")
            return ListTarget(list_ref(value["list"]))
        return StrOrList().deserialize(value)


@dataclass(frozen=True)
class ListTarget:
    """A send to every number on a ClickSend contact list, named by id or by name."""

    ref: str


def _schema(name: str, with_fields: bool) -> type[Schema]:
    where: dict[str, fields.Field[Any]] = {
        "list": ListRef(required=True),
        "phone_number": fields.String(required=True, validate=validate.Length(min=1)),
        "country": fields.String(validate=validate.Length(equal=2)),
    }
    if with_fields:
        where |= {field: fields.String() for field in CONTACT_FIELDS[1:]}
    return Schema.from_dict(where, name=name)


ContactSchema = _schema("ContactSchema", with_fields=True)  # `contact:`: the list, the number, its fields
ContactRemoveSchema = _schema("ContactRemoveSchema", with_fields=False)  # `contact_remove:`: the list, the number


@dataclass(frozen=True)
class ContactWrite:
    """What a matching rule writes to a list: the number (a template) and, for an upsert, the fields."""

    operation: ContactOp
    list_ref: str
    phone_number: jinja2.Template
    fields: tuple[tuple[str, jinja2.Template], ...] = ()
    country: str | None = None  # region for numbers without a country code (default HOOKLINE_DEFAULT_REGION)


Compile = Callable[[str | None, str], "jinja2.Template | None"]


def compile_write(spec: dict[str, Any], operation: ContactOp, compile_template: Compile) -> ContactWrite | None:
    """`spec` (a loaded `contact:` or `contact_remove:`) compiled; None when a template did not compile (the
    compiler has recorded the problem under `contact.<field>`)."""
    key = "contact" if operation is ContactOp.UPSERT else "contact_remove"
    number = compile_template(spec["phone_number"], f"{key}.phone_number")
    compiled = [(name, compile_template(spec[name], f"{key}.{name}")) for name in CONTACT_FIELDS[1:] if name in spec]
    if number is None or any(t is None for _, t in compiled):
        return None
    return ContactWrite(operation, spec["list"], number, tuple((n, t) for n, t in compiled if t is not None),
                        spec.get("country", "").upper() or None)


def reaches_no_one(msg: Message) -> str | None:
    """What `msg` is when it reaches no one itself, so that only its policy's approval applies: a contact write,
    or a send to a list (before it becomes a message per number). None for a message to a person."""
    if msg.channel is Channel.CONTACT:
        return "contact write"
    return f"send to list {msg.list_ref}" if msg.list_ref else None
