"""Outbound connections that check the address they connect to: private addresses refused, no second lookup."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import requests

from tests.origin_server import Origin
from workers.errors import DestinationRefused
from workers.net.guard import session, vetted_addresses


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.7", "192.168.1.1", "localhost",
                                  "0.0.0.0", "::ffff:127.0.0.1"])
def test_special_addresses_are_refused(host: str) -> None:
    with pytest.raises(DestinationRefused):
        vetted_addresses(host, 80)


def test_a_public_address_is_returned_as_the_one_to_connect_to() -> None:
    assert vetted_addresses("93.184.216.34", 443) == ["93.184.216.34"]


def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(DestinationRefused, match="cannot resolve"):
        vetted_addresses("no-such-host.invalid", 80)


def test_the_public_session_will_not_reach_a_loopback_origin(origin: Origin) -> None:
    assert requests.post(f"{origin.url}/plain", json={}, timeout=5).status_code == 200  # reachable otherwise
    with pytest.raises(DestinationRefused, match="loopback"):
        session().post(f"{origin.url}/guarded", json={}, timeout=5)
    assert [r["path"] for r in origin.received] == ["/plain"]


def test_a_dns_answer_that_changes_after_the_check_is_never_connected_to(origin: Origin,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: the name first resolves to a public address (passing the check), then to loopback.
    # The connection must go to the address that was checked, not to whatever a second lookup says.
    real = socket.getaddrinfo
    lookups: list[str] = []
    port = urlsplit(origin.url).port

    def rebinding(host: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if host != "rebind.test":
            return real(host, *args, **kwargs)
        lookups.append(host)
        answer = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(requests.ConnectionError):  # the public address is unreachable from here
        session().post(f"http://rebind.test:{port}/rebound", json={}, timeout=(1, 1))
    assert lookups == ["rebind.test"]  # one lookup: the checked answer is the one used
    assert origin.received == []


def test_every_address_is_tried_in_turn(origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    # A dual-stack name whose first answer does not answer (no IPv6 route, say): the next one is tried, as
    # urllib3 itself would. Loopback addresses need the allow_private session; the public one connects the
    # same way after its check.
    real = socket.getaddrinfo
    port = urlsplit(origin.url).port

    def two_answers(host: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if host != "dual.test":
            return real(host, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),  # nothing listens there
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    assert session(allow_private=True).post(f"http://dual.test:{port}/second", json={}, timeout=5).status_code == 200
    assert [r["path"] for r in origin.received] == ["/second"]
    with pytest.raises(DestinationRefused, match="loopback"):
        session().post(f"http://dual.test:{port}/refused", json={}, timeout=5)
