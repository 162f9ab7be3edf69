"""Shared fixtures: a real Redis (REDIS_URL, or one this session starts), settings, runtime, app, workers; and
the rule that tests send traffic to loopback addresses only."""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from rq import SimpleWorker
from werkzeug.serving import make_server

from tests.origin_server import Origin
from webhooks import create_app
from workers.clicksend.simstate import SimState
from workers.clicksend.simulator import create_simulator
from workers.entry.runtime import Runtime, set_runtime
from workers.net import guard
from workers.tools.localredis import redis_answers, start_redis
from workers.wiring import pipeline
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import Settings

API_TOKEN = "test-api-token"
WHSEC = "whsec_" + base64.b64encode(b"calendar-test-secret-0123").decode()
SECRETS = {
    "SHOP_WEBHOOK_SECRET": "shop-secret",
    "STRIPE_WEBHOOK_SECRET": "whsec_stripe-test-secret",
    "ALERTMANAGER_TOKEN": "alert-token",
    "GRAFANA_WEBHOOK_TOKEN": "grafana-token",
    "CALCOM_WEBHOOK_SECRET": "calcom-secret",
    "CALENDLY_SIGNING_KEY": "calendly-signing-key",
    "CALENDAR_WEBHOOK_SECRET": WHSEC,  # no shipped source uses it now; tests that build their own still may
}
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"

# --- loopback only ----------------------------------------------------------------------------------
# Tests send traffic to this machine's loopback addresses and nowhere else, not even to an address expected to
# fail: a connection, a datagram or a name lookup (the resolver is a server too) for anything else is stopped
# and fails the test that tried. Names a test resolves itself (a fake getaddrinfo) never reach the real one.
# This process only; the servers it starts are given loopback URLs.

_NET_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
               "socket.gethostbyname_ex", "socket.gethostbyaddr"}
_outside: list[str] = []


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in (None, "", "localhost"):
        return True
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False  # a name: only "localhost" is looked up for real
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _loopback_only(event: str, args: tuple[Any, ...]) -> None:
    if event not in _NET_EVENTS:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1]  # (socket, address)
        if not isinstance(address, tuple):
            return  # a Unix socket
        host = address[0]
    else:
        host = args[0]
    if not _is_loopback(host):
        _outside.append(f"{event} {host!r}")
        raise RuntimeError(f"tests send traffic to loopback addresses only, not to {host!r} ({event})")


sys.addaudithook(_loopback_only)


@pytest.fixture(autouse=True)
def _nothing_left_loopback() -> Iterator[None]:
    """Fails a test that tried to reach anything but loopback, even if it caught the error."""
    _outside.clear()
    yield
    tried, _outside[:] = list(_outside), []
    assert tried == [], f"tried to reach beyond loopback: {tried}"


def _pick_empty_db(base_url: str) -> str:
    # Like RQ's own suite: never flush a database someone else uses; take the first empty one from 15 down.
    base = base_url.rsplit("/", 1)[0] if base_url.count("/") > 2 else base_url
    for db in range(15, 0, -1):
        url = f"{base}/{db}"
        client = redis.Redis.from_url(url)
        try:
            if client.dbsize() == 0 or client.get("hookline:test-db") is not None:
                client.set("hookline:test-db", "1")
                return url
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis database on {base}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the whole session: $REDIS_URL if it answers, else a private redis-server."""
    url = os.environ.get("REDIS_URL")
    proc = None
    if not url or not redis_answers(url):
        proc, url = start_redis(tmp_path_factory.mktemp("redis"), appendonly=False)
    yield _pick_empty_db(url)
    if proc is not None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A decoded client on an empty database (flushed before each test)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    client.set("hookline:test-db", "1")
    yield client
    client.close()


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The secrets the test rules directory refers to, set in the environment."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return dict(SECRETS)


NEUTRAL_POLICIES = "policies:\n  default: {approval: auto}\n  paging: {approval: auto}\n"


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hookline's wheel as pip builds it, from a fresh copy of what a source distribution holds (links kept as
    links), so no earlier build's egg-info in the checkout can supply a file the configuration forgot. With the
    setuptools and wheel installed here (no build isolation, no index): a test reaches nothing but loopback."""
    root = tmp_path_factory.mktemp("wheel")
    source, out = root / "source", root / "dist"
    for name in ("workers", "webhooks", "rules", "examples"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "--no-cache-dir", "--quiet", "--wheel-dir", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = out.glob("hookline-*.whl")
    return wheel


def neutral_rules(target: Path) -> Path:
    """A copy of the shipped rules whose policies approve everything, so outcomes do not depend on the
    wall clock (quiet hours) or on earlier tests (rates, budget). Policy tests set their own."""
    shutil.copytree(ROOT / "rules", target)
    (target / "policies.yaml").write_text(NEUTRAL_POLICIES)
    return target


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The shipped rules with neutral policies."""
    return neutral_rules(tmp_path / "shipped-rules")


@pytest.fixture
def settings(redis_client: redis.Redis, redis_url: str, rules_dir: Path, secrets_env: dict[str, str]) -> Settings:
    """Settings for one test: a clean Redis database, the shipped rules and a known API token."""
    return Settings(redis_url=redis_url, rules_dir=str(rules_dir), api_token=API_TOKEN)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A runtime installed as this process's, so in-process workers use it."""
    rt = Runtime.build(settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)


@pytest.fixture
def app(runtime: Runtime):  # noqa: ANN201 - Flask
    """The web app on the test runtime."""
    application = create_app(runtime=runtime)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def live_server(app) -> Iterator[str]:  # noqa: ANN001
    """The app served over real HTTP on a loopback port, many threads; yields its base URL."""
    url, stop = serve(app)
    yield url
    stop()


@dataclass
class Simulator:
    """A ClickSend simulator served over real loopback HTTP."""

    url: str
    state: SimState


def serve(app, port: int = 0, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:  # noqa: ANN001
    """Serve a WSGI app on a loopback address in a thread; return its URL and a stop function."""
    server = make_server(host, port, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(5)

    return f"http://{host}:{server.server_port}", stop


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A fresh simulator (receipts final after 0.2 s) over real HTTP."""
    state = SimState(seed=7)
    state.faults.receipt_delay = 0.2
    url, stop = serve(create_simulator(state))
    yield Simulator(url, state)
    stop()


ORIGIN_SECRET = "whsec_" + base64.b64encode(b"origin-callback-secret-01").decode()
RECEIPT_TOKEN = "receipt-token-xyz"


@pytest.fixture
def origin() -> Iterator[Origin]:
    """A recording origin server over real HTTP that verifies Standard Webhooks signatures."""
    server = Origin(ORIGIN_SECRET)
    server.url, stop = serve(server.app())
    yield server
    stop()


# A loopback address the outbound guard is made to treat as public (`public_origin`), so that a test can show
# where a connection went without sending anything beyond this machine.
PUBLIC_LOOKALIKE = "127.0.0.2"


@pytest.fixture
def public_origin(origin: Origin, monkeypatch: pytest.MonkeyPatch) -> Iterator[Origin]:
    """A second recording origin on 127.0.0.2, at `origin`'s port, that the guard treats as a public address
    (its forbidden-address check is patched for that one address); `origin` on 127.0.0.1 stays loopback and
    refused."""
    real = guard.forbidden_address
    monkeypatch.setattr(guard, "forbidden_address", lambda address: None if address == PUBLIC_LOOKALIKE
                        else real(address))
    server = Origin(ORIGIN_SECRET)
    server.url, stop = serve(server.app(), port=urlsplit(origin.url).port or 0, host=PUBLIC_LOOKALIKE)
    yield server
    stop()


@pytest.fixture
def e2e(tmp_path: Path, origin: Origin, simulator: Simulator, runtime: Runtime,
        monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The runtime with the shipped rules plus a shop callback to `origin`, sending to `simulator`."""
    rules = neutral_rules(tmp_path / "rules")
    sources = (rules / "sources.yaml").read_text()
    callback = (
        "    callback:\n"
        f"      url: \"{origin.url}/orders/{{{{ event.payload.id }}}}/sms\"\n"
        "      body: {order_id: \"{{ event.payload.id }}\", message: \"{{ message.id }}\", state: \"{{ state }}\"}\n"
        "      on: [sent, delivered, undelivered, failed, suppressed, reply]\n"
        "      secret: \"${ORIGIN_SECRET}\"\n"
        "      allow_private: true\n"
        "      forward_replies: true\n"
        "      max_attempts: 3\n"
    )
    (rules / "sources.yaml").write_text(sources.replace("    keep_headers: [X-Shopify-Shop-Domain]\n",
                                                        "    keep_headers: [X-Shopify-Shop-Domain]\n" + callback))
    monkeypatch.setenv("ORIGIN_SECRET", ORIGIN_SECRET)
    runtime.settings = runtime.settings.with_(rules_dir=str(rules), clicksend_base_url=simulator.url,
                                              receipt_token=RECEIPT_TOKEN, send_rate=1000.0)
    runtime.rules = RulesDir(rules, runtime.settings)
    assert runtime.rules.reload(), runtime.rules.errors
    runtime._client = None
    return runtime


def use_policies(rt: Runtime, text: str) -> None:
    """Replace the runtime's policies.yaml with `text` and reload."""
    rules = Path(rt.settings.rules_dir)
    (rules / "policies.yaml").write_text(text)
    rt.rules = RulesDir(rules, rt.settings)
    assert rt.rules.reload(), rt.rules.errors


@pytest.fixture
def work(runtime: Runtime):  # noqa: ANN201
    """Run every queued job in-process until the queues are empty (RQ's SimpleWorker, burst mode)."""

    def run(queues: tuple[str, ...] = pipeline.ALL_QUEUES, with_scheduler: bool = False) -> None:
        qs = [pipeline.queue(runtime.rq_connection, q) for q in queues]
        SimpleWorker(qs, connection=runtime.rq_connection).work(burst=True, with_scheduler=with_scheduler)

    return run
