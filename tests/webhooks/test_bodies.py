"""Request bodies are read whole and bounded before the app sees them, whatever their framing: Flask's test client,
werkzeug's server over real loopback sockets, and the middleware on its own."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterable

import pytest
import redis

from tests.conftest import SECRETS
from tests.pending import pending_ids
from webhooks.bodies import BoundedBodies, read_body
from workers.errors import IngestError

MAX_BODY = 1024 * 1024
BEARER = {"Authorization": f"Bearer {SECRETS['ALERTMANAGER_TOKEN']}", "Content-Type": "application/json"}


def alert_body(size: int) -> bytes:
    """A valid Alertmanager body of exactly `size` bytes."""
    doc = {"version": "4", "status": "firing", "alerts": [], "pad": ""}
    doc["pad"] = "x" * (size - len(json.dumps(doc).encode()))
    body = json.dumps(doc).encode()
    assert len(body) == size
    return body


def nothing_stored(redis_client: redis.Redis) -> bool:
    return pending_ids(redis_client) == [] and not redis_client.keys("hl:event:*")


def test_a_chunked_body_over_the_limit_is_413_in_the_test_client(client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    over = alert_body(MAX_BODY) + b" " * 10  # valid JSON up to the limit: a cut there would be accepted
    response = client.post("/hooks/alerts", input_stream=io.BytesIO(over),
                           headers={**BEARER, "Transfer-Encoding": "chunked"})
    assert response.status_code == 413
    assert response.json == {"error": "too_large", "message": f"body larger than {MAX_BODY} bytes"}
    assert nothing_stored(redis_client)


def test_a_body_at_the_limit_is_accepted_whatever_its_framing(client) -> None:  # noqa: ANN001
    exact = alert_body(MAX_BODY)
    assert client.post("/hooks/alerts", data=exact, headers=BEARER).status_code == 202
    again = client.post("/hooks/alerts", input_stream=io.BytesIO(exact),
                        headers={**BEARER, "Transfer-Encoding": "chunked"})
    assert again.status_code == 200 and again.json["duplicate"] is True  # the same whole body: the same event


def raw_post(live_server: str, head: bytes, body: bytes) -> bytes:
    host, port = live_server.removeprefix("http://").split(":")
    # Generous: a loaded machine reads and checks a 1 MiB body slowly; the test asserts what comes back, not when.
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head)
        for i in range(0, len(body), 65536):
            piece = body[i:i + 65536]
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reply = b""
        while piece := sock.recv(65536):
            reply += piece
    return reply


def test_a_chunked_body_over_the_limit_is_413_over_real_sockets(live_server: str, redis_client: redis.Redis) -> None:
    head = (b"POST /hooks/alerts HTTP/1.1\r\nHost: hookline\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + SECRETS["ALERTMANAGER_TOKEN"].encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    reply = raw_post(live_server, head, alert_body(MAX_BODY) + b"    ")
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"] == "too_large"
    assert nothing_stored(redis_client)
    assert raw_post(live_server, head, alert_body(MAX_BODY)).startswith(b"HTTP/1.1 202 ")


def test_a_client_still_sending_past_the_limit_reads_the_413_not_a_reset(live_server: str,
                                                                         redis_client: redis.Redis) -> None:
    head = (b"POST /hooks/alerts HTTP/1.1\r\nHost: hookline\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + SECRETS["ALERTMANAGER_TOKEN"].encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    reply = raw_post(live_server, head, alert_body(MAX_BODY) + b" " * (512 * 1024))
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert nothing_stored(redis_client)


class Stalls(io.RawIOBase):
    """A request body that gives `first` and then times out, as a socket with a deadline does."""

    def __init__(self, first: bytes):
        self.first = first

    def read(self, size: int = -1) -> bytes:
        if self.first:
            out, self.first = self.first, b""
            return out
        raise TimeoutError("timed out")


def call(app: BoundedBodies, environ: dict[str, object]) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        seen.append(status)

    out: Iterable[bytes] = app({"REQUEST_METHOD": "POST", **environ}, start_response)
    return seen[0], b"".join(out)


def test_a_body_that_stops_arriving_is_408_and_the_app_is_not_called() -> None:
    called = []
    app = BoundedBodies(lambda environ, start: called.append(environ) or [], 100)
    status, body = call(app, {"CONTENT_LENGTH": "50", "wsgi.input": Stalls(b"{")})
    assert status.startswith("408 ") and json.loads(body)["error"] == "timeout"
    status, body = call(app, {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": Stalls(b"{")})
    assert status.startswith("408 ")
    assert called == []


def test_the_app_sees_the_whole_body_with_its_length() -> None:
    seen: list[tuple[str, bytes, bool]] = []

    def inner(environ, start_response):  # noqa: ANN001, ANN202
        seen.append((environ["CONTENT_LENGTH"], environ["wsgi.input"].read(), "HTTP_TRANSFER_ENCODING" in environ))
        start_response("200 OK", [])
        return [b""]

    app = BoundedBodies(inner, 100)
    assert call(app, {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 100),
                      "wsgi.input_terminated": True})[0] == "200 OK"
    assert seen == [("100", b"x" * 100, False)]


@pytest.mark.parametrize(("environ", "status"), [
    ({"CONTENT_LENGTH": "101", "wsgi.input": io.BytesIO(b"")}, 413),  # refused from the header, nothing read
    ({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 101)}, 413),
    ({"CONTENT_LENGTH": "10", "wsgi.input": io.BytesIO(b"x" * 5)}, 400),  # the body ended early
    ({"CONTENT_LENGTH": "ten", "wsgi.input": io.BytesIO(b"")}, 400),
])
def test_bodies_that_cannot_be_handed_over(environ: dict[str, object], status: int) -> None:
    with pytest.raises(IngestError) as refused:
        read_body(environ, 100)
    assert refused.value.status == status


def test_a_request_without_a_body_is_passed_on_untouched() -> None:
    environ: dict[str, object] = {"wsgi.input": Stalls(b"")}  # reading it would raise
    assert read_body(environ, 100) is None


def test_at_most_concurrency_requests_are_in_the_app_at_once() -> None:
    inside, most, lock, release = [0], [0], threading.Lock(), threading.Event()

    def inner(environ, start_response):  # noqa: ANN001, ANN202
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        release.wait(5)
        with lock:
            inside[0] -= 1
        start_response("200 OK", [])
        return [b""]

    app = BoundedBodies(inner, 100, concurrency=2)
    threads = [threading.Thread(target=call, args=(app, {"wsgi.input": io.BytesIO(b"")})) for _ in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # all five have arrived; two are in
    assert most[0] == 2
    release.set()
    for t in threads:
        t.join(5)
    assert most[0] == 2 and inside[0] == 0
