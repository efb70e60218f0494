"""Prometheus remote-write 1.0 bodies: a protobuf `WriteRequest`, snappy-compressed (block form).

The message is tiny, so it is written by hand rather than through protoc-generated code (which
would add the `protobuf` package and a generated module to keep in step):

    WriteRequest { repeated TimeSeries timeseries = 1; }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds

`decode_write_request` reads the same subset back (tests, and a receiver in the benchmark); it
skips fields it does not know, as protobuf readers must. Labels go out sorted by name and a
series' samples in time order, as the receivers require.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import cramjam

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

Labels = tuple[tuple[str, str], ...]  # sorted by name, `__name__` among them
Points = Sequence[tuple[int, float]]  # (timestamp ms, value)

DOUBLE = struct.Struct("<d")
U64 = (1 << 64) - 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_varint(i) for i in range(1 << 14)]  # lengths and tags: one index, no loop


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int below 2**64 (an int64 is passed as its u64)."""
    if 0 <= n < 16384:
        return _SMALL[n]
    if n < 0 or n > U64:
        raise ValueError(f"varint out of range: {n}")
    return _varint(n)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(data)) + data


def encode_labels(labels: Labels) -> bytes:
    """The label fields of a TimeSeries; kept by callers per series, since series repeat."""
    return b"".join(_field(1, _field(1, k.encode()) + _field(2, v.encode()))
                    for k, v in labels)


def encode_sample(ts_ms: int, value: float) -> bytes:
    """A TimeSeries' sample field: value (fixed64 double), timestamp (int64 varint)."""
    body = b"\x09" + DOUBLE.pack(value) + b"\x10" + varint(ts_ms & U64)
    return b"\x12" + varint(len(body)) + body


def encode_series(label_bytes: bytes, points: Points) -> bytes:
    """One `timeseries` field of a WriteRequest from its encoded labels and its points."""
    return _field(1, label_bytes + b"".join(encode_sample(t, v) for t, v in points))


def encode_write_request(series: Iterable[tuple[Labels, Points]]) -> bytes:
    """The uncompressed protobuf body (labels as given: callers sort them)."""
    return b"".join(encode_series(encode_labels(labels), points) for labels, points in series)


def compress(body: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(body))


def decompress(data: bytes) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(data))


# -- reading (tests and the benchmark's receiver) -----------------------------------------------

def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterable[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one message; unknown wire types are errors."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, wire, value
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            yield number, wire, buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated length-delimited field")
            yield number, wire, buf[pos:pos + size]
            pos += size
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            yield number, wire, buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _int64(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def decode_write_request(body: bytes) -> list[tuple[Labels, list[tuple[int, float]]]]:
    """(labels, [(ts ms, value)]) per series, in body order; raises ValueError if malformed."""
    out = []
    for number, wire, ts_body in _fields(body):
        if number != 1 or wire != 2:
            continue
        labels: list[tuple[str, str]] = []
        points: list[tuple[int, float]] = []
        assert isinstance(ts_body, bytes)
        for n, w, part in _fields(ts_body):
            if w != 2:
                continue
            assert isinstance(part, bytes)
            if n == 1:
                kv = {k: v for k, wt, v in _fields(part) if wt == 2}
                labels.append((bytes(kv.get(1, b"")).decode(),  # type: ignore[arg-type]
                               bytes(kv.get(2, b"")).decode()))  # type: ignore[arg-type]
            elif n == 2:
                value, ts = 0.0, 0
                for k, wt, v in _fields(part):
                    if k == 1 and wt == 1:
                        value = DOUBLE.unpack(v)[0]  # type: ignore[arg-type]
                    elif k == 2 and wt == 0:
                        ts = _int64(v)  # type: ignore[arg-type]
                points.append((ts, value))
        out.append((tuple(labels), points))
    return out
