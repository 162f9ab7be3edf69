"""Reading Redis URLs (plain and `redis+sentinel://`, with clear errors for malformed ones), and a store on a
real Sentinel-managed Redis: it writes to the primary the sentinel names and sees its writes reach a replica."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.sentinels import sentinels
from workers.core.events import Event
from workers.errors import ConfigError
from workers.store.connection import (
    DEFAULT_SENTINEL_PORT,
    SentinelAddress,
    check_url,
    close,
    connect,
    parse_sentinel_url,
    shown_url,
)
from workers.tools.localredis import free_port, redis_answers, start_redis
from workers.wiring.connections import open_store
from workers.wiring.settings import Settings


def test_a_sentinel_url_names_every_sentinel_the_service_the_database_and_the_primarys_credentials() -> None:
    address = parse_sentinel_url("redis+sentinel://app:s%40cret@10.0.0.1:26380,sentinel-b,[::1]:26381/orders/3")
    assert address == SentinelAddress(
        sentinels=(("10.0.0.1", 26380), ("sentinel-b", DEFAULT_SENTINEL_PORT), ("::1", 26381)),
        service="orders", db=3, username="app", password="s@cret")


def test_a_sentinel_url_without_database_or_credentials_means_database_0_and_no_password() -> None:
    assert parse_sentinel_url("REDIS+SENTINEL://127.0.0.1/mymaster") == SentinelAddress(
        (("127.0.0.1", 26379),), "mymaster")
    assert parse_sentinel_url("redis+sentinel://:pw@h:1/m/").password == "pw"  # a trailing slash is no database


@pytest.mark.parametrize(("url", "problem"), [
    ("redis+sentinel://127.0.0.1:26379", "no service name"),
    ("redis+sentinel://127.0.0.1:26379/", "no service name"),
    ("redis+sentinel://127.0.0.1:26379/mymaster/one", "database must be a whole number, not 'one'"),
    ("redis+sentinel://127.0.0.1:26379/mymaster/0/extra", "too many path segments"),
    ("redis+sentinel://127.0.0.1:0/mymaster", "port must be a number from 1 to 65535"),
    ("redis+sentinel://127.0.0.1:70000/mymaster", "port must be a number from 1 to 65535"),
    ("redis+sentinel://127.0.0.1:port/mymaster", "port must be a number from 1 to 65535"),
    ("redis+sentinel://a:1,,b:2/mymaster", "an empty sentinel address"),
    ("redis+sentinel:///mymaster", "an empty sentinel address"),
    ("redis+sentinel://::1:26379/mymaster", "IPv6 in brackets"),
    ("redis+sentinel://[::1/mymaster", "bracketed IPv6 address"),
    ("redis+sentinel://h/mymaster?socket_timeout=1", "takes no query"),
    ("redis+sentinel://secretword@h/mymaster", "write the password as :password@"),
    ("redis+sentinel://:secret/word@h/mymaster", "percent-encode / in the password as %2F"),
    ("redis+sentinel://:sec:ret/word@h/mymaster/0", "percent-encode / in the password as %2F"),
])
def test_a_malformed_sentinel_url_says_what_is_wrong_and_shows_the_shape(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match="sentinel|Sentinel|IPv6") as caught:
        parse_sentinel_url(url)
    assert problem in str(caught.value)
    message = str(caught.value).replace("password", "")  # the word in the shape, not the secret
    assert "secret" not in message and "word" not in message


def test_settings_report_a_malformed_sentinel_url_as_a_redis_url_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "redis+sentinel://:hunter2@127.0.0.1:26379"})
    assert caught.value.problems == [
        "REDIS_URL: no service name (Sentinel's master name) after the hosts: "
        "redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db]"]
    with pytest.raises(ValueError, match="must start with redis://, rediss://, unix:// or redis\\+sentinel://"):
        check_url("sentinel://127.0.0.1:26379/mymaster")


def test_with_a_sentinel_url_an_event_must_reach_one_replica_unless_the_setting_says_otherwise() -> None:
    sentinel = "redis+sentinel://127.0.0.1:26379/mymaster/0"
    assert Settings.from_env({"REDIS_URL": sentinel}).min_replicas == 1
    assert Settings.from_env({"REDIS_URL": sentinel, "HOOKLINE_MIN_REPLICAS": "0"}).min_replicas == 0
    assert Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"}).min_replicas == 0
    assert Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "HOOKLINE_MIN_REPLICAS": "2"}).min_replicas == 2
    with pytest.raises(ConfigError, match="HOOKLINE_MIN_REPLICAS: must be a whole number, 0 or more"):
        Settings.from_env({"REDIS_URL": sentinel, "HOOKLINE_MIN_REPLICAS": "-1"})


def test_a_printed_redis_url_leaves_the_password_out_sentinel_urls_included() -> None:
    assert shown_url("redis+sentinel://app:hunter2@a:1,b:2/m/0") == "redis+sentinel://app:•••@a:1,b:2/m/0"
    assert shown_url("redis://:hunter2@127.0.0.1:6379/0") == "redis://:•••@127.0.0.1:6379/0"
    assert shown_url("redis+sentinel://a:1,b:2/m") == "redis+sentinel://a:1,b:2/m"


def _event(n: int) -> Event:
    return Event(id=f"evt_repl{n}", source="shop", type="orders/create", external_id=f"repl-{n}",
                 received_at=time.time(), payload={"n": n})


def test_a_store_on_a_sentinel_url_writes_to_the_primary_the_sentinel_names_and_waits_for_a_replica(
        tmp_path: Path) -> None:
    port = free_port()
    proc, _ = start_redis(tmp_path / "primary", port=port)
    try:
        with sentinels(tmp_path, port, replicas=1) as found:
            settings = Settings.from_env({"REDIS_URL": found.url})
            assert redis_answers(found.url)
            store = open_store(settings)
            assert store.min_replicas == 1
            assert store.events.ingest(_event(3), 3600, 3600, settings.partitions).created
            store.replicated()  # as the edge does before answering 202: the one replica acknowledged it
            close(store.r)
            with redis.Redis(port=next(iter(found.replicas))) as replica:
                assert replica.exists("hl:event:evt_repl3")
            client = connect(found.url)
            assert client.info("replication")["role"] == "master"
            close(client)
    finally:
        proc.kill()
        proc.wait(10)


def test_every_connection_names_hookline_to_redis_without_reading_package_metadata_again(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # redis-py reads its own package metadata for each new connection unless told who it is; each RQ work horse
    # opens new connections, so that read was a third of a no-op job's CPU there.
    def no_metadata(name: str) -> str:
        raise AssertionError(f"package metadata read for {name} on connect")

    monkeypatch.setattr("importlib.metadata.version", no_metadata)
    client = connect(redis_url, decode_responses=True)
    try:
        assert client.ping()
        # What CLIENT SETINFO sends (Redis 7.2 and later list it; older ones refuse the command, which is fine).
        name = client.connection_pool.get_connection().driver_info.formatted_name
    finally:
        close(client)
    assert name.startswith("redis-py(hookline_v")
