"""Reading a Redis URL (a plain one, or a Sentinel-managed Redis written `redis+sentinel://…`) and building a
client from it: the one place a Hookline process connects to Redis.

A Sentinel URL names the sentinels and the service (Sentinel's `master name`); the client asks the sentinels for
the current primary and asks again after a failover:

    redis+sentinel://[[username]:password@]host[:port][,host[:port]…]/service_name[/db]

The port defaults to 26379 (Sentinel's), the database to 0; the user name and password are the primary's (the
sentinels are reached without one). Owns no key and no record: the repositories are handed the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
SHAPE = "redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db]"


def _driver_info() -> Any:
    """What every connection names itself with (CLIENT SETINFO: `redis-py(hookline_v…)`), built once: without
    it redis-py ≥ 7.1 reads its own package metadata for every new connection, and each RQ work horse makes new
    connections (a third of a no-op job's CPU in the work horse)."""
    if not hasattr(redis, "DriverInfo"):
        return None  # older redis-py: the version is read once, at import
    try:
        version = metadata.version("hookline")
    except metadata.PackageNotFoundError:
        version = "0"
    return redis.DriverInfo().add_upstream_driver("hookline", version)


_DRIVER_INFO = _driver_info()


@dataclass(frozen=True)
class SentinelAddress:
    """A Sentinel-managed Redis: where its sentinels listen, the service they watch, and the database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    """True when `url` names a Sentinel-managed Redis."""
    return url.lower().startswith(SENTINEL_SCHEME + "://")


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The Sentinel address `url` spells; ValueError saying what is wrong (never quoting the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://, e.g. {SHAPE}")
    if "?" in rest or "#" in rest:
        raise ValueError(f"a Sentinel URL takes no query or fragment: {SHAPE}")
    netloc, _, path = rest.partition("/")
    if "@" in path:  # a password with a `/` in it: its pieces must not show up in the messages below
        raise ValueError(f"an @ after the hosts: percent-encode / in the password as %2F: {SHAPE}")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if password is None:  # `x@host`: a user name alone, or a password without its colon? Say which
            raise ValueError(f"write the password as :password@ (or user:password@): {SHAPE}")
    sentinels = tuple(_host_port(item) for item in hosts.split(","))
    segments = path.split("/") if path else []
    if not segments or not segments[0]:
        raise ValueError(f"no service name (Sentinel's master name) after the hosts: {SHAPE}")
    if len(segments) > 2:
        raise ValueError(f"too many path segments ({path!r}): {SHAPE}")
    db = 0
    if len(segments) == 2 and segments[1]:  # `/service/` is database 0, as `/service`
        if not segments[1].isdigit():
            raise ValueError(f"the database must be a whole number, not {segments[1]!r}: {SHAPE}")
        db = int(segments[1])
    return SentinelAddress(sentinels, unquote(segments[0]), db, username, password)


def _host_port(item: str) -> tuple[str, int]:
    if not item:
        raise ValueError(f"an empty sentinel address (each host[:port] separated by one comma): {SHAPE}")
    if item.startswith("["):  # [IPv6]:port
        host, bracket, tail = item[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise ValueError(f"a bracketed IPv6 address is written [addr] or [addr]:port, not {item!r}")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = item.partition(":")
        if not host or ":" in port_text:
            raise ValueError(f"a sentinel is host or host:port (IPv6 in brackets), not {item!r}")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"sentinel {item!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def check_url(url: str) -> None:
    """ValueError when `url` is not a Redis URL Hookline can connect with (plain or Sentinel)."""
    if is_sentinel_url(url):
        parse_sentinel_url(url)
    elif urlsplit(url).scheme.lower() not in PLAIN_SCHEMES:
        raise ValueError(f"must start with redis://, rediss://, unix:// or {SENTINEL_SCHEME}:// ({SHAPE})")


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for the Redis `url` names: plain URLs as redis-py reads them; a Sentinel URL through its
    sentinels, following the primary across failovers. `options` are redis-py's connection options (timeouts,
    `decode_responses`…); the sentinels are asked with the same socket timeouts."""
    if _DRIVER_INFO is not None:
        options.setdefault("driver_info", _DRIVER_INFO)
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    address = parse_sentinel_url(url)
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    # redis-py's sentinel module carries no annotations.
    sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        address.service, db=address.db, username=address.username, password=address.password, **options)
    return client


def close(client: redis.Redis) -> None:
    """Close `client`'s connections, and for a Sentinel-managed one its connections to the sentinels too."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    client.close()
    for sentinel in getattr(manager, "sentinels", []):
        sentinel.close()


def shown_url(url: str) -> str:
    """`url` fit to print: any password left out (Sentinel URLs too, whose several hosts urlsplit cannot read)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return urlunsplit((scheme, f"{userinfo.partition(':')[0]}:•••@{hosts}", slash + path, "", ""))
