"""Payload → message for the collector: the wire decoder, plus the checks only the topic allows
(the message belongs to the device whose topic it came on, and is the kind the topic says)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fieldwatch import wire
from fieldwatch.errors import WireFormatError

_KINDS: dict[str, type] = {"metrics": wire.Metrics, "status": wire.Status,
                           "events": wire.Event, "inventory": wire.Inventory}


@dataclass(frozen=True, slots=True)
class Received:
    """A decoded message waiting for the worker. `ack` tells the transport it may forget the
    message (MQTT PUBACK, AMQP basic.ack): the worker calls it only once the message is durably
    stored — its batch committed, or it was set aside in the dead-letter table — and never for
    what is still unstored at stop, so the broker redelivers that. None: nothing to tell."""

    message: wire.Message
    payload: bytes
    received_at: float
    ack: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Packed:
    """A Received as it waits in the queue: the payload, not its decoded message.

    A decoded 50-sample metrics message holds about 19 KB of Python objects for a 3 KB
    payload; packed, an item costs its payload plus PACKED_OVERHEAD. The payload was decoded
    and checked once at the door; `unpack` decodes it again as the worker takes it (tens of
    microseconds; the window check, which depends on the time of arrival, is not redone)."""

    site: str
    device: str
    payload: bytes
    received_at: float
    ack: Callable[[], None] | None


PACKED_OVERHEAD = 512  # the Packed, its ack, its header strings, the queue slot (measured)


def pack(item: Received) -> Packed:
    return Packed(item.message.site, item.message.device, item.payload, item.received_at,
                  item.ack)


def unpack(item: Packed) -> Received:
    return Received(wire.decode(item.payload, max(len(item.payload), 1)), item.payload,
                    item.received_at, item.ack)


def packed_size(item: Packed) -> int:
    return len(item.payload) + PACKED_OVERHEAD


def decode_received(topic: str, payload: bytes, max_bytes: int,
                    now: float | None = None) -> wire.Message:
    """Decode a payload and check it was published under its own device's topic; then `now`
    (the collector's clock) bounds its timestamps (`wire.check_window`): a message on the
    wrong topic is reported as that, whatever its times."""
    site, device, kind = wire.parse_topic(topic)
    msg = wire.decode(payload, max_bytes)
    if msg.site != site or msg.device != device:
        raise WireFormatError("topic_mismatch",
                              f"{msg.site}/{msg.device} published on {topic!r}")
    expected = _KINDS.get(kind)
    if expected is None or not isinstance(msg, expected):
        raise WireFormatError("topic_mismatch", f"a {type(msg).__name__} on {topic!r}")
    if now is not None:
        wire.check_window(msg, now)
    return msg
