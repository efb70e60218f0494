"""The hand-written remote-write protobuf: exact bytes, and round trips over generated data."""

from __future__ import annotations

import math

import pytest
from fieldwatch.collector.history import promwire
from fieldwatch.collector.history.remote_write import Encoder, series_labels
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch import wire

FAST = settings(max_examples=150, deadline=None)


def test_a_known_write_request_has_the_bytes_protoc_would_give() -> None:
    # WriteRequest{timeseries: [{labels: [{name: "a", value: "b"}],
    #                            samples: [{value: 1.0, timestamp: 1}]}]}
    label = bytes.fromhex("0a0161 120162")
    sample = bytes.fromhex("09 000000000000f03f 1001")
    series = b"\x0a" + bytes([len(label)]) + label + b"\x12" + bytes([len(sample)]) + sample
    expected = b"\x0a" + bytes([len(series)]) + series
    assert promwire.encode_write_request([((("a", "b"),), [(1, 1.0)])]) == expected


@pytest.mark.parametrize(("n", "hexed"), [
    (0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"),
    (2**64 - 1, "ffffffffffffffffff01")])
def test_varint_table(n: int, hexed: str) -> None:
    assert promwire.varint(n).hex() == hexed


def test_varint_refuses_what_no_varint_holds() -> None:
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="out of range"):
            promwire.varint(bad)


def test_negative_timestamps_travel_as_int64() -> None:
    body = promwire.encode_write_request([((("__name__", "x"),), [(-5, 2.5)])])
    assert promwire.decode_write_request(body) == [((("__name__", "x"),), [(-5, 2.5)])]


@FAST
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(n: int) -> None:
    value, end = promwire._read_varint(promwire.varint(n), 0)
    assert (value, end) == (n, len(promwire.varint(n)))


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_series = st.tuples(
    st.lists(st.tuples(_text, _text), max_size=5).map(lambda kv: tuple(sorted(kv))),
    st.lists(st.tuples(st.integers(-2**63, 2**63 - 1),
                       st.floats(allow_nan=False)), max_size=5))


@FAST
@given(st.lists(_series, max_size=6))
def test_write_request_round_trip(series: list) -> None:
    body = promwire.encode_write_request(series)
    assert promwire.decode_write_request(body) == [(labels, pts) for labels, pts in series]
    assert promwire.decompress(promwire.compress(body)) == body


def test_nan_and_infinities_keep_their_bits() -> None:
    body = promwire.encode_write_request([((), [(1, math.inf), (2, -math.inf), (3, math.nan)])])
    (_, pts), = promwire.decode_write_request(body)
    assert pts[:2] == [(1, math.inf), (2, -math.inf)] and math.isnan(pts[2][1])


@pytest.mark.parametrize("body", [b"\x0a", b"\x0a\x05ab", b"\x0b", b"\x80"])
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        promwire.decode_write_request(body)


def test_a_batch_groups_samples_by_series_sorted_in_time() -> None:
    late = wire.Metrics(device="d", site="s", seq=2, ts=20.0, samples=[
        wire.Sample("temp.celsius", 2.0, {"sensor": "a"}), wire.Sample("up", 1.0)])
    early = wire.Metrics(device="d", site="s", seq=1, ts=10.0, samples=[
        wire.Sample("temp.celsius", 1.0, {"sensor": "a"}, ts=9.5)])
    batch = Encoder().batch([late, early])
    assert batch.samples == 3
    got = promwire.decode_write_request(promwire.decompress(batch.body()))
    assert got == [(series_labels("s", "d", "temp.celsius", {"sensor": "a"}),
                    [(9500, 1.0), (20000, 2.0)]),
                   (series_labels("s", "d", "up", {}), [(20000, 1.0)])]


def test_the_label_cache_is_bounded() -> None:
    enc = Encoder(cache_max=3)
    msgs = [wire.Metrics(device=f"d{i}", site="s", seq=1, ts=1.0,
                         samples=[wire.Sample("up", 1.0)]) for i in range(10)]
    body = enc.batch(msgs).body()
    assert len(enc._cache) <= 3
    assert len(promwire.decode_write_request(promwire.decompress(body))) == 10


_devices = st.sampled_from([("s", "a"), ("s", "b"), ("t", "a")])
_sample = st.builds(
    wire.Sample,
    st.sampled_from(["up", "disk.used", "disk_used", "temp"]),  # two land in one series
    st.floats(allow_nan=False),
    st.sampled_from([{}, {"mount": "/"}, {"mount": ""}, {"site": "x"}]),
    st.none() | st.sampled_from([1.0, 1.7e9, 1.7e9 + 5]))
_message = st.builds(
    lambda dev, ts, samples: wire.Metrics(device=dev[1], site=dev[0], seq=1, ts=ts,
                                          samples=samples),
    _devices, st.sampled_from([2.0, 1.7e9, 1.7e9 + 10]), st.lists(_sample, max_size=6))


def _reference(msgs: list[wire.Metrics]) -> dict[promwire.Labels, list]:
    """Each series' points, stably sorted by time."""
    out: dict[tuple, dict[promwire.Labels, list]] = {}
    for m in msgs:
        for s in m.samples:
            labels = series_labels(m.site, m.device, s.name, s.labels)
            ts = round((s.ts if s.ts is not None else m.ts) * 1000)
            out.setdefault((m.site, m.device), {}).setdefault(labels, []).append((ts, s.value))
    return {labels: sorted(pts, key=lambda p: p[0]) for series in out.values()
            for labels, pts in series.items()}


@FAST
@given(st.lists(st.lists(_message, max_size=5), max_size=4))
def test_bodies_hold_every_sample_grouped_and_in_time_order(batches: list) -> None:
    enc = Encoder()  # one encoder across requests: its per-device templates are reused
    for msgs in batches:
        got = promwire.decode_write_request(promwire.decompress(enc.batch(msgs).body()))
        assert dict(got) == _reference(msgs) and len(got) == len(dict(got))  # each once


def test_a_device_with_its_usual_shape_takes_the_template() -> None:
    enc = Encoder()
    first, second = (wire.Metrics(device="d", site="s", seq=i, ts=10.0 * i, samples=[
        wire.Sample("up", float(i)), wire.Sample("temp", 2.5, {"sensor": "a"})])
        for i in (1, 2))
    assert enc.whole(first) is not None and enc.whole(second) is not None
    body = promwire.decompress(enc.batch([second]).body())
    assert promwire.decode_write_request(body) == [
        (series_labels("s", "d", "up", {}), [(20000, 2.0)]),
        (series_labels("s", "d", "temp", {"sensor": "a"}), [(20000, 2.5)])]
    clash = wire.Metrics(device="d", site="s", seq=3, ts=30.0, samples=[
        wire.Sample("disk.used", 1.0), wire.Sample("disk_used", 2.0)])
    assert enc.whole(clash) is None  # one series twice: grouped instead
