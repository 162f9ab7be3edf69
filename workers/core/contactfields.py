"""ClickSend's contact fields: what a contact on a list holds, and so the placeholders (`{first_name}`) a stored
template may use. Pure data."""

from __future__ import annotations

CONTACT_FIELDS = ("phone_number", "first_name", "last_name", "email", "fax_number", "organization_name",
                  "custom_1", "custom_2", "custom_3", "custom_4", "address_line_1", "address_line_2",
                  "address_city", "address_state", "address_postal_code", "address_country")
