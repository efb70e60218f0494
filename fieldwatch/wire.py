"""Wire format v1: what agents publish and the collector reads (docs/wire-format.md).

Pure encoders and decoders. Decoding validates types with msgspec (fast, precise error paths),
ignores unknown fields (so minor additions stay compatible), and rejects oversized payloads and
unknown major versions with a reason the collector counts by.
"""

from __future__ import annotations

import json
from typing import Literal

import msgspec

from fieldwatch.errors import WireFormatError

VERSION = 1
DEFAULT_MAX_BYTES = 256 * 1024
TOPIC_ROOT = "fieldwatch/v1"


class Sample(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """One reading: `disk.used_percent{mount="/"} = 93.1` at `ts` (None: the message's ts).

    gc=False: samples hold only strings and numbers (no cycles possible), and keeping hundreds
    of thousands of them out of the cyclic GC's sight makes decoding a batch ~2x cheaper."""

    name: str
    value: float
    labels: dict[str, str] = {}
    ts: float | None = None


class Metrics(msgspec.Struct, frozen=True, tag="metrics", tag_field="kind"):
    """One poll cycle of one device."""

    device: str
    site: str
    seq: int
    ts: float
    samples: list[Sample]
    agent: str = ""
    v: int = VERSION


class Status(msgspec.Struct, frozen=True, tag="status", tag_field="kind"):
    """Retained presence. `cause`: `connected`, `shutdown` (clean stop), `lost` (Last Will)."""

    device: str
    site: str
    state: Literal["online", "offline"]
    cause: str = ""
    ts: float | None = None  # None in a Last Will: it is written at connect time
    agent: str = ""
    v: int = VERSION


class Event(msgspec.Struct, frozen=True, tag="event", tag_field="kind"):
    """Something that happened once: an SNMP trap, an agent-side event."""

    device: str
    site: str
    type: str
    ts: float
    fields: dict[str, str | int | float | bool | None] = {}
    seq: int | None = None
    v: int = VERSION


class Inventory(msgspec.Struct, frozen=True, tag="inventory",
                tag_field="kind"):
    """What the device is (OS, CPU, RAM, disks, NICs, serial): retained, sent on start and daily."""

    device: str
    site: str
    ts: float
    facts: dict[str, object] = {}
    agent: str = ""
    v: int = VERSION


Message = Metrics | Status | Event | Inventory


class _Envelope(msgspec.Struct):
    v: int = VERSION


_decoder = msgspec.json.Decoder(Message)
_envelope = msgspec.json.Decoder(_Envelope)


_encoder = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Decode one payload, or raise WireFormatError with reason `oversized`, `version`,
    `malformed` (not JSON) or `invalid` (JSON of the wrong shape)."""
    return _decode_with(_decoder, payload, max_bytes)  # type: ignore[no-any-return]


def _decode_with(decoder: msgspec.json.Decoder, payload: bytes, max_bytes: int) -> object:
    """The one decoding path of every v1 payload: size cap, shape, major version."""
    if len(payload) > max_bytes:
        raise WireFormatError("oversized", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        msg = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        _check_version(payload)
        raise WireFormatError("invalid", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise WireFormatError("malformed", str(exc)) from None
    if msg.v != VERSION:
        raise WireFormatError("version", f"major version {msg.v} not understood (want {VERSION})")
    return msg


def _check_version(payload: bytes) -> None:
    try:
        v = _envelope.decode(payload).v
    except (msgspec.ValidationError, msgspec.DecodeError):
        return
    if v != VERSION:
        raise WireFormatError("version", f"major version {v} not understood (want {VERSION})")


# -- topics -----------------------------------------------------------------------------------

KINDS = ("metrics", "events", "status", "inventory", "diag/req", "diag/res")


def topic(site: str, device: str, kind: str) -> str:
    """`fieldwatch/v1/<site>/<device>/<kind>`."""
    return f"{TOPIC_ROOT}/{site}/{device}/{kind}"


def parse_topic(name: str) -> tuple[str, str, str]:
    """(site, device, kind) of a fieldwatch topic; raises WireFormatError for anything else."""
    parts = name.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise WireFormatError("topic", f"not a fieldwatch v1 topic: {name!r}")
    kind = "/".join(parts[4:])
    if kind not in KINDS:
        raise WireFormatError("topic", f"unknown message kind {kind!r} in {name!r}")
    return parts[2], parts[3], kind


def valid_id(text: str) -> bool:
    """Device and site ids must be usable as one MQTT topic level."""
    return bool(text) and not any(c in text for c in "/+#\0") and len(text) <= 128


# -- remote diagnostics (DESIGN §7; docs/diagnostics.md) -----------------------------------------
# Requests travel collector → agent on `.../diag/req`, results agent → collector on
# `.../diag/res`. They are not part of `Message`: the metrics pipeline never sees them.

ArgValue = str | int | float | bool | list[str]


class Approval(msgspec.Struct, frozen=True):
    """A person's authorization of one action on one ticket, as recorded on the ticket."""

    action: str
    by: str
    at: float
    on_behalf_of: str = ""
    ticket: int | None = None


class DiagRequest(msgspec.Struct, frozen=True, tag="diag_req", tag_field="kind"):
    """Run `check` with `args`. Signed by the collector over `signing_bytes` (Ed25519, base64)."""

    device: str
    site: str
    id: str  # correlation id: the result carries it back
    check: str
    issued: float
    expires: float
    nonce: str
    args: dict[str, ArgValue] = {}
    ticket: int | None = None
    auto: bool = False  # started by a firing rule, no person involved
    approval: Approval | None = None
    requested_by: str = ""
    key_id: str = ""
    sig: str = ""
    v: int = VERSION


class DiagResult(msgspec.Struct, frozen=True, tag="diag_res", tag_field="kind"):
    """What happened to one request. `status`: ok, failed (non-zero exit), timeout, error,
    refused (`reason` says why: unsigned, bad_signature, expired, replayed, not_allowed...)."""

    device: str
    site: str
    id: str
    check: str
    status: Literal["ok", "failed", "timeout", "error", "refused"]
    ts: float
    reason: str = ""
    detail: str = ""
    exit_code: int | None = None
    output: str = ""
    output_bytes: int = 0  # bytes the diagnostic printed, including any cut off
    truncated: bool = False
    duration: float = 0.0
    ticket: int | None = None
    v: int = VERSION


_diag_req_decoder = msgspec.json.Decoder(DiagRequest)
_diag_res_decoder = msgspec.json.Decoder(DiagResult)


def encode_diag(message: DiagRequest | DiagResult) -> bytes:
    return _encoder.encode(message)


def decode_diag_request(payload: bytes, max_bytes: int = 64 * 1024) -> DiagRequest:
    msg = _decode_with(_diag_req_decoder, payload, max_bytes)
    assert isinstance(msg, DiagRequest)
    return msg


def decode_diag_result(payload: bytes, max_bytes: int = 4 * 1024 * 1024) -> DiagResult:
    msg = _decode_with(_diag_res_decoder, payload, max_bytes)
    assert isinstance(msg, DiagResult)
    return msg


SIGNING_DOMAIN = b"fieldwatch-diag-request-v1\n"


def signing_bytes(req: DiagRequest) -> bytes:
    """The canonical bytes a request's signature covers: every field but `sig`, as JSON with
    sorted keys and no spaces, after a domain prefix (a signature means nothing elsewhere)."""
    body = msgspec.to_builtins(req)
    body.pop("sig", None)
    body["kind"] = "diag_req"
    return SIGNING_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=True, allow_nan=False).encode()
