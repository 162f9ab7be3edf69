"""`hookline clicksend …`: the operator's view of the ClickSend account: the account, countries, contact lists,
contacts, SMS templates, verified sender addresses, and the Maton connections that reach it.

Works directly (CLICKSEND_USERNAME + CLICKSEND_API_KEY), through Maton (MATON_API_KEY; `--connection` picks
one) and against the simulator (CLICKSEND_BASE_URL). Every create, update or delete first shows exactly what
it will change and asks (`--yes` for scripts), then prints the result. Owns the commands and their wording;
the calls are `ClickSendClient.request` and `MatonConnections`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any, NoReturn, TypeVar

import click

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.clicksend.contacts import find_list
from workers.clicksend.maton import MATON_CTRL_URL, MatonConnections
from workers.core.coerce import to_int
from workers.core.contactfields import CONTACT_FIELDS
from workers.entry.cli_shared import echo_json, echo_table
from workers.entry.runtime import clicksend_client
from workers.errors import AuthenticationFailed, ConfigError, HooklineError, ListUnknown
from workers.wiring.settings import Settings

RET_OK, RET_FAILED, RET_CONFIG, RET_REFUSED = 0, 1, 2, 3  # RET_REFUSED: credentials refused (401/403)
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class Account:
    """Where the commands act: the settings' account, through `connection` when given (Maton)."""

    connection: str | None
    maton_url: str

    def settings(self) -> Settings:
        """Settings from the environment; exit 2 listing every problem."""
        try:
            settings = Settings.from_env(require_redis=False)
        except ConfigError as exc:
            _fail(exc, RET_CONFIG)
        if self.connection:
            if not settings.maton_api_key:
                raise click.UsageError("--connection needs MATON_API_KEY (it picks a Maton connection)")
            settings = settings.with_(maton_connection=self.connection, clicksend_username=None,
                                      clicksend_api_key=None)
        return settings

    def client(self) -> ClickSendClient:
        """The ClickSend client the environment describes."""
        try:
            return clicksend_client(self.settings())
        except ConfigError as exc:
            _fail(exc, RET_CONFIG)

    def maton(self) -> MatonConnections:
        """Maton's connection API with MATON_API_KEY."""
        key = self.settings().maton_api_key
        if not key:
            raise click.UsageError("connections are Maton's: set MATON_API_KEY")
        return MatonConnections(key, self.maton_url)


def _fail(exc: Exception, code: int) -> NoReturn:
    problems = getattr(exc, "problems", None) or [exc]
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(code)


def _calls(fn: _F) -> _F:
    """Report ClickSend's and Maton's refusals as one line each, with their own exit codes."""
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuthenticationFailed as exc:
            _fail(RuntimeError(f"credentials refused ({exc.status}): {exc}"), RET_REFUSED)
        except HooklineError as exc:
            _fail(exc, RET_FAILED)
    return wrapper  # type: ignore[return-value]


def confirm(yes: bool, action: str, request: str, lines: Sequence[str] = ()) -> None:
    """Show what is about to change and ask; without a yes, stop with nothing changed (exit 1)."""
    click.echo(f"This will {action}:")
    click.echo(f"  {request}")
    for line in lines:
        click.echo(f"  {line}")
    if not yes and not click.confirm("Go ahead?", default=False):
        click.echo("Nothing changed.")
        sys.exit(RET_FAILED)


def _done(row: Any) -> None:
    click.echo("Done: " + json.dumps(row, ensure_ascii=False, sort_keys=True))


def _delete(client: ClickSendClient, path: str, what: str, describe: Callable[[dict[str, Any]], str],
            yes: bool) -> None:
    """Read what `path` names, show it with `describe`, ask, then delete it."""
    before = client.request("GET", path)
    confirm(yes, f"delete {what} {describe(before)}", f"DELETE {path}")
    client.request("DELETE", path)
    click.echo(f"Done: {what} deleted.")


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """`field: old → new` for each field that changes."""
    return [f"{k}: {before.get(k)!r} → {v!r}" for k, v in after.items() if before.get(k) != v] or ["(no change)"]


def _rows(client: ClickSendClient, path: str) -> Iterator[dict[str, Any]]:
    """Every row of a paged list endpoint."""
    for page in iter_pages(partial(client.page, path)):
        yield from page.items


yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
pass_account = click.make_pass_decorator(Account)


json_option = click.option("--json", "as_json", is_flag=True, help="Print ClickSend's rows as JSON instead of a table.")


def _listing(rows: Iterable[dict[str, Any]], as_json: bool, what: str, header: Sequence[str],
             cells: Callable[[dict[str, Any]], Sequence[Any]]) -> None:
    """ClickSend's `rows` as JSON (`--json`), else an aligned table of `cells` under `header`, or `no <what>`."""
    found = list(rows)
    if as_json:
        echo_json(found)
    elif not found:
        click.echo(f"no {what}")
    else:
        echo_table(header, [["" if cell is None else str(cell) for cell in cells(row)] for row in found])


@click.group("clicksend")
@click.option("--connection", help="The Maton connection to act through (with MATON_API_KEY).")
@click.option("--maton-url", envvar="HOOKLINE_MATON_CTRL_URL", default=MATON_CTRL_URL, show_default=True,
              help="Maton's connection API (the simulator serves a stand-in).")
@click.pass_context
def clicksend(ctx: click.Context, connection: str | None, maton_url: str) -> None:
    """The ClickSend account: lists, contacts, templates, sender addresses, countries, Maton connections."""
    ctx.obj = Account(connection, maton_url)


@clicksend.command("account")
@pass_account
@_calls
def account_cmd(account: Account) -> None:
    """Balance, currency and default country."""
    data = account.client().request("GET", "/v3/account")
    currency = data.get("_currency") or data.get("currency") or {}
    click.echo(f"account   {data.get('account_name') or data.get('username')} (user {data.get('user_id')})")
    click.echo(f"balance   {data.get('balance')} {currency.get('currency_name_short', '')}".rstrip())
    click.echo(f"country   {data.get('default_country_sms') or data.get('country')}")


@clicksend.command("countries")
@json_option
@pass_account
@_calls
def countries_cmd(account: Account, as_json: bool) -> None:
    """The countries ClickSend knows (code and name)."""
    _listing(account.client().countries(), as_json, "countries", ("CODE", "COUNTRY"),
             lambda row: (row.get("code"), row.get("value")))


# --- lists ------------------------------------------------------------------------------------------------


def resolve_list(client: ClickSendClient, ref: str) -> dict[str, Any]:
    """A list by id or by name (case-insensitive); UsageError when none or several match."""
    try:
        return find_list(client, ref)
    except ListUnknown as exc:
        raise click.UsageError(exc.message) from None


@clicksend.group("lists")
def lists_group() -> None:
    """Contact lists (named by id or name)."""


@lists_group.command("list")
@json_option
@pass_account
@_calls
def lists_list(account: Account, as_json: bool) -> None:
    """Every list: id, name, contacts."""
    _listing(_rows(account.client(), "/v3/lists"), as_json, "lists", ("ID", "NAME", "CONTACTS"),
             lambda row: (row.get("list_id"), row.get("list_name"), row.get("_contacts_count", 0)))


@lists_group.command("show")
@click.argument("ref")
@pass_account
@_calls
def lists_show(account: Account, ref: str) -> None:
    """One list."""
    _done(resolve_list(account.client(), ref))


@lists_group.command("create")
@click.argument("name")
@yes_option
@pass_account
@_calls
def lists_create(account: Account, name: str, yes: bool) -> None:
    """Create a list called NAME."""
    body = {"list_name": name}
    confirm(yes, f"create the list {name!r}", f"POST /v3/lists {json.dumps(body)}")
    _done(account.client().request("POST", "/v3/lists", json=body, idempotent=False))


@lists_group.command("update")
@click.argument("ref")
@click.argument("new_name")
@yes_option
@pass_account
@_calls
def lists_update(account: Account, ref: str, new_name: str, yes: bool) -> None:
    """Rename a list."""
    client = account.client()
    row = resolve_list(client, ref)
    body = {"list_name": new_name}
    confirm(yes, f"rename list #{row['list_id']}", f"PUT /v3/lists/{row['list_id']} {json.dumps(body)}",
            _diff(row, body))
    _done(client.request("PUT", f"/v3/lists/{row['list_id']}", json=body))


@lists_group.command("delete")
@click.argument("ref")
@yes_option
@pass_account
@_calls
def lists_delete(account: Account, ref: str, yes: bool) -> None:
    """Delete a list and every contact on it."""
    client = account.client()
    row = resolve_list(client, ref)
    confirm(yes, f"delete list #{row['list_id']} {row.get('list_name')!r} and its "
            f"{row.get('_contacts_count', 0)} contacts", f"DELETE /v3/lists/{row['list_id']}")
    client.request("DELETE", f"/v3/lists/{row['list_id']}")
    click.echo(f"Done: list #{row['list_id']} deleted.")


@lists_group.command("dedupe")
@click.argument("ref")
@click.option("--by-name", is_flag=True, help="Duplicates must also share first and last name.")
@yes_option
@pass_account
@_calls
def lists_dedupe(account: Account, ref: str, by_name: bool, yes: bool) -> None:
    """Remove contacts that repeat an earlier contact's number (and name, with --by-name)."""
    client = account.client()
    row = resolve_list(client, ref)
    seen: set[tuple[Any, ...]] = set()
    doomed = []
    for contact in _rows(client, f"/v3/lists/{row['list_id']}/contacts"):
        key = (contact.get("phone_number"), *((contact.get("first_name"), contact.get("last_name")) if by_name else ()))
        if key in seen:
            doomed.append(f"contact #{contact.get('contact_id')} {contact.get('phone_number')}")
        seen.add(key)
    body = {"fields": {"first_name": "1", "last_name": "1"}} if by_name else {}
    path = f"/v3/lists/{row['list_id']}/remove-duplicates/"
    confirm(yes, f"remove {len(doomed)} duplicate contact(s) from list #{row['list_id']}",
            f"PUT {path} {json.dumps(body)}", doomed)
    _done(client.request("PUT", path, json=body))


# --- contacts ---------------------------------------------------------------------------------------------

ContactFields = dict[str, Any]


def contact_options(fn: _F) -> _F:
    """`--first-name`, `--custom-1`… for every contact field but the number."""
    for name in reversed([f for f in CONTACT_FIELDS if f != "phone_number"]):
        fn = click.option(f"--{name.replace('_', '-')}", name, help=f"The contact's {name}.")(fn)
    return fn


def _given(fields: ContactFields) -> ContactFields:
    return {k: v for k, v in fields.items() if v is not None}


@clicksend.group("contacts")
def contacts_group() -> None:
    """The contacts of a list (the list named by id or name)."""


@contacts_group.command("list")
@click.argument("list_ref")
@json_option
@pass_account
@_calls
def contacts_list(account: Account, list_ref: str, as_json: bool) -> None:
    """Every contact of a list."""
    client = account.client()
    row = resolve_list(client, list_ref)
    _listing(_rows(client, f"/v3/lists/{row['list_id']}/contacts"), as_json, f"contacts on {row['list_name']}",
             ("ID", "NUMBER", "NAME"),
             lambda c: (c.get("contact_id"), c.get("phone_number") or c.get("email"),
                        " ".join(filter(None, (c.get("first_name"), c.get("last_name"))))))


@contacts_group.command("show")
@click.argument("list_ref")
@click.argument("contact_id", type=int)
@pass_account
@_calls
def contacts_show(account: Account, list_ref: str, contact_id: int) -> None:
    """One contact."""
    client = account.client()
    row = resolve_list(client, list_ref)
    _done(client.request("GET", f"/v3/lists/{row['list_id']}/contacts/{contact_id}"))


@contacts_group.command("create")
@click.argument("list_ref")
@click.argument("phone_number")
@contact_options
@yes_option
@pass_account
@_calls
def contacts_create(account: Account, /, list_ref: str, phone_number: str, yes: bool, **fields: Any) -> None:
    """Add a contact with PHONE_NUMBER to a list (also `contacts add`)."""
    client = account.client()
    row = resolve_list(client, list_ref)
    body = {"phone_number": phone_number, **_given(fields)}
    path = f"/v3/lists/{row['list_id']}/contacts"
    confirm(yes, f"add a contact to list #{row['list_id']} {row.get('list_name')!r}",
            f"POST {path} {json.dumps(body, ensure_ascii=False)}")
    _done(client.request("POST", path, json=body, idempotent=False))


contacts_group.add_command(contacts_create, "add")


@contacts_group.command("update")
@click.argument("list_ref")
@click.argument("contact_id", type=int)
@click.option("--phone-number", "phone_number", help="The contact's new number.")
@contact_options
@yes_option
@pass_account
@_calls
def contacts_update(account: Account, /, list_ref: str, contact_id: int, yes: bool, **fields: Any) -> None:
    """Change some fields of a contact."""
    client = account.client()
    row = resolve_list(client, list_ref)
    path = f"/v3/lists/{row['list_id']}/contacts/{contact_id}"
    body = _given(fields)
    if not body:
        raise click.UsageError("nothing to change: give at least one field option")
    before = client.request("GET", path)
    confirm(yes, f"change contact #{contact_id}", f"PUT {path} {json.dumps(body, ensure_ascii=False)}",
            _diff(before, body))
    _done(client.request("PUT", path, json=body))


@contacts_group.command("delete")
@click.argument("list_ref")
@click.argument("contact_id", type=int)
@yes_option
@pass_account
@_calls
def contacts_delete(account: Account, list_ref: str, contact_id: int, yes: bool) -> None:
    """Remove a contact from a list."""
    client = account.client()
    row = resolve_list(client, list_ref)
    _delete(client, f"/v3/lists/{row['list_id']}/contacts/{contact_id}", f"contact #{contact_id}",
            lambda before: f"{before.get('phone_number')} from list #{row['list_id']}", yes)


def _move(account: Account, list_ref: str, contact_id: int, to_ref: str, yes: bool, verb: str) -> None:
    client = account.client()
    source, target = resolve_list(client, list_ref), resolve_list(client, to_ref)
    before = client.request("GET", f"/v3/lists/{source['list_id']}/contacts/{contact_id}")
    path = f"/v3/lists/{source['list_id']}/contacts/{contact_id}/{verb}/{target['list_id']}"
    effect = "it stays on both" if verb == "copy" else f"it leaves list #{source['list_id']}"
    confirm(yes, f"{verb} contact #{contact_id} {before.get('phone_number')} to list #{target['list_id']} "
            f"{target.get('list_name')!r} ({effect})", f"PUT {path}")
    _done(client.request("PUT", path, idempotent=verb != "copy"))


@contacts_group.command("copy")
@click.argument("list_ref")
@click.argument("contact_id", type=int)
@click.argument("to_list")
@yes_option
@pass_account
@_calls
def contacts_copy(account: Account, list_ref: str, contact_id: int, to_list: str, yes: bool) -> None:
    """Copy a contact to another list."""
    _move(account, list_ref, contact_id, to_list, yes, "copy")


@contacts_group.command("transfer")
@click.argument("list_ref")
@click.argument("contact_id", type=int)
@click.argument("to_list")
@yes_option
@pass_account
@_calls
def contacts_transfer(account: Account, list_ref: str, contact_id: int, to_list: str, yes: bool) -> None:
    """Move a contact to another list."""
    _move(account, list_ref, contact_id, to_list, yes, "transfer")


# --- templates --------------------------------------------------------------------------------------------


@clicksend.group("templates")
def templates_group() -> None:
    """Stored SMS templates (by id)."""


@templates_group.command("list")
@json_option
@pass_account
@_calls
def templates_list(account: Account, as_json: bool) -> None:
    """Every template: id, name, body."""
    _listing(_rows(account.client(), "/v3/sms/templates"), as_json, "templates", ("ID", "NAME", "BODY"),
             lambda row: (row.get("template_id"), row.get("template_name"), repr(str(row.get("body"))[:60])))


@templates_group.command("show")
@click.argument("template_id", type=int)
@pass_account
@_calls
def templates_show(account: Account, template_id: int) -> None:
    """One template."""
    _done(account.client().request("GET", f"/v3/sms/templates/{template_id}"))


@templates_group.command("create")
@click.argument("name")
@click.argument("body")
@yes_option
@pass_account
@_calls
def templates_create(account: Account, name: str, body: str, yes: bool) -> None:
    """Store a template NAME with BODY (placeholders such as {first_name} are kept as written)."""
    payload = {"template_name": name, "body": body}
    confirm(yes, f"create the template {name!r}", f"POST /v3/sms/templates {json.dumps(payload, ensure_ascii=False)}")
    _done(account.client().request("POST", "/v3/sms/templates", json=payload, idempotent=False))


@templates_group.command("update")
@click.argument("template_id", type=int)
@click.option("--name", help="A new name.")
@click.option("--body", help="A new body.")
@yes_option
@pass_account
@_calls
def templates_update(account: Account, template_id: int, name: str | None, body: str | None, yes: bool) -> None:
    """Change a template's name or body."""
    payload = _given({"template_name": name, "body": body})
    if not payload:
        raise click.UsageError("nothing to change: give --name or --body")
    client = account.client()
    path = f"/v3/sms/templates/{template_id}"
    before = client.request("GET", path)
    confirm(yes, f"change template #{template_id}", f"PUT {path} {json.dumps(payload, ensure_ascii=False)}",
            _diff(before, payload))
    _done(client.request("PUT", path, json=payload))


@templates_group.command("delete")
@click.argument("template_id", type=int)
@yes_option
@pass_account
@_calls
def templates_delete(account: Account, template_id: int, yes: bool) -> None:
    """Delete a template."""
    _delete(account.client(), f"/v3/sms/templates/{template_id}", f"template #{template_id}",
            lambda before: repr(before.get("template_name")), yes)


# --- verified sender addresses ----------------------------------------------------------------------------


@clicksend.group("emails")
def emails_group() -> None:
    """Verified sender e-mail addresses."""


@emails_group.command("list")
@json_option
@pass_account
@_calls
def emails_list(account: Account, as_json: bool) -> None:
    """Every address: id, address, verified or not."""
    _listing(_rows(account.client(), "/v3/email/addresses"), as_json, "email addresses", ("ID", "ADDRESS", "STATE"),
             lambda row: (row.get("email_address_id"), row.get("email_address"),
                          "verified" if to_int(row.get("verified")) else "not verified"))


@emails_group.command("add")
@click.argument("address")
@yes_option
@pass_account
@_calls
def emails_add(account: Account, address: str, yes: bool) -> None:
    """Add ADDRESS (ClickSend then mails it a verification token)."""
    body = {"email_address": address}
    confirm(yes, f"add the sender address {address!r}", f"POST /v3/email/addresses {json.dumps(body)}")
    _done(account.client().request("POST", "/v3/email/addresses", json=body, idempotent=False))


@emails_group.command("delete")
@click.argument("email_address_id", type=int)
@yes_option
@pass_account
@_calls
def emails_delete(account: Account, email_address_id: int, yes: bool) -> None:
    """Delete an address."""
    _delete(account.client(), f"/v3/email/addresses/{email_address_id}", f"the sender address #{email_address_id}",
            lambda before: repr(before.get("email_address")), yes)


# --- Maton connections ------------------------------------------------------------------------------------


@clicksend.group("connections")
def connections_group() -> None:
    """Maton connections to ClickSend (MATON_API_KEY)."""


@connections_group.command("list")
@json_option
@pass_account
@_calls
def connections_list(account: Account, as_json: bool) -> None:
    """Every ClickSend connection: id, status, created."""
    _listing(account.maton().list("clicksend"), as_json, "ClickSend connections", ("ID", "STATUS", "CREATED"),
             lambda row: (row.get("connection_id"), row.get("status"), row.get("creation_time")))


@connections_group.command("create")
@yes_option
@pass_account
@_calls
def connections_create(account: Account, yes: bool) -> None:
    """Start a new ClickSend connection; open the printed URL to give it the ClickSend credentials."""
    maton = account.maton()
    confirm(yes, "create a Maton connection to ClickSend", f"POST {maton.base_url}/connections "
            + json.dumps({"app": "clicksend"}))
    row = maton.create("clicksend")
    _done(row)
    click.echo(f"Finish it at: {row.get('url')}")


@connections_group.command("delete")
@click.argument("connection_id")
@yes_option
@pass_account
@_calls
def connections_delete(account: Account, connection_id: str, yes: bool) -> None:
    """Delete a connection (Hookline stops reaching ClickSend through it)."""
    maton = account.maton()
    before = maton.get(connection_id)
    confirm(yes, f"delete the Maton connection {connection_id} ({before.get('app')}, {before.get('status')})",
            f"DELETE {maton.base_url}/connections/{connection_id}")
    maton.delete(connection_id)
    click.echo(f"Done: connection {connection_id} deleted.")
