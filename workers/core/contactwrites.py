"""A rule's writes to ClickSend contact lists (`contact:` upserts, `contact_remove:` removes): their schema,
the contact fields ClickSend knows, and the compiled `ContactWrite`.

Pure: compiles templates through the function the rule compiler hands in; knows nothing of HTTP or Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from marshmallow import Schema, ValidationError, fields, validate

from workers.core.messages import ContactOp

# The fields a ClickSend contact carries (its `Contact` model), all strings.
CONTACT_FIELDS = ("phone_number", "first_name", "last_name", "email", "fax_number", "organization_name",
                  "custom_1", "custom_2", "custom_3", "custom_4", "address_line_1", "address_line_2",
                  "address_city", "address_state", "address_postal_code", "address_country")


class ListRef(fields.Field[str]):
    """A contact list by id (a positive number) or by name (a non-empty string), kept as text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise ValidationError("must be a list id (a positive number) or a list name")


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
