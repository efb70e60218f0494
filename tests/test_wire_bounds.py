"""Issue 19: nesting, ranges and time windows are bounded by the wire decoders themselves."""

from __future__ import annotations

import json

import pytest
from fieldwatch.collector.ingest import decode_received

from fieldwatch import wire
from fieldwatch.errors import WireFormatError
from tests.ingest.crafted import Crafted, crafted, deep, splice, valid

NOW = 1_800_000_000.0


def decode_as_collector(c: Crafted, now: float = NOW) -> object:
    """What the collector (or, for diag/req, the agent) does with a payload on that topic."""
    if c.kind == "diag/res":
        return wire.decode_diag_result(c.payload, now=now)
    if c.kind == "diag/req":
        return wire.decode_diag_request(c.payload)
    return decode_received(c.topic, c.payload, wire.DEFAULT_MAX_BYTES, now)


@pytest.mark.parametrize("c", crafted(NOW), ids=lambda c: c.name)
def test_each_crafted_input_is_rejected_with_its_reason(c: Crafted) -> None:
    with pytest.raises(WireFormatError) as info:
        decode_as_collector(c)
    assert info.value.reason == c.reason, info.value


@pytest.mark.parametrize("kind", ["metrics", "status", "events", "inventory", "diag/res",
                                  "diag/req"])
def test_the_valid_base_of_each_crafted_input_decodes(kind: str) -> None:
    c = Crafted("valid", kind, json.dumps(valid(kind, NOW)).encode(), "")
    assert decode_as_collector(c) is not None


def test_nesting_limit_is_exact_for_arrays_and_objects() -> None:
    for opener, closer in ((b"[", b"]"), (b'{"k":', b"}"), (b'[{"k":', b"}]")):
        def nest(n: int, o: bytes = opener, c: bytes = closer) -> bytes:
            return o * n + b"1" + c * n
        limit = wire.MAX_DEPTH
        levels = limit if opener != b'[{"k":' else limit // 2
        wire.check_nesting(nest(levels))
        with pytest.raises(WireFormatError, match="nesting"):
            wire.check_nesting(nest(levels + 1))


@pytest.mark.parametrize("text", [
    "[" * 100, "]" * 100 + "[" * 100, '"[[[["', '\\"[[[[', "\\\\", "\\\\\"[[", "{}" * 50,
])
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    payload = json.dumps({"a": text, "b": [text] * 40, "c": [[[text]]]}).encode()
    wire.check_nesting(payload)
    assert json.loads(payload)  # valid JSON, and within the limit


def test_unpaired_brackets_are_malformed_before_decoding() -> None:
    with pytest.raises(WireFormatError) as info:
        wire.check_nesting(b"[" * 3000)  # a truncated bomb: no closers at all
    assert info.value.reason == "malformed"
    with pytest.raises(WireFormatError) as info:
        wire.check_nesting(b"[" * 3000 + b"}" * 3000)
    assert info.value.reason == "malformed"


def test_deep_payloads_never_raise_recursion_error() -> None:
    for levels in (999, 1000, 3000, 100_000):
        for payload in (deep(levels), b'{"a":' * levels + b"1" + b"}" * levels,
                        b"[" * levels):
            for decoder in (wire.decode, wire.decode_diag_request, wire.decode_diag_result):
                with pytest.raises(WireFormatError) as info:
                    decoder(payload, 10**7)
                assert info.value.reason in {"nesting", "malformed"}


def test_timestamp_window_edges() -> None:
    lo, hi = NOW - wire.PAST_WINDOW, NOW + wire.FUTURE_WINDOW
    for ts in (lo, NOW, hi):
        assert wire.decode(splice("metrics", ts, b"1", "seq"), now=NOW).ts == ts
    for ts in (lo - 1, hi + 1):
        with pytest.raises(WireFormatError) as info:
            wire.decode(splice("metrics", ts, b"1", "seq"), now=NOW)
        assert info.value.reason == "range"
        # without a reader's clock only the absolute bound applies (stored messages, backtests)
        assert wire.decode(splice("metrics", ts, b"1", "seq")).ts == ts


def test_last_will_without_ts_passes_the_window() -> None:
    will = wire.encode(wire.Status(device="d", site="s", state="offline", cause="lost"))
    assert wire.decode(will, now=NOW).ts is None


def test_sample_timestamps_are_checked_too() -> None:
    late = splice("metrics", NOW, str(NOW + 2 * wire.FUTURE_WINDOW).encode(), "samples", 0, "ts")
    with pytest.raises(WireFormatError, match="sample pump.temp_celsius"):
        wire.decode(late, now=NOW)


def test_seq_bounds() -> None:
    top = wire.decode(splice("metrics", NOW, str(2**63 - 1).encode(), "seq"), now=NOW)
    assert isinstance(top, wire.Metrics) and top.seq == 2**63 - 1
    assert wire.decode(splice("metrics", NOW, b"0", "seq"), now=NOW).seq == 0  # type: ignore[union-attr]


def test_facts_integers_nested_anywhere_must_fit_64_bits() -> None:
    ok = splice("inventory", NOW, json.dumps([{"a": [2**64 - 1, -(2**63)]}]).encode(),
                "facts", "x")
    assert wire.decode(ok, now=NOW)
    for n in (-(2**63) - 1, 2**64):
        bad = splice("inventory", NOW, json.dumps([{"a": [1, n]}]).encode(), "facts", "x")
        with pytest.raises(WireFormatError, match="range"):
            wire.decode(bad, now=NOW)


def test_an_snmp_counter64_in_a_trap_is_kept() -> None:
    trap = splice("events", NOW, str(2**64 - 1).encode(), "fields", "ifHCInOctets")
    msg = wire.decode(trap, now=NOW)
    assert isinstance(msg, wire.Event) and msg.fields["ifHCInOctets"] == 2**64 - 1


def test_typed_integers_are_int64() -> None:
    for field in ("exit_code", "output_bytes", "ticket"):
        with pytest.raises(WireFormatError, match="range"):
            wire.decode_diag_result(splice("diag/res", NOW, str(2**63).encode(), field))


def test_a_version_mismatch_is_reported_before_a_range_problem() -> None:
    payload = splice("metrics", NOW, b"2", "v").replace(b'"seq": 1', b'"seq": -1')
    with pytest.raises(WireFormatError) as info:
        wire.decode(payload, now=NOW)
    assert info.value.reason == "version"
