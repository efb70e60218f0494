"""The outage buffer's on-disk format: segment files of framed records, appended only.

A frame is a 10-byte header (magic, body length, CRC32 of the body) and a msgpack body. A write
cut short by `kill -9` or a power loss leaves a torn last frame; `scan` stops at the first frame
that is short, fails its CRC or does not decode, so a torn tail reads as if it were not there.

Records, each a msgpack array whose first element is its type tag:

- `Checkpoint`, the first record of every segment: the last id given, each device's last
  sequence number, the drop counters, and which ids were still queued when it was written. The
  newest segment's checkpoint plus the records after it are the whole state, so any older
  segment can be deleted once none of its messages is queued any more.
- `Message`: one queued MQTT message with its id, device, creation time and sequence number.
- `Ack`: ids the broker acknowledged. `Drop`: ids dropped for a bound, with the count per
  device (also for a message that was never written, whose sequence number is `spent`).
- `Reported`: drops that were reported to the collector.

`Ack` and `Drop` name ids as runs: `(first, last)` removes every queued id in that range.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import msgspec

MAGIC = b"\xfbB"
HEADER = struct.Struct("<2sII")  # magic, body length, crc32 of the body

Run = tuple[int, int]
Count = tuple[str, str, int]  # site, device, n


class RecordError(ValueError):
    """Bytes that are not one whole, intact record of this format."""


class Checkpoint(msgspec.Struct, array_like=True, tag=0, frozen=True):
    last_id: int
    seqs: list[Count]  # site, device, last sequence number
    drops: list[tuple[str, str, str, int, int]]  # site, device, reason, total, unreported
    live: list[Run]  # exactly the ids still queued


class Message(msgspec.Struct, array_like=True, tag=1, frozen=True):
    id: int
    site: str
    device: str
    topic: str
    retain: bool
    created: float
    seq: int  # 0: not numbered
    payload: bytes


class Ack(msgspec.Struct, array_like=True, tag=2, frozen=True):
    runs: list[Run]


class Drop(msgspec.Struct, array_like=True, tag=3, frozen=True):
    reason: str  # "size", "age" or "corrupt"
    runs: list[Run]
    counts: list[Count]
    spent: list[Count] = []  # sequence numbers taken by a message dropped before it was written


class Reported(msgspec.Struct, array_like=True, tag=4, frozen=True):
    site: str
    device: str
    reason: str
    count: int


Record = Checkpoint | Message | Ack | Drop | Reported

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Record)


def frame(record: Record) -> bytes:
    body = _encoder.encode(record)
    return HEADER.pack(MAGIC, len(body), zlib.crc32(body)) + body


def decode(body: bytes) -> Record:
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise RecordError(f"not a buffer record: {exc}") from None


def unframe(data: bytes) -> Record:
    """One whole frame's record; RecordError if it is torn, corrupt or not a record."""
    if len(data) < HEADER.size:
        raise RecordError("short frame")
    magic, n, crc = HEADER.unpack_from(data)
    body = data[HEADER.size:]
    if magic != MAGIC or n != len(body) or zlib.crc32(body) != crc:
        raise RecordError("torn or corrupt frame")
    return decode(body)


def scan(f: BinaryIO, size: int) -> Iterator[tuple[int, int, Record]]:
    """(offset, frame length, record) of each frame in the first `size` bytes of `f`, up to the
    first one that is short, corrupt or not a record."""
    f.seek(0)
    off = 0
    while off + HEADER.size <= size:  # each frame moves `off` on by at least HEADER.size
        head = f.read(HEADER.size)
        if len(head) != HEADER.size:
            return
        magic, n, crc = HEADER.unpack(head)
        if magic != MAGIC or n > size - off - HEADER.size:
            return
        body = f.read(n)
        if len(body) != n or zlib.crc32(body) != crc:
            return
        try:
            record = decode(body)
        except RecordError:
            return
        yield off, HEADER.size + n, record
        off += HEADER.size + n


def runs(ids: Iterable[int]) -> list[Run]:
    """Sorted, distinct ids as runs of consecutive numbers."""
    out: list[list[int]] = []
    for i in ids:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return [(a, b) for a, b in out]
