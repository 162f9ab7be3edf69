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

from workers.core.callbacks import forbidden_address
from workers.errors import HooklineError


class DestinationRefused(HooklineError):
    """The callback URL resolves to an address the source may not call (private, loopback, link-local)."""


def vetted_address(host: str, port: int) -> str:
    """Resolve `host` and return an address to connect to, or raise DestinationRefused if any address it
    resolves to may not be called (a name with one private answer among public ones is refused whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        why = forbidden_address(str(info[4][0]))
        if why:
            raise DestinationRefused(f"{host}: {why} (set allow_private: true to allow)")
    return str(infos[0][4][0])


class _Vetted:
    """Connect to the address that was checked, while TLS still verifies the certificate for the name."""

    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        self._dns_host = vetted_address(name, self.port)
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = name  # `host` (SNI, certificate check, Host header) stays the name


class _VettedHTTPConnection(_Vetted, HTTPConnection):
    pass


class _VettedHTTPSConnection(_Vetted, HTTPSConnection):
    pass


class _VettedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _VettedHTTPConnection


class _VettedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _VettedHTTPSConnection


class _VettedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _VettedHTTPPool, "https": _VettedHTTPSPool}


def public_session() -> requests.Session:
    """A session that refuses to connect to private, loopback, link-local and other special addresses.

    Environment proxies are ignored: through a proxy, the address checked would be the proxy's.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = _VettedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
