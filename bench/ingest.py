"""Ingest benchmark: Hookline's POST /hooks/<source> against an enqueue-only Flask endpoint, same gunicorn settings.

Run: python bench/ingest.py [--rounds 2] [--rate 1000] [--seconds 8] [--latency-seconds 10]; BENCH_GUNICORN
replaces the gunicorn flags. Prints a Markdown block for BENCHMARKS.md. Not a test.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import platform
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import psutil
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from workers.tools.localredis import free_port, start_redis  # noqa: E402

SECRET = "bench-shop-secret"
# The web process's own settings (gevent workers, bounded waits: webhooks/serving.py), for both apps.
GUNICORN = os.environ.get("BENCH_GUNICORN", "--config python:webhooks.serving --workers 3 --log-level warning "
                          "--backlog 2048").split()


def make_requests(n: int, host: str) -> list[bytes]:
    """Pre-generated, uniquely identified, validly signed Shopify-style requests (raw HTTP/1.1)."""
    out = []
    for i in range(n):
        body = json.dumps({"id": i, "name": f"#{i}", "total_price": "25.00",
                           "customer": {"first_name": "Ann", "phone": "+61411111111"}}).encode()
        sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
        head = (f"POST /hooks/shop HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"X-Shopify-Topic: orders/create\r\nX-Shopify-Webhook-Id: bench-{time.time_ns()}-{i}\r\n"
                f"X-Shopify-Hmac-Sha256: {sig}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        out.append(head.encode() + body)
    return out


def _response_end(buf: bytearray) -> tuple[bool, bool] | None:
    """(done, server closes) once `buf` holds a whole response (by Content-Length), else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]) if b"content-length:" in head else 0
    if len(buf) < end + 4 + length:
        return None
    return True, b"connection: close" in head


def drive(port: int, reqs: list[bytes], seconds: float, *, rate: float | None = None,
          concurrency: int = 0, keepalive: bool = False) -> list[tuple[float, int]]:
    """Send `reqs` in order and return (latency, status) per request.

    Each request goes on a new connection, or with `keepalive` on an idle one when there is one (as a sender
    with a connection pool would; the requests must not say `Connection: close`). With `rate`, requests start
    on a fixed schedule for `seconds` whether or not earlier ones finished (open loop), and each latency counts
    from the moment the request was due: a stalled client or server shows up in the figures instead of hiding
    (no coordinated omission). Without it, `concurrency` requests are kept in flight back to back for
    `seconds` (closed loop, for maximum throughput). Raw non-blocking sockets on one selector: the load
    generator shares the two cores with the server, so it must cost as little as possible.
    """
    sel = selectors.DefaultSelector()
    results: list[tuple[float, int]] = []
    idle: list[socket.socket] = []
    start = time.perf_counter()
    total = int(rate * seconds) if rate else len(reqs)
    sent = 0

    def connect(raw: bytes, due: float, reused: socket.socket | None = None) -> None:
        sock = reused
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        sel.register(sock, selectors.EVENT_WRITE, [raw, due, bytearray(), raw, reused is not None])

    def launch(due: float) -> None:
        nonlocal sent
        connect(reqs[sent], due, idle.pop() if idle else None)
        sent += 1

    def finish(sock: socket.socket, data: list, response: bytes | None, reuse: bool = False) -> None:
        sel.unregister(sock)
        if reuse:
            idle.append(sock)
        else:
            sock.close()
        if not response and data[4]:
            # The server had closed this idle connection: send again on a new one, as HTTP clients do.
            connect(data[3], data[1])
            return
        status = int(response.split(b" ", 2)[1]) if response else 0  # 0: connection failed
        results.append((time.perf_counter() - data[1], status))

    while True:
        now = time.perf_counter()
        if rate:
            while sent < total and start + sent / rate <= now:
                launch(start + sent / rate)
            timeout = max(0.0, start + sent / rate - now) if sent < total else None
        else:
            while now < start + seconds and len(sel.get_map()) < concurrency and sent < total:
                launch(now)
            timeout = max(0.0, start + seconds - now)
        if not sel.get_map():
            if sent >= total or (not rate and now >= start + seconds):
                for sock in idle:
                    sock.close()
                return results
            time.sleep(timeout or 0)
            continue
        for key, mask in sel.select(timeout):
            sock, data = key.fileobj, key.data
            raw, buf = data[0], data[2]
            try:
                if mask & selectors.EVENT_WRITE:
                    n = sock.send(raw)
                    data[0] = raw[n:]
                    if not data[0]:
                        sel.modify(sock, selectors.EVENT_READ, data)
                    continue
                chunk = sock.recv(65536)
            except OSError:
                finish(sock, data, None)
                continue
            if not chunk:  # the server closed: the whole response is in
                finish(sock, data, bytes(buf))
                continue
            buf += chunk
            if keepalive and (end := _response_end(buf)) is not None:
                finish(sock, data, bytes(buf), reuse=not end[1])


def closed_loop(port: int, reqs: list[bytes], seconds: float, concurrency: int) -> dict[str, float]:
    """Max throughput: `concurrency` requests in flight back to back for `seconds`."""
    results = drive(port, reqs, seconds, concurrency=concurrency)
    return {"rps": len(results) / seconds, "errors": sum(s != 202 for _, s in results), "n": len(results)}


def open_loop(port: int, reqs: list[bytes], rate: float, seconds: float, keepalive: bool = False
              ) -> dict[str, float]:
    """Latency at a fixed offered rate, each request on a new connection or (`keepalive`) on a reused one."""
    if keepalive:
        reqs = [r.replace(b"Connection: close\r\n", b"", 1) for r in reqs[:int(rate * seconds)]]
    start = time.perf_counter()
    results = drive(port, reqs, seconds, rate=rate, keepalive=keepalive)
    lats = sorted(lat for lat, _ in results)
    return {
        "offered": rate,
        "achieved": len(results) / (time.perf_counter() - start),
        "p50_ms": statistics.median(lats) * 1000,
        "p99_ms": lats[int(len(lats) * 0.99) - 1] * 1000,
        "max_ms": lats[-1] * 1000,
        "errors": sum(s != 202 for _, s in results),
        "n": len(results),
    }


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds used so far by these processes (children not included)."""
    total = 0.0
    for proc in procs:
        t = proc.cpu_times()
        total += t.user + t.system
    return total


def serve(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([shutil.which("gunicorn") or "gunicorn", "--bind", f"127.0.0.1:{port}", *GUNICORN, app],
                            env=env, cwd=ROOT)
    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except requests.RequestException:  # not listening yet, or still booting
            time.sleep(0.1)
    raise RuntimeError(f"{app} did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8, help="length of each throughput phase")
    parser.add_argument("--latency-seconds", type=float, default=10, help="length of each fixed-rate phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    redis_proc, url = start_redis(tmp / "redis", appendonly=False)
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(
        "sources:\n  shop:\n    verify: {scheme: shopify, secret: '${SHOP_SECRET}'}\n"
        "    schema: {type: object, required: [id]}\n"
    )
    env = {**os.environ, "REDIS_URL": url, "HOOKLINE_RULES_DIR": str(rules), "SHOP_SECRET": SECRET,
           "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}", "HOOKLINE_LOG_LEVEL": "WARNING"}
    ports = {"baseline": free_port(), "hookline": free_port()}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    rounds: list[dict[str, object]] = []
    try:
        procs["baseline"] = serve("baseline_app:create_app()", ports["baseline"], env)
        procs["hookline"] = serve("webhooks:create_app()", ports["hookline"], env)
        n_needed = 2 * int(args.rate * args.latency_seconds) + 200_000
        for _ in range(args.rounds):
            for name in ("baseline", "hookline"):  # interleaved: noise hits both
                reqs = make_requests(n_needed, "bench")
                closed_loop(ports[name], reqs[-2000:], 1, 8)  # warm up
                tp = closed_loop(ports[name], reqs, args.seconds, args.concurrency)
                server = psutil.Process(procs[name].pid)
                groups = {"server": [server, *server.children()], "client": [psutil.Process()],
                          "redis": [psutil.Process(redis_proc.pid)]}
                cpu_before = {k: cpu_seconds(g) for k, g in groups.items()}
                lat = open_loop(ports[name], reqs[tp["n"]:], args.rate, args.latency_seconds)
                cpu_ms = {k: (cpu_seconds(g) - cpu_before[k]) * 1000 / lat["n"] for k, g in groups.items()}
                cpu_before = cpu_seconds(groups["server"])
                ka = open_loop(ports[name], reqs[tp["n"] + lat["n"]:], args.rate, args.latency_seconds, keepalive=True)
                ka["server_cpu_ms"] = (cpu_seconds(groups["server"]) - cpu_before) * 1000 / ka["n"]
                rounds.append({"name": name, "throughput": tp, "latency": lat, "cpu_ms": cpu_ms, "keepalive": ka})
                redis.Redis.from_url(url).flushdb()
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(10)
        redis_proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(args, rounds, load_before))


def report(args: argparse.Namespace, rounds: list[dict], load_before: tuple[float, float, float]) -> str:
    """The Markdown block for BENCHMARKS.md: every round, then the ratio and the worst p99 against the targets."""
    best = {name: max((r for r in rounds if r["name"] == name), key=lambda r: r["throughput"]["rps"])
            for name in ("baseline", "hookline")}
    worst_p99 = max(r["latency"]["p99_ms"] for r in rounds if r["name"] == "hookline")
    worst_ka = max(r["keepalive"]["p99_ms"] for r in rounds if r["name"] == "hookline")
    ratio = best["hookline"]["throughput"]["rps"] / best["baseline"]["throughput"]["rps"]
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("flask", "gunicorn", "rq", "redis"))
    label = {"baseline": "enqueue-only Flask + RQ", "hookline": "Hookline `POST /hooks/shop`"}
    rows = "\n".join(
        f"| {i // 2 + 1} | {label[r['name']]} | {r['throughput']['rps']:.0f} | {r['latency']['achieved']:.0f} "
        f"| {r['latency']['p50_ms']:.1f} | {r['latency']['p99_ms']:.1f} | {r['latency']['max_ms']:.0f} "
        f"| {r['cpu_ms']['server']:.2f} | {r['cpu_ms']['client']:.2f} | {r['cpu_ms']['redis']:.2f} "
        f"| {r['keepalive']['p99_ms']:.1f} | {r['keepalive']['server_cpu_ms']:.2f} "
        f"| {r['throughput']['errors'] + r['latency']['errors'] + r['keepalive']['errors']} |"
        for i, r in enumerate(rounds))
    return f"""### Ingest ({time.strftime('%Y-%m-%d %H:%M')})

Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {versions};
load average before the run {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} (1 / 5 / 15 min).
Redis: a private redis-server, AOF off. gunicorn `{' '.join(GUNICORN)}` for both apps.
Load from one client process on the same machine (raw sockets on one selector), a new connection per
request: {args.seconds:.0f} s with {args.concurrency} requests in flight back to back (req/s), then \
{args.latency_seconds:.0f} s at {args.rate:.0f} requests/s offered, each latency counted from the moment its request
was due; then as many again at the same rate over kept-alive connections (a sender with a connection pool).
CPU columns: milliseconds of CPU per request during the fixed-rate phases, for the gunicorn master and workers,
the load generator, and Redis.

| round | endpoint | req/s | achieved /s | p50 ms | p99 ms | max ms | server CPU ms | client CPU ms | Redis CPU ms | keep-alive p99 ms | keep-alive server CPU ms | errors |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Ratio Hookline / baseline (best req/s of each): **{ratio:.2f}x** (target ≥ 0.8x).
Hookline p99 at {args.rate:.0f}/s, worst round: **{worst_p99:.1f} ms** with a new connection per request,
**{worst_ka:.1f} ms** over kept-alive connections (target ≤ 20 ms).
"""


if __name__ == "__main__":
    main()
