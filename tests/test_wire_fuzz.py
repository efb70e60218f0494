"""Fuzzing every MQTT payload decoder (issue 19): whatever the bytes, a decoder returns a
message that is safe to store, encode and compare, or raises WireFormatError with a documented
reason; the agent answers every diag request with a result; the collector takes every diag
result without raising. Bounded: a fixed number of examples of bounded size per test."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fieldwatch.agent.diag.config import DiagConfig
from fieldwatch.agent.diag.handler import DiagHandler
from fieldwatch.collector.diag.config import CollectorDiagConfig
from fieldwatch.collector.diag.dispatch import Dispatcher
from fieldwatch.collector.diag.store import DiagStore
from fieldwatch.collector.ingest import decode_received
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.telemetry.stats import Stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldwatch import signing, wire
from fieldwatch.clock import FakeClock
from fieldwatch.errors import WireFormatError
from fieldwatch.structs import convert
from tests.ingest.crafted import HOLE, valid

NOW = 1_800_000_000.0
REASONS = {"oversized", "nesting", "malformed", "invalid", "range", "version"}
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = ["metrics", "status", "events", "inventory", "diag/res", "diag/req"]

# -- inputs -------------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['"', "\\", "[", "]{", '\\"[', "\u2028", "\x00"])
leaf = (st.none() | st.booleans() | st.integers() | st.integers(-(2**63) - 2, 2**64 + 2)
        | st.floats(allow_nan=False, allow_infinity=False) | text)
json_value = st.recursive(leaf, lambda kids: st.lists(kids, max_size=4)
                          | st.dictionaries(text, kids, max_size=4), max_leaves=25)
RAW = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1e300", b"-0", b"1e-400",
       b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
       b"18446744073709551615", b"18446744073709551616",
       str(2**200).encode(), b'"\xff"', b'"\xed\xa0\x80"', b'"\\ud800"', b"[", b"}", b"",
       b"\x00", b'"unterminated', b"tru", b"01", b"1.", b".5", b"+1"]


@st.composite
def raw_token(draw: st.DrawFn) -> bytes:
    """Bytes json.dumps cannot produce: NaN, overflowing numbers, bad UTF-8, deep nesting."""
    levels = draw(st.sampled_from([0, 1, wire.MAX_DEPTH - 3, wire.MAX_DEPTH, 200, 3000]))
    core = draw(st.sampled_from(RAW) | st.binary(max_size=8))
    opener = draw(st.sampled_from([b"[", b'{"k":', b'[{"k":']))
    closer = {b"[": b"]", b'{"k":': b"}", b'[{"k":': b"}]"}[opener]
    return opener * levels + core + closer * levels


def mutate(draw: st.DrawFn, msg: dict[str, Any]) -> bytes:
    """`msg` with one field (top level or one level down) set to something odd, as JSON."""
    target: Any = msg
    if draw(st.booleans()):
        nested = [k for k, v in msg.items() if isinstance(v, dict | list) and v]
        if nested:
            target = msg[draw(st.sampled_from(sorted(nested)))]
            if isinstance(target, list):
                target = target[0]
    keys = sorted(target) if isinstance(target, dict) else []
    key = draw(st.sampled_from([*keys, "extra"])) if keys else "extra"
    if draw(st.booleans()):
        target[key] = draw(json_value)
        return json.dumps(msg).encode()
    target[key] = HOLE
    return json.dumps(msg).encode().replace(json.dumps(HOLE).encode(), draw(raw_token()))


@st.composite
def payloads(draw: st.DrawFn, kind: str | None = None) -> bytes:
    """Mostly near-valid messages of `kind` (any kind when None), some plain noise."""
    kind = kind or draw(st.sampled_from(KINDS))
    ts = draw(st.sampled_from([NOW, NOW - wire.PAST_WINDOW, NOW + wire.FUTURE_WINDOW + 1, 0.0]))
    msg = valid(kind, ts)
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return json.dumps(draw(json_value)).encode()
    if choice == 2:  # splice random bytes into a valid payload
        body = json.dumps(msg).encode()
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.binary(max_size=20)) + body[at + draw(st.integers(0, 5)):]
    return mutate(draw, msg)


# -- what an accepted message must satisfy ---------------------------------------------------------

def depth(v: object) -> int:
    if isinstance(v, dict):
        return 1 + max(map(depth, v.values()), default=0)
    if isinstance(v, list):
        return 1 + max(map(depth, v), default=0)
    return 0


def numbers(v: object) -> Iterator[int | float]:
    if isinstance(v, dict):
        for x in v.values():
            yield from numbers(x)
    elif isinstance(v, list):
        for x in v:
            yield from numbers(x)
    elif isinstance(v, int | float) and not isinstance(v, bool):
        yield v


def assert_safe(msg: object, payload: bytes, now: float | None) -> None:
    """Everything in it storable (int64, finite) and in the window; it round-trips."""
    assert depth(json.loads(payload)) <= wire.MAX_DEPTH
    body = json.loads(wire.encode_diag(msg) if isinstance(msg, wire.DiagRequest | wire.DiagResult)
                      else wire.encode(msg))  # type: ignore[arg-type]
    for n in numbers(body):  # typed integer fields are int64; free-form ones may be uint64
        assert -(2**63) <= n <= 2**64 - 1 if isinstance(n, int) else math.isfinite(n)
    if isinstance(msg, wire.Metrics):
        assert 0 <= msg.seq <= 2**63 - 1
    if now is not None:
        stamps = [getattr(msg, "ts", None)]
        if isinstance(msg, wire.Metrics):
            stamps += [s.ts for s in msg.samples]
        for ts in stamps:
            assert ts is None or now - wire.PAST_WINDOW <= ts <= now + wire.FUTURE_WINDOW
    if isinstance(msg, wire.DiagRequest):
        assert wire.decode_diag_request(wire.encode_diag(msg)) == msg
    elif isinstance(msg, wire.DiagResult):
        assert wire.decode_diag_result(wire.encode_diag(msg), now=now) == msg
    else:
        assert wire.decode(wire.encode(msg), now=now) == msg  # type: ignore[arg-type]


# -- the decoders -------------------------------------------------------------------------------

@FUZZ
@given(st.sampled_from(KINDS[:4]).flatmap(payloads) | payloads(), st.sampled_from([None, NOW]))
def test_decode(payload: bytes, now: float | None) -> None:
    try:
        msg = wire.decode(payload, now=now)
    except WireFormatError as exc:
        assert exc.reason in REASONS
        return
    assert_safe(msg, payload, now)


@FUZZ
@given(st.sampled_from(KINDS[:4] + ["diag/res", "bogus"]), payloads(),
       st.sampled_from(["pump-01", "other", "a+b"]))
def test_decode_received(kind: str, payload: bytes, device: str) -> None:
    topic = f"fieldwatch/v1/plant/{device}/{kind}"
    try:
        msg = decode_received(topic, payload, wire.DEFAULT_MAX_BYTES, NOW)
    except WireFormatError as exc:
        assert exc.reason in REASONS | {"topic", "topic_mismatch"}
        return
    assert (msg.site, msg.device) == ("plant", device)
    assert_safe(msg, payload, NOW)


@FUZZ
@given(payloads("diag/res") | payloads(), st.sampled_from([None, NOW]))
def test_decode_diag_result(payload: bytes, now: float | None) -> None:
    try:
        msg = wire.decode_diag_result(payload, now=now)
    except WireFormatError as exc:
        assert exc.reason in REASONS
        return
    assert_safe(msg, payload, now)


@FUZZ
@given(payloads("diag/req") | payloads())
def test_decode_diag_request(payload: bytes) -> None:
    try:
        msg = wire.decode_diag_request(payload)
    except WireFormatError as exc:
        assert exc.reason in REASONS
        return
    assert_safe(msg, payload, None)


@FUZZ
@given(json_value, st.integers(0, 8), st.booleans())
def test_check_nesting_matches_the_real_depth(value: object, limit: int, ascii_: bool) -> None:
    """On valid JSON (strings full of brackets, quotes and escapes included) the byte scan
    agrees with the parsed depth, and never calls valid JSON malformed."""
    payload = json.dumps(value, ensure_ascii=ascii_).encode()
    try:
        wire.check_nesting(payload, limit)
    except WireFormatError as exc:
        assert exc.reason == "nesting"
        assert depth(value) > limit
        return
    assert depth(value) <= limit


@FUZZ
@given(st.binary(max_size=400), st.integers(0, 8))
def test_check_nesting_on_noise(payload: bytes, limit: int) -> None:
    try:
        wire.check_nesting(payload, limit)
    except WireFormatError as exc:
        assert exc.reason in {"nesting", "malformed"}


# -- the agent's and the collector's diag edges ---------------------------------------------------

@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiagHandler]:
    tmp = tmp_path_factory.mktemp("agent")
    _, pub = signing.generate(tmp / "keys", "collector")
    cfg = convert(DiagConfig, {"trusted_keys": [str(pub)], "timeout": "5s"})
    h = DiagHandler(cfg, "pump-01", "plant", tmp / "state", FakeClock(NOW),
                    signing.trusted(cfg.trusted_keys))
    yield h
    h.close()


@FUZZ
@given(payloads("diag/req") | payloads())
def test_agent_answers_every_request(handler: DiagHandler, payload: bytes) -> None:
    """Unsigned, deep, out-of-range: a refusal the collector can take back, or none at all
    where the request's id cannot be read safely (audited, counted in `unanswered`)."""
    before = sum(handler.unanswered.values())
    res = handler.handle(payload)
    if res is None:
        assert sum(handler.unanswered.values()) == before + 1
        return
    assert res.status == "refused"
    assert wire.decode_diag_result(wire.encode_diag(res), now=NOW) == res


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dispatcher]:
    tmp = tmp_path_factory.mktemp("collector")
    key_path, _ = signing.generate(tmp / "keys", "collector")
    store = Store(open_engine(f"sqlite:///{tmp / 'fw.db'}"))
    yield Dispatcher(DiagStore(store.engine), signing.load_private(key_path), lambda t, p: None,
                     FakeClock(NOW), CollectorDiagConfig(), Stats())
    store.engine.dispose()


@FUZZ
@given(payloads("diag/res") | payloads())
def test_collector_takes_every_result(dispatcher: Dispatcher, payload: bytes) -> None:
    before = dispatcher.stats.total("diag_rejected_total")
    row = dispatcher.take_result(wire.topic("plant", "pump-01", "diag/res"), payload)
    if row is None and dispatcher.stats.total("diag_rejected_total") > before:
        assert {r for (n, r) in dispatcher.stats.counters if n == "diag_rejected_total"} <= \
            REASONS | {"topic_mismatch"}
