"""HTTP sessions whose connections check the address they are about to connect to.

Owns the resolve-check-connect step for outbound callbacks: the name is resolved once, every address it
resolves to is checked (`core.callbacks.forbidden_address`), and the connection goes to an address from
that same answer. Checking a URL and then letting the HTTP library resolve it again would leave a window in
which a DNS answer could change to a private address (DNS rebinding). Knows nothing of callbacks or Redis.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from workers.core.callbacks import forbidden_address
from workers.errors import DestinationRefused


def vetted_addresses(host: str, port: int, allow_private: bool = False) -> list[str]:
    """Resolve `host` and return the addresses to try, in the resolver's order. Unless `allow_private`, raise
    DestinationRefused if any of them may not be called (a name with one private answer among public ones is
    refused whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"cannot resolve {host}: {exc}", host) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        why = None if allow_private else forbidden_address(address)
        if why:
            raise DestinationRefused(f"{host}: {why} (set allow_private: true to allow)", host)
    return addresses


class _Vetted:
    """Connect to an address that was checked, while TLS still verifies the certificate for the name."""

    allow_private = False
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        failure: Exception | None = None
        try:
            # Each address in turn, as urllib3 itself would (a dual-stack name with no IPv6 route, say).
            for address in vetted_addresses(name, self.port, self.allow_private):
                self._dns_host = address
                try:
                    sock: socket.socket = super()._new_conn()  # type: ignore[misc]
                    return sock
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    failure = exc
            raise failure or DestinationRefused(f"{name}: no address to connect to", name)
        finally:
            self._dns_host = name  # `host` (SNI, certificate check, Host header) stays the name


class _VettedHTTPConnection(_Vetted, HTTPConnection):
    pass


class _VettedHTTPSConnection(_Vetted, HTTPSConnection):
    pass


class _PrivateHTTPConnection(_VettedHTTPConnection):
    allow_private = True


class _PrivateHTTPSConnection(_VettedHTTPSConnection):
    allow_private = True


def _adapter(http: type[HTTPConnection], https: type[HTTPSConnection]) -> HTTPAdapter:
    pools = {"http": type("Pool", (HTTPConnectionPool,), {"ConnectionCls": http}),
             "https": type("Pool", (HTTPSConnectionPool,), {"ConnectionCls": https})}

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return Adapter()


def session(allow_private: bool = False) -> requests.Session:
    """A session whose every connection (redirects included) goes to an address resolved and, unless
    `allow_private`, checked in the same step: private, loopback, link-local and other special addresses are
    refused.

    Environment proxies are ignored: through a proxy, the address checked would be the proxy's.
    """
    s = requests.Session()
    s.trust_env = False
    adapter = (_adapter(_PrivateHTTPConnection, _PrivateHTTPSConnection) if allow_private
               else _adapter(_VettedHTTPConnection, _VettedHTTPSConnection))
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
