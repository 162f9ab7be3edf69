"""The simulated contact import (`POST /v3/lists/{list_id}/import`): ClickSend fetches the CSV file at
`file_url` and adds its rows to the list as contacts; `field_order` names the columns (contact fields, comma
separated or a list), else the file's first row does. The reply has the shape of the SDK's `ImportContacts`
(`data`: `msg`, `ids` of the new contacts and `id` of the list, all strings).

Owns that route. ClickSend queues the file; the simulator imports it at once. It fetches from this machine only
(a loopback address), so a simulator never reaches beyond the machine it runs on: the host checked is the one
`requests` connects to, no proxy from the environment is used and no redirect is followed (each could lead
elsewhere). A malformed URL, a refused one or a failed fetch is ClickSend's 400 naming `file_url`.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from workers.clicksend.sim.lists import missing_list
from workers.clicksend.sim.wire import envelope, json_object, state
from workers.core.contactfields import CONTACT_FIELDS

bp = Blueprint("imports", __name__)
_REACHES = ("phone_number", "email", "fax_number")  # a contact needs one of these, as on create


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def _fetch(url: str) -> str | Response:
    """The text of the file at `url`, or the 400 saying why there is none."""
    with requests.Session() as session:
        session.trust_env = False  # an HTTP_PROXY from the environment would take the request elsewhere
        try:
            prepared = session.prepare_request(requests.Request("GET", url))
            # The host requests connects to, read by the parser it connects with, and by the standard library's
            # too: a URL the two read differently (`http://a.example\\@127.0.0.1/`) must be loopback to both.
            hosts = {parse_url(prepared.url or "").host, urlsplit(prepared.url or "").hostname}
        except (requests.RequestException, LocationParseError, ValueError) as exc:
            return _bad("file_url", f"The file url is not a valid URL: {exc}")
        if not all(_loopback(host) for host in hosts):
            return _bad("file_url", "The simulator fetches files from this machine only (a loopback address).")
        try:
            response = session.send(prepared, timeout=10, allow_redirects=False)
            response.raise_for_status()
        except requests.RequestException as exc:
            return _bad("file_url", f"The file could not be fetched: {exc}")
    if not 200 <= response.status_code < 300:  # a redirect: where it leads is not checked, so it is not followed
        return _bad("file_url", f"The file could not be fetched: HTTP {response.status_code} to "
                                f"{response.headers.get('Location')!r}; redirects are not followed.")
    return response.text


def _columns(value: Any) -> list[str] | None:
    """`field_order` as a list of names (None when not given)."""
    if value is None or value == "":
        return None
    names = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    return [str(n).strip() for n in names]


def _bad(field: str, message: str) -> Response:
    return envelope(400, "BAD_REQUEST", "Invalid input.", {field: message})


@bp.post("/v3/lists/<int:list_id>/import")
def import_contacts(list_id: int) -> Response:
    """Add the rows of the CSV file at `file_url` to the list."""
    directory = state().directory
    if directory.get_list(list_id) is None:
        return missing_list(list_id)
    body = json_object()
    url = body.get("file_url")
    if not isinstance(url, str) or not url:
        return _bad("file_url", "The file url field is required.")
    text = _fetch(url)
    if isinstance(text, Response):
        return text
    rows = list(csv.reader(io.StringIO(text)))
    columns = _columns(body.get("field_order"))
    if columns is None:
        columns, rows = ([c.strip() for c in rows[0]], rows[1:]) if rows else ([], [])
    unknown = [c for c in columns if c not in CONTACT_FIELDS]
    if unknown:
        return _bad("field_order", f"Unknown field(s): {', '.join(unknown)}.")
    ids = []
    for row in rows:
        fields = {name: value.strip() for name, value in zip(columns, row, strict=False) if value.strip()}
        if any(fields.get(k) for k in _REACHES):
            ids.append(str(directory.add_contact(list_id, fields)["contact_id"]))
    return envelope(200, "SUCCESS", "Your file is now queued.",
                    {"msg": "Your file is now queued.", "ids": ids, "id": str(list_id)})
