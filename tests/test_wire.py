import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch import wire
from fieldwatch.errors import WireFormatError

ids = st.text(st.characters(blacklist_characters="/+#\0", blacklist_categories=("Cs",)),
              min_size=1, max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
stamps = st.floats(0, wire.MAX_TS)  # what a timestamp may be without a reader's `now`
samples = st.builds(wire.Sample, name=st.text(min_size=1, max_size=30), value=finite,
                    labels=st.dictionaries(st.text(max_size=10), st.text(max_size=10),
                                           max_size=3),
                    ts=st.none() | stamps)
metrics = st.builds(wire.Metrics, device=ids, site=ids, seq=st.integers(0, 2**63 - 1),
                    ts=stamps, samples=st.lists(samples, max_size=20), agent=st.text(max_size=8))


@given(metrics)
def test_metrics_round_trip(msg: wire.Metrics) -> None:
    assert wire.decode(wire.encode(msg)) == msg


@given(st.builds(wire.Status, device=ids, site=ids, state=st.sampled_from(["online", "offline"]),
                 cause=st.sampled_from(["connected", "shutdown", "lost"]),
                 ts=st.none() | stamps))
def test_status_round_trip(msg: wire.Status) -> None:
    assert wire.decode(wire.encode(msg)) == msg


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_fail_cleanly(payload: bytes) -> None:
    try:
        wire.decode(payload)
    except WireFormatError as exc:
        assert exc.reason in {"malformed", "invalid", "version", "nesting", "range"}


GOOD = b'{"v":1,"kind":"metrics","device":"d","site":"s","seq":1,"ts":1.5,"samples":[]}'


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "malformed"),
    (b"\xff\xfe\x00", "malformed"),
    (b"[1, 2]", "invalid"),
    (b'{"v":1,"kind":"metrics","device":"d","site":"s","seq":"1","ts":1,"samples":[]}',
     "invalid"),  # seq of the wrong type
    (b'{"v":1,"kind":"metrics","device":"d","site":"s","ts":1,"samples":[]}',
     "invalid"),  # seq missing
    (b'{"v":1,"kind":"metrics","device":"d","site":"s","seq":1,"ts":1,'
     b'"samples":[{"name":"x","value":"high"}]}', "invalid"),
    (b'{"v":1,"kind":"gossip","device":"d","site":"s"}', "invalid"),
    (b'{"v":2,"kind":"metrics","device":"d","site":"s","seq":1,"ts":1,"samples":[]}',
     "version"),
    (b'{"v":2,"kind":"metrics","shape":"entirely new"}', "version"),
])
def test_bad_payloads_rejected_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireFormatError) as info:
        wire.decode(payload)
    assert info.value.reason == reason


def test_oversized_rejected_before_parsing() -> None:
    with pytest.raises(WireFormatError) as info:
        wire.decode(GOOD + b" " * 300_000)
    assert info.value.reason == "oversized"
    assert wire.decode(GOOD + b" " * 10, max_bytes=len(GOOD) + 10).seq == 1


def test_unknown_fields_ignored_for_forward_compatibility() -> None:
    payload = GOOD[:-1] + b',"new_field":{"a":1}}'
    assert wire.decode(payload).device == "d"


def test_topics() -> None:
    assert wire.topic("hq", "web-01", "metrics") == "fieldwatch/v1/hq/web-01/metrics"
    assert wire.parse_topic("fieldwatch/v1/hq/web-01/diag/req") == ("hq", "web-01", "diag/req")
    for bad in ("fieldwatch/v2/hq/web/metrics", "fieldwatch/v1/hq/web/bogus", "x/y"):
        with pytest.raises(WireFormatError):
            wire.parse_topic(bad)
