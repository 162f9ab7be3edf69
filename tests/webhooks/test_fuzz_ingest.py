"""10,000 generated malformed webhook requests against the shipped rules: no 5xx, every refusal is the JSON error
shape, nothing is stored or enqueued for any refused request, and nothing is accepted without its signature."""

from __future__ import annotations

import base64
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field

import redis

from tests import signing
from tests.conftest import SECRETS
from workers.store import keys
from workers.store.events import ALL_PARTITIONS
from workers.wiring import pipeline

N = 10_000
SHOP_SECRET = SECRETS["SHOP_WEBHOOK_SECRET"]
ALERT_TOKEN = SECRETS["ALERTMANAGER_TOKEN"]
ORDER = {"id": 450789469, "name": "#1001", "total_price": "25.00", "customer": {"phone": "+61411111111"}}
ALERT = {"version": "4", "status": "firing", "groupKey": "g", "receiver": "r", "commonLabels": {"severity": "page"},
         "alerts": [{"status": "firing", "labels": {"alertname": "Down"}, "annotations": {"summary": "down"}}]}
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
                 "application/vnd.api+json", "APPLICATION/JSON", "application/json;;;", "text/plain", "text/json",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/",
                 "json", "application/json, text/plain", "*/*", "application/json; charset=latin-1",
                 "application/xml", "application/problem+json", "application/json" + " " * 2000]
METHODS = ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "post"]
PATHS = ["/hooks/nope", "/hooks/SHOP", "/hooks/shop/", "/hooks/shop/x", "/hooks/", "/hooks", "/hooks/%00",
         "/hooks/shop%2f..", "/hooks/" + "a" * 3000, "/hooks/..%2fapi", "/hooks/sh%C3%B6p", "/hooks/payments",
         "/hooks/bookings", "/hooks/calendly", "/hooks/grafana"]


@dataclass
class Case:
    """One generated request and whether it carries a valid credential (None: either outcome is fine)."""

    method: str = "POST"
    path: str = "/hooks/shop"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    signed: bool | None = False
    chunked: bool = False
    kind: str = ""


_PAD = b"x" * (1_048_576 + 10)


def _nest(rng: random.Random) -> bytes:
    depth = rng.choice([63, 65, 200, 5000, 100_000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"id": 1, "a": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def _body(rng: random.Random, base: dict[str, object]) -> tuple[str, bytes]:
    good = json.dumps(base).encode()
    kind = rng.choice(["valid", "valid", "truncated", "garbage", "bom", "utf16", "utf32", "surrogate", "raw_surrogate",
                       "nan", "infinity", "huge_number", "duplicate", "nesting", "empty", "not_object", "not_utf8",
                       "form", "oversized", "whitespace", "nul", "trailing", "single_quotes", "comments"])
    if kind == "oversized" and rng.random() >= 0.1:
        kind = "valid"  # over HOOKLINE_MAX_BODY rarely: a megabyte a request would be most of the fuzz's time
    text = good.decode()
    first_key = next(iter(base)).encode()
    bodies = {
        "valid": lambda: good,
        "truncated": lambda: good[: rng.randrange(0, len(good))],
        "garbage": lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
        "bom": lambda: b"\xef\xbb\xbf" + good,
        "utf16": lambda: text.encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be"])),
        "utf32": lambda: text.encode(rng.choice(["utf-32", "utf-32-le"])),
        "surrogate": lambda: text[:-1].encode() + rng.choice([b', "x": "\\ud800"}', b', "\\udfff": 1}',
                                                              b', "x": "\\ud83d"}']),
        "raw_surrogate": lambda: text[:-1].encode() + b', "x": "\xed\xa0\x80"}',
        "nan": lambda: text[:-1].encode() + rng.choice([b', "x": NaN}', b', "x": -Infinity}', b', "x": nan}']),
        "infinity": lambda: text[:-1].encode() + b', "x": Infinity}',
        "huge_number": lambda: text[:-1].encode() + rng.choice([b', "x": 1e999}', b', "x": ' + b"9" * 5000 + b"}"]),
        "duplicate": lambda: text[:-1].encode() + b', "' + first_key + b'": 2}',
        "nesting": lambda: _nest(rng),
        "empty": lambda: b"",
        "not_object": lambda: rng.choice([b"[]", b'"x"', b"1", b"null", b"true", b"[1, 2]"]),
        "not_utf8": lambda: text[:-1].encode() + b', "x": "\xff\xfe\xc3"}',
        "form": lambda: b"id=1&name=%231001",
        "oversized": lambda: text[:-1].encode() + b', "pad": "' + _PAD + b'"}',
        "whitespace": lambda: b" \t\r\n" * rng.randrange(1, 50),
        "nul": lambda: good + b"\x00",
        "trailing": lambda: good + rng.choice([b",", b"}", b" x", b"\n{}"]),
        "single_quotes": lambda: text.replace('"', "'").encode(),
        "comments": lambda: b"/* c */" + good,
    }
    return kind, bodies[kind]()


def _shop(rng: random.Random, i: int) -> Case:
    kind, body = _body(rng, ORDER | {"id": i})
    case = Case(body=body, kind=kind)
    correct = signing.shopify(SHOP_SECRET, body)["X-Shopify-Hmac-Sha256"]
    roll = rng.random()
    if roll < 0.25:
        sigs, case.signed = [correct], True
    elif roll < 0.35:
        sigs, case.signed = [correct, "AAAA"], True  # repeated: the first one counts
    elif roll < 0.45:
        sigs, case.signed = ["AAAA", correct], False
    else:
        wrong = [signing.shopify("wrong", body)["X-Shopify-Hmac-Sha256"], correct[:-2], correct.lower(), "", " ",
                 "not base64!!", base64.b64encode(b"\x00" * 32).decode(), correct + "=", "x" * 70_000,
                 signing.shopify(SHOP_SECRET, body + b" ")["X-Shopify-Hmac-Sha256"], "sha256=" + correct]
        sigs, case.signed = ([] if rng.random() < 0.15 else [rng.choice(wrong)]), False
    case.headers += [("X-Shopify-Hmac-Sha256", s) for s in sigs]
    if rng.random() < 0.9:
        case.headers.append(("X-Shopify-Topic", rng.choice(["orders/create", "orders/create", "", "x" * 5000,
                                                            "orders/cancelled", "é"])))
    if rng.random() < 0.9:
        case.headers.append(("X-Shopify-Webhook-Id", rng.choice([f"fz-{i}", "fz-dup", "", "x" * 5000])))
    return case


def _alerts(rng: random.Random, i: int) -> Case:
    kind, body = _body(rng, ALERT | {"groupKey": f"g{i}"})
    case = Case(path="/hooks/alerts", body=body, kind=kind)
    roll = rng.random()
    if roll < 0.25:
        auth, case.signed = [f"Bearer {ALERT_TOKEN}"], True
    elif roll < 0.3:
        auth, case.signed = [f"bearer {ALERT_TOKEN}"], None  # the scheme's case is the server's choice
    elif roll < 0.35:
        auth, case.signed = ["Bearer wrong", f"Bearer {ALERT_TOKEN}"], False
    else:
        wrong = ["Bearer wrong", f"Bearer {ALERT_TOKEN[:-1]}", f"Bearer {ALERT_TOKEN}x", f"Basic {ALERT_TOKEN}",
                 ALERT_TOKEN, "Bearer", "Bearer ", f"Token {ALERT_TOKEN}", "Bearer " + "x" * 70_000,
                 "Basic " + base64.b64encode(f"user:{ALERT_TOKEN}".encode()).decode(), f"Bearer {ALERT_TOKEN.upper()}"]
        auth, case.signed = ([] if rng.random() < 0.15 else [rng.choice(wrong)]), False
    case.headers += [("Authorization", a) for a in auth]
    return case


def _odd_headers(rng: random.Random, case: Case) -> None:
    if rng.random() < 0.8:
        case.headers.append(("Content-Type", "application/json"))
    else:
        case.headers += [("Content-Type", rng.choice(CONTENT_TYPES)) for _ in range(rng.choice([0, 1, 1, 2]))]
    roll = rng.random()
    if roll < 0.05:
        case.headers.append(("X-Big", "y" * rng.choice([8_000, 8_000, 70_000])))
    elif roll < 0.1:
        case.headers += [(f"X-Many-{n}", "v") for n in range(rng.choice([100, 1000]))]
    elif roll < 0.15:
        case.headers += [("X-Shopify-Topic", "orders/cancelled")] * rng.choice([2, 50])
    elif roll < 0.18:
        case.headers.append(("Content-Encoding", rng.choice(["gzip", "br", "deflate", "identity"])))
    elif roll < 0.2:
        case.headers.append(("X-Odd", "caf\xe9 \x7f"))


def generate(seed: int = 20261201) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for i in range(N):
        case = _shop(rng, i) if rng.random() < 0.6 else _alerts(rng, i)
        _odd_headers(rng, case)
        roll = rng.random()
        if roll < 0.06:
            case.method = rng.choice(METHODS)
        elif roll < 0.12:
            case.path = rng.choice(PATHS)
        elif roll < 0.16:
            case.chunked = True
        cases.append(case)
    return cases


# How many lasting keys the database holds, the pending events and every RQ queue's length, in one round trip.
# Left out of the keys: the counter of answers (ARGV[1]; counting a refusal stores nothing of it), the dedupe
# markers (ARGV[2]), only ever written with an event record (counted), and any key with less than ten minutes
# to live (the drain lease lapses within seconds of the last ingest, an alert's marker within a minute): anything
# a request stores comes with its event record, which lives for days.
_COUNTS = """
local n = 0
for _, k in ipairs(redis.call('KEYS', '*')) do
  local ttl = redis.call('PTTL', k)
  if k ~= ARGV[1] and string.sub(k, 1, #ARGV[2]) ~= ARGV[2] and (ttl == -1 or ttl > 600000) then n = n + 1 end
end
local out = {n}
for _, k in ipairs(KEYS) do out[#out + 1] = redis.call('LLEN', k) end
return out
"""


def _snapshot(r: redis.Redis) -> tuple[int, ...]:
    pending = [keys.events_pending_key(p) for p in ALL_PARTITIONS]
    names = [*pending, *(f"rq:queue:{q}" for q in pipeline.ALL_QUEUES)]
    stored, *lengths = r.eval(_COUNTS, len(names), *names, keys.STATS_EVENTS,  # type: ignore[no-untyped-call]
                              keys.seen_key(""))
    return (stored, sum(lengths[:len(pending)]), *lengths[len(pending):])  # stored keys, pending, queues


def _send(client, case: Case):  # noqa: ANN001, ANN202
    if case.chunked:
        # A chunked body: no Content-Length, the stream read to its end.
        headers = [*case.headers, ("Transfer-Encoding", "chunked")]
        return client.open(case.path, method=case.method, headers=headers, input_stream=io.BytesIO(case.body))
    return client.open(case.path, method=case.method, headers=case.headers, data=case.body)


def test_ten_thousand_malformed_requests(client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    cases = generate()
    statuses: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    accepted = 0
    after = _snapshot(redis_client)
    for case in cases:
        before = after
        response = _send(client, case)
        after = _snapshot(redis_client)
        status = response.status_code
        statuses[status] += 1
        where = f"{case.method} {case.path} {case.kind} signed={case.signed} headers={[h[0] for h in case.headers]}"
        assert status < 500, (where, response.get_data()[:300])
        if status in (200, 202) and case.method != "OPTIONS":
            # Accepted (or a duplicate of something accepted) only with a valid signature or token.
            assert case.signed is not False, (where, status)
        if status == 202:
            accepted += 1
            kinds[case.kind] += 1
            event_id = response.json["event_id"]
            assert redis_client.exists(keys.event_key(event_id))
            assert after[1] == before[1] + 1
            continue
        if status >= 400 and case.method != "HEAD":
            assert response.is_json, (where, status, response.get_data()[:200])
            assert {"error", "message"} <= set(response.json), (where, response.json)
        assert after == before, (where, status, before, after)  # nothing stored, nothing enqueued
    assert len(redis_client.keys("hl:event:*")) >= accepted > 0
    # The fuzz reached every part of ingest: refusals of every kind, and acceptances of several body shapes.
    assert {400, 401, 404, 405, 413, 415, 422} <= set(statuses), statuses
    assert {"valid", "bom", "utf16"} <= set(kinds), kinds
    counted: Counter[str] = Counter()
    for name, n in redis_client.hgetall(keys.STATS_EVENTS).items():
        counted[name.split("|")[2]] += int(n)
    assert counted["202"] == accepted and counted["401"] == statuses[401]  # every bad signature counted
    print(f"statuses {dict(sorted(statuses.items()))}; accepted body kinds {dict(kinds)}")
