"""Outbound connections that check the address they connect to: private addresses refused, no second lookup.

Every connection here goes to loopback. To show where a connection to a "public" address goes, the guard's
forbidden-address check is patched to treat 127.0.0.2 as public (`public_origin`, a recording server there),
while 127.0.0.1 (`origin`) stays loopback and refused; names are answered by a fake resolver.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import PUBLIC_LOOKALIKE
from tests.origin_server import Origin
from workers.errors import DestinationRefused
from workers.net.guard import session, vetted_addresses

Resolver = Callable[..., list[tuple[Any, ...]]]


def resolve(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Answer lookups of the names in `answers` from it (one list of addresses per lookup, the last one
    repeated), record each lookup, and refuse every other name but loopback literals and localhost."""
    real: Resolver = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        answer = answers[host][min(len(lookups), len(answers[host])) - 1]
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answer]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return lookups


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "::ffff:127.0.0.1"])
def test_loopback_addresses_are_refused(host: str) -> None:
    # Every other kind (private, link-local, multicast, unspecified...) is the predicate's own test
    # (tests/core/test_callbacks.py); here it is the guard that applies it.
    with pytest.raises(DestinationRefused, match="loopback"):
        vetted_addresses(host, 80)


def test_a_name_with_one_forbidden_answer_among_public_ones_is_refused_whole(
        public_origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    resolve(monkeypatch, {"mixed.test": [[PUBLIC_LOOKALIKE, "127.0.0.1"]]})
    with pytest.raises(DestinationRefused, match="127.0.0.1 is a loopback address"):
        vetted_addresses("mixed.test", 80)


def test_a_public_address_is_returned_as_the_one_to_connect_to(public_origin: Origin) -> None:
    assert vetted_addresses(PUBLIC_LOOKALIKE, 443) == [PUBLIC_LOOKALIKE]


def test_an_unresolvable_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve(monkeypatch, {"no-such-host.test": [[]]})
    with pytest.raises(DestinationRefused, match="cannot resolve"):
        vetted_addresses("no-such-host.test", 80)


def test_the_public_session_will_not_reach_a_loopback_origin(origin: Origin) -> None:
    assert requests.post(f"{origin.url}/plain", json={}, timeout=5).status_code == 200  # reachable otherwise
    with pytest.raises(DestinationRefused, match="loopback"):
        session().post(f"{origin.url}/guarded", json={}, timeout=5)
    assert [r["path"] for r in origin.received] == ["/plain"]


def test_a_dns_answer_that_changes_after_the_check_is_never_connected_to(
        origin: Origin, public_origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: the name first resolves to a public address (passing the check), then to loopback. The
    # connection must go to the address that was checked, not to whatever a second lookup says. Both servers
    # listen on the same port, so only the address tells them apart.
    port = urlsplit(origin.url).port
    lookups = resolve(monkeypatch, {"rebind.test": [[PUBLIC_LOOKALIKE], ["127.0.0.1"]]})
    reply = session().post(f"http://rebind.test:{port}/rebound", json={}, timeout=5)
    assert reply.status_code == 200
    assert lookups == ["rebind.test"]  # one lookup: the checked answer is the one used
    assert [r["path"] for r in public_origin.received] == ["/rebound"]  # it went to the address checked…
    assert origin.received == []  # …and not to the one a second lookup gives
    assert public_origin.received[0]["headers"]["Host"] == f"rebind.test:{port}"  # still addressed by name


def test_a_redirect_to_a_loopback_address_is_refused(origin: Origin, public_origin: Origin) -> None:
    public_origin.script = [(307, {"Location": f"{origin.url}/inside"})]
    with pytest.raises(DestinationRefused, match="127.0.0.1 is a loopback address"):
        session().post(f"{public_origin.url}/outside", json={}, timeout=5)
    assert [r["path"] for r in public_origin.received] == ["/outside"]
    assert origin.received == []


def test_every_address_is_tried_in_turn(origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    # A dual-stack name whose first answer does not answer (no IPv6 route, say): the next one is tried, as
    # urllib3 itself would. Loopback addresses need the allow_private session.
    port = urlsplit(origin.url).port
    resolve(monkeypatch, {"dual.test": [["127.0.0.3", "127.0.0.1"]]})  # nothing listens on 127.0.0.3
    assert session(allow_private=True).post(f"http://dual.test:{port}/second", json={}, timeout=5).status_code == 200
    assert [r["path"] for r in origin.received] == ["/second"]
    with pytest.raises(DestinationRefused, match="loopback"):
        session().post(f"http://dual.test:{port}/refused", json={}, timeout=5)
