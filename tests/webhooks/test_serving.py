"""The web process as `hookline up` and the Procfile run it (gunicorn with `webhooks.serving`), against hostile
clients: stalled uploads, chunked bodies over the limit, and requests the server itself refuses.

Every connection goes to the server this module starts on a loopback port; every loop is bounded in count and
time, and every socket is closed when its test ends.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
import requests

from tests import signing
from tests.conftest import API_TOKEN, ROOT, SECRETS, neutral_rules
from tests.pending import pending_ids
from tests.waiting import wait_for
from webhooks import serving
from workers.tools.localredis import free_port
from workers.tools.supervisor import web_command

MAX_BODY = 1024 * 1024
EXTRA_SOURCES = """
  bearer-src:
    verify: {scheme: bearer, secret: "${BEARER_TOKEN}"}
    event_type: {value: thing}
  basic-src:
    verify: {scheme: basic, username: hook, password: "${BASIC_PASSWORD}"}
    event_type: {value: thing}
  open-src:
    verify: {scheme: none}
    event_type: {value: thing}
"""
EXTRA_SECRETS = {"BEARER_TOKEN": "bearer-token", "BASIC_PASSWORD": "basic-password"}


class Web:
    """The running web process: where it listens and the raw sockets a test opened to it."""

    def __init__(self, port: int, stack: ExitStack):
        self.port, self.url, self.stack = port, f"http://127.0.0.1:{port}", stack

    def connect(self, head: bytes, timeout: float = 5.0) -> socket.socket:
        sock = self.stack.enter_context(socket.create_connection(("127.0.0.1", self.port), timeout=timeout))
        sock.sendall(head)
        return sock


@pytest.fixture(scope="module")
def web_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the web process runs and writes its logs."""
    return tmp_path_factory.mktemp("web")


@pytest.fixture(scope="module")
def web(redis_url: str, web_home: Path) -> Iterator[int]:
    """`hookline up`'s web command on a free loopback port, with the shipped rules plus a bearer, a basic and an
    unsigned source; yields its port."""
    home = web_home
    rules = neutral_rules(home / "rules")
    (rules / "sources.yaml").write_text((rules / "sources.yaml").read_text().rstrip("\n") + "\n" + EXTRA_SOURCES)
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url,
           "HOOKLINE_RULES_DIR": str(rules), "HOOKLINE_API_TOKEN": API_TOKEN, "HOOKLINE_LOG_LEVEL": "WARNING",
           **SECRETS, **EXTRA_SECRETS}
    log = home / "web.log"
    # An access log as an operator would ask for one, with the request line, path, query and a header.
    access = ["--access-logfile", str(home / "access.log"),
              "--access-logformat", '%(h)s "%(r)s" %(s)s %(U)s?%(q)s %({authorization}i)s']
    with log.open("wb") as out:
        proc = subprocess.Popen(web_command(Path(sys.executable).parent, "127.0.0.1", port) + access, cwd=home,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass  # still starting
            assert time.monotonic() < deadline, "the web process did not become ready"
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def sockets(web: int) -> Iterator[Web]:
    """The web process, with every socket a test opens closed when it ends."""
    with ExitStack() as stack:
        yield Web(web, stack)


def read_reply(sock: socket.socket, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or `within` seconds pass), and when the
    first byte came (seconds from now; inf if none)."""
    start = time.monotonic()
    deadline = start + within
    first = float("inf")
    data = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not piece:
            break
        if not data:
            first = time.monotonic() - start
        data += piece
    return data, first


def json_reply(raw: bytes) -> tuple[int, dict[str, object], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert re.search(rb"(?im)^content-type: application/json", head), raw[:300]
    return status, json.loads(body), head


def shop_post(url: str, webhook_id: str, timeout: float) -> requests.Response:
    body = json.dumps({"id": 7, "name": "#7"}).encode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Webhook-Id": webhook_id, **signing.shopify(SECRETS["SHOP_WEBHOOK_SECRET"], body)}
    return requests.post(f"{url}/hooks/shop", data=body, headers=headers, timeout=timeout)


PROMPT = 5.0  # seconds: answered at once on a quiet machine; this leaves room for a busy one
STALLED_BODY = (b"POST /hooks/shop HTTP/1.1\r\nHost: hookline\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{\"id\": ")


def test_fifty_stalled_uploads_leave_the_service_answering_and_are_closed_in_bounded_time(sockets: Web) -> None:
    # Before: gthread workers gave every connection a thread for as long as its body took; a dozen stalled
    # uploads took all of them and nothing, /healthz included, was answered.
    stalled = [sockets.connect(STALLED_BODY) for _ in range(50)]
    half_headers = sockets.connect(b"POST /hooks/shop HTTP/1.1\r\nHost: hookline\r\nContent-")
    garbage = sockets.connect(b"\x16\x03\x01 not a request line")  # no line end: the parser waits for more
    opened = time.monotonic()
    time.sleep(0.5)  # every worker has them by now

    started = time.monotonic()  # before: never answered (requests' timeout)
    assert requests.get(f"{sockets.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert time.monotonic() - started < PROMPT
    started = time.monotonic()
    assert shop_post(sockets.url, f"stall-{time.time_ns()}", timeout=10).status_code == 202
    assert time.monotonic() - started < PROMPT

    # Headers that stop arriving: the connection is closed after the keep-alive time.
    for sock in (half_headers, garbage):
        data, _ = read_reply(sock, serving.keepalive + 5)
        assert data == b""
    assert time.monotonic() - opened < serving.keepalive + 5
    # A body that stops arriving: 408 once its time is up (as JSON), then the connection closes.
    data, first = read_reply(stalled[0], serving.BODY_SECONDS + 5)
    assert time.monotonic() - opened < serving.BODY_SECONDS + 5
    status, reply, _ = json_reply(data)
    assert (status, reply["error"]) == (408, "timeout")
    for sock in stalled[1:]:  # the others went the same way, at the same time
        data, first = read_reply(sock, PROMPT)
        assert data.startswith(b"HTTP/1.1 408 ") and first < PROMPT


def chunked(head: bytes, body: bytes, piece: int = 65536) -> bytes:
    out = [head]
    for i in range(0, len(body), piece):
        out.append(b"%x\r\n" % len(body[i:i + piece]) + body[i:i + piece] + b"\r\n")
    return b"".join(out) + b"0\r\n\r\n"


def at_limit_then_more() -> tuple[bytes, bytes]:
    """A JSON body of exactly MAX_BODY bytes (what a cut at the limit would accept), and it with more after."""
    doc = {"version": "4", "status": "firing", "alerts": [], "id": 1, "pad": ""}
    doc["pad"] = "x" * (MAX_BODY - len(json.dumps(doc).encode()))
    exact = json.dumps(doc).encode()
    assert len(exact) == MAX_BODY
    return exact, exact + b' {"more": "after the limit"}'


@pytest.mark.parametrize(("path", "auth"), [
    ("/hooks/bearer-src", b"Authorization: Bearer bearer-token\r\n"),
    ("/hooks/basic-src", b"Authorization: Basic " + base64.b64encode(b"hook:basic-password") + b"\r\n"),
    ("/hooks/open-src", b""),
    ("/hooks/alerts", b"Authorization: Bearer " + SECRETS["ALERTMANAGER_TOKEN"].encode() + b"\r\n"),
])
def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_stored(sockets: Web, redis_client: redis.Redis,
                                                                     path: str, auth: bytes) -> None:
    # Before: the body was cut at 1 MiB and the cut, valid JSON, was stored and answered 202.
    exact, over = at_limit_then_more()
    head = (f"POST {path} HTTP/1.1\r\nHost: hookline\r\nContent-Type: application/json\r\n".encode() + auth +
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    data, _ = read_reply(sockets.connect(chunked(head, over), timeout=10), 15)
    status, reply, _ = json_reply(data)
    assert (status, reply) == (413, {"error": "too_large", "message": f"body larger than {MAX_BODY} bytes"})
    assert pending_ids(redis_client) == []
    assert redis_client.keys("hl:event:*") == [] and redis_client.keys("hl:seen:*") == []
    # The same body at exactly the limit, chunked, is whole and accepted.
    data, _ = read_reply(sockets.connect(chunked(head, exact), timeout=10), 15)
    assert json_reply(data)[0] == 202


def test_a_signed_chunked_body_over_the_limit_is_413_not_401(sockets: Web, redis_client: redis.Redis) -> None:
    _, over = at_limit_then_more()
    head = (b"POST /hooks/shop HTTP/1.1\r\nHost: hookline\r\nContent-Type: application/json\r\n"
            b"X-Shopify-Topic: orders/create\r\n" +
            f"X-Shopify-Hmac-Sha256: {signing.hmac_b64(SECRETS['SHOP_WEBHOOK_SECRET'], over)}\r\n".encode() +
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    data, _ = read_reply(sockets.connect(chunked(head, over), timeout=10), 15)
    assert json_reply(data)[0] == 413
    assert pending_ids(redis_client) == []


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /healthz HTTP/1.1\r\nHost: hookline\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: hookline\r\n\r\n", 414, "uri_too_long"),
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431,
     "headers_too_large"),
])
def test_errors_the_server_answers_itself_are_json(sockets: Web, request_bytes: bytes, status: int,
                                                   code: str) -> None:
    # Before: gunicorn's own HTML page, while every other error is JSON.
    data, _ = read_reply(sockets.connect(request_bytes), 10)
    got, reply, _ = json_reply(data)
    assert (got, reply["error"]) == (status, code)
    assert isinstance(reply["message"], str) and reply["message"]


def test_the_procfile_runs_the_web_process_as_hookline_up_does() -> None:
    line = next(p for p in (ROOT / "Procfile").read_text().splitlines() if p.startswith("web:"))
    procfile = shlex.split(line.removeprefix("web:"))
    up = web_command(Path("/bin"), "127.0.0.1", 8000)
    up[0] = "gunicorn"

    def settings(args: list[str]) -> list[str]:  # where to listen, how many workers and how loud differ
        skip = {"--bind", "--workers", "--log-level"}
        return [a for i, a in enumerate(args) if a not in skip and (i == 0 or args[i - 1] not in skip)]

    assert settings(procfile) == settings(up) == ["gunicorn", "--config", "python:webhooks.serving",
                                                  "webhooks:create_app()"]


def test_the_access_log_masks_the_receipt_token_and_authorization(web: int, web_home: Path) -> None:
    secret = "receipt-secret-d41d8cd9"
    for url in (f"/clicksend/receipts/{secret}", f"/clicksend/inbound/{secret}?x=1",
                f"/clicksend/receipts?token={secret}&x=1"):
        requests.post(f"http://127.0.0.1:{web}{url}", data={"a": "1"}, timeout=10,
                      headers={"Authorization": f"Bearer {secret}"})
    log = web_home / "access.log"
    lines = wait_for(lambda: (found := [ln for ln in log.read_text().splitlines() if "/clicksend/" in ln])
                     and len(found) >= 3 and found, timeout=10, what="three access log lines")
    assert not [ln for ln in lines if secret in ln], lines
    assert any('"POST /clicksend/receipts/… HTTP/1.1"' in ln for ln in lines), lines
    assert any("/clicksend/inbound/…?x=1" in ln for ln in lines), lines
    assert any("token=…&x=1" in ln for ln in lines), lines
