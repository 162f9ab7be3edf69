"""gunicorn's settings for the web process: `gunicorn --config python:webhooks.serving "webhooks:create_app()"`.

The Procfile's `web` line and `hookline up` both run the web process with this module and add only where to
listen and how many workers; a command line flag overrides a setting here. The web process may face the
internet with no proxy in front, so it must survive clients that open a connection and then send slowly or
nothing at all:

- gevent workers: each connection is a greenlet, so stalled uploads hold greenlets (up to
  `worker_connections` per worker), never the dozen threads that serve everyone. The app is unchanged: a
  WSGI app whose `request.get_data()` reads the body as before.
- A request's headers must arrive within `keepalive` seconds of the connection opening or of the previous
  answer (gunicorn's gevent worker gives up on the read and closes the connection); a kept-alive connection
  idles as long.
- Its body must arrive within `BODY_SECONDS` of the headers: every read of it waits at most until then
  (`pre_request` puts the deadline on the socket). `webhooks.bodies` reads each body whole before the app
  and answers a body that stopped arriving with 408, and the connection is closed. A body the app did not
  read to the end (413) is drained for at most `keepalive` seconds before the connection is reused.
- The access log, when one is asked for (`--access-logfile`), never shows ClickSend's receipt token (in the
  push URLs' path or `?token=`) or an Authorization header: they are masked before gunicorn formats a line.
- Errors the server answers itself (a garbage request line 400, a request line over `limit_request_line`
  414, a header over `limit_request_field_size` or more than `limit_request_fields` of them 431) are JSON
  `{"error": code, "message": text}` like every other error, not gunicorn's HTML page.

The app is loaded in each worker after gevent has patched the standard library (`--preload` would load it in
the master, before: not tried).
"""

from __future__ import annotations

import json
import re
import socket
import time
import warnings
from typing import Any

import gunicorn.util
from gunicorn.glogging import Logger

from webhooks.errors import code_for

worker_class = "gevent"
worker_connections = 1000  # per worker (gunicorn's default, as gthread had); a greenlet each, and its body
# Seconds for a request's headers to arrive, and for an idle kept-alive connection. Also what a connection
# waits, under overload, for its headers to be read at all: past it, it is closed unanswered (the sender
# retries) instead of queueing without end.
keepalive = 10
timeout = 30  # a worker that stops answering its master this long is restarted
graceful_timeout = 20  # on SIGTERM, for requests in progress: longer than any header or body may take
limit_request_line = 4094  # gunicorn's defaults, written out because the tests and README rely on them
limit_request_fields = 100
limit_request_field_size = 8190

BODY_SECONDS = 10.0  # for a request's whole body to arrive after its headers (1 MiB at 100 KB/s)


class _BodyDeadline:
    """A socket whose reads wait no later than `until` (time.monotonic()); other calls go to the socket."""

    def __init__(self, sock: socket.socket, until: float):
        self.sock, self.until = sock, until

    def recv(self, size: int) -> bytes:
        remaining = self.until - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request body did not arrive in time")
        self.sock.settimeout(remaining)
        return self.sock.recv(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def pre_request(worker: Any, req: Any) -> None:
    """Bound the time this request's body may take to arrive."""
    unreader: Any = getattr(req, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        unreader.sock = _BodyDeadline(sock, time.monotonic() + BODY_SECONDS)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Give the connection back its plain socket: the next request's headers have their own timeout."""
    unreader: Any = getattr(req, "unreader", None)
    wrapped = getattr(unreader, "sock", None)
    if isinstance(wrapped, _BodyDeadline):
        unreader.sock = wrapped.sock
        wrapped.sock.settimeout(None)


_SECRET_IN_URL = re.compile(r"(/clicksend/(?:receipts|inbound)/)[^/?\s]+|((?:^|[?&])token=)[^&\s]+")


def _masked(value: str) -> str:
    return _SECRET_IN_URL.sub(lambda m: (m.group(1) or m.group(2)) + "…", value)


class AccessLog(Logger):
    """gunicorn's logger, with secrets masked in every value an access log line may show."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> Any:
        """gunicorn's atoms for a request's log line, secrets masked."""
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: "…" if "authorization" in key else _masked(value) if isinstance(value, str) else value
                for key, value in atoms.items()}


logger_class = AccessLog


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answer (`gunicorn.util.write_error`), as JSON."""
    body = json.dumps({"error": code_for(status_int), "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = write_error  # the one place gunicorn writes an error page (workers/base.py)

# gunicorn imports `ssl` before its gevent worker patches it, and gevent warns about that in every worker. The
# web process opens no TLS connection but redis-py's (a rediss:// REDIS_URL), which looks `ssl`'s names up
# when it connects, after the patch.
warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported",
                        module="gunicorn.workers.ggevent")
