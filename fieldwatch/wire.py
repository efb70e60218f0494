"""Wire format v1: what agents publish and the collector reads (docs/wire-format.md).

Pure encoders and decoders. Decoding validates types with msgspec (fast, precise error paths),
ignores unknown fields (so minor additions stay compatible), and rejects, with a reason the
collector counts by, what could hurt whoever reads on: oversized payloads and deep nesting
(checked on the bytes first: msgspec's decoder recurses), numbers storage cannot hold (integers
fit 64 bits, `seq` is 0..2^63-1, timestamps are datetimes, values are finite) and, given the
reader's `now`, timestamps outside a window around it.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

import msgspec

from fieldwatch.errors import WireFormatError

VERSION = 1
DEFAULT_MAX_BYTES = 256 * 1024
TOPIC_ROOT = "fieldwatch/v1"

# Deepest nesting of arrays and objects a payload may have: metrics need 4 (message, samples,
# sample, labels), inventory facts a few more; 3,000 levels made msgspec raise RecursionError.
MAX_DEPTH = 32
# Timestamps must lie in [now - PAST_WINDOW, now + FUTURE_WINDOW] of the reader's clock. The
# past side is generous: agents replay their outage buffer (7 days by default) and retained
# status/inventory can be old. The future side allows clocks set a time zone off (UTC±14 h).
PAST_WINDOW = 366 * 86400.0
FUTURE_WINDOW = 86400.0
MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a datetime holds

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# Integers in free-form values (event fields, inventory facts) may also be unsigned 64-bit, an
# SNMP trap's Counter64: they are stored inside JSON, never bound to an integer column. msgspec
# bounds only int64, so `_check_ints` checks them after decoding.
INT_MIN, UINT_MAX = -(2**63), 2**64 - 1
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Timestamp = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_TS)]
# Floats need no bound of their own: JSON has no NaN or infinity, and msgspec refuses numbers
# that overflow a double (`1e999`) with "Number out of range", which is counted as `range`.


class Sample(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """One reading: `disk.used_percent{mount="/"} = 93.1` at `ts` (None: the message's ts).

    gc=False: samples hold only strings and numbers (no cycles possible), and keeping hundreds
    of thousands of them out of the cyclic GC's sight makes decoding a batch ~2x cheaper."""

    name: str
    value: float
    labels: dict[str, str] = {}
    ts: Timestamp | None = None


class Metrics(msgspec.Struct, frozen=True, tag="metrics", tag_field="kind"):
    """One poll cycle of one device."""

    device: str
    site: str
    seq: Seq
    ts: Timestamp
    samples: list[Sample]
    agent: str = ""
    v: Int64 = VERSION


class Status(msgspec.Struct, frozen=True, tag="status", tag_field="kind"):
    """Retained presence. `cause`: `connected`, `shutdown` (clean stop), `lost` (Last Will)."""

    device: str
    site: str
    state: Literal["online", "offline"]
    cause: str = ""
    ts: Timestamp | None = None  # None in a Last Will: it is written at connect time
    agent: str = ""
    v: Int64 = VERSION


class Event(msgspec.Struct, frozen=True, tag="event", tag_field="kind"):
    """Something that happened once: an SNMP trap, an agent-side event."""

    device: str
    site: str
    type: str
    ts: Timestamp
    fields: dict[str, str | int | float | bool | None] = {}  # ints: see `_check_ints`
    seq: Seq | None = None
    v: Int64 = VERSION


class Inventory(msgspec.Struct, frozen=True, tag="inventory",
                tag_field="kind"):
    """What the device is (OS, CPU, RAM, disks, NICs, serial): retained, sent on start and daily."""

    device: str
    site: str
    ts: Timestamp
    facts: dict[str, object] = {}  # any JSON; integers in it are checked after decoding
    agent: str = ""
    v: Int64 = VERSION


Message = Metrics | Status | Event | Inventory


class _Envelope(msgspec.Struct):
    v: Int64 = VERSION


_decoder = msgspec.json.Decoder(Message)
_envelope = msgspec.json.Decoder(_Envelope)


_encoder = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    return _encoder.encode(message)


def decode(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES, *,
           now: float | None = None) -> Message:
    """Decode one payload, or raise WireFormatError with reason `oversized`, `nesting`,
    `malformed` (not JSON), `invalid` (JSON of the wrong shape), `range` (a number out of range;
    with `now`, the reader's clock: also a timestamp outside the window) or `version`."""
    msg: Message = _decode_with(_decoder, payload, max_bytes)  # type: ignore[assignment]
    if isinstance(msg, Inventory):
        _check_ints(msg.facts)
    elif isinstance(msg, Event):
        _check_ints(msg.fields)
    if now is not None:
        check_window(msg, now)
    return msg


_RANGE = re.compile(r"Number out of range|Expected `(?:int|float)` [<>]")


def _decode_with(decoder: msgspec.json.Decoder, payload: bytes, max_bytes: int) -> object:
    """The one decoding path of every v1 payload: size cap, nesting, shape, ranges, version."""
    if len(payload) > max_bytes:
        raise WireFormatError("oversized", f"{len(payload)} bytes > limit {max_bytes}")
    if not payload.isascii():
        # msgspec skips unknown fields without checking their UTF-8, and payloads are stored
        try:
            payload.decode()
        except UnicodeDecodeError as exc:
            raise WireFormatError("malformed", f"not UTF-8: {exc.reason} at byte {exc.start}"
                                  ) from None
    check_nesting(payload)
    try:
        msg = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        _check_version(payload)
        raise WireFormatError("range" if _RANGE.match(str(exc)) else "invalid",
                              str(exc)) from None
    except msgspec.DecodeError as exc:
        raise WireFormatError("malformed", str(exc)) from None
    except RecursionError:  # check_nesting keeps it away; a decoder must still never raise it
        raise WireFormatError("nesting", "nested too deeply to decode") from None
    if msg.v != VERSION:
        raise WireFormatError("version", f"major version {msg.v} not understood (want {VERSION})")
    return msg


def _check_version(payload: bytes) -> None:
    try:
        v = _envelope.decode(payload).v
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return
    if v != VERSION:
        raise WireFormatError("version", f"major version {v} not understood (want {VERSION})")


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b'[]{}"')  # translate's delete set


def check_nesting(payload: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise `nesting` when arrays and objects nest deeper than `limit`, before a recursive
    decoder sees the payload (msgspec raises RecursionError near 1,000 levels, at a depth that
    depends on the caller's stack). Brackets outside strings that do not pair up: `malformed`.

    Bytes operations only (C speed, no Python loop per character): drop escaped backslashes
    and quotes, keep brackets and quotes, drop strings, then strip the innermost `[]`/`{}` pairs
    level by level; a 50-sample metrics message costs a few microseconds."""
    if b"\\" in payload:  # pairs of backslashes first, so `\\"` still ends its string
        payload = payload.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = payload.translate(None, _NOT_BRACKETS)
    quotes = marks.count(b'"')
    if len(marks) - quotes <= limit:
        return  # it cannot nest deeper than it has brackets
    if quotes == 2 * marks.count(b'""'):
        skeleton = marks.translate(None, b'"')  # no string holds a bracket: every one is `""`
    else:
        skeleton = b"".join(marks.split(b'"')[::2])  # even pieces lie outside strings
    levels = skeleton
    for _ in range(limit // 2):  # quick: a pass strips one or two levels
        if not levels:
            return
        shorter = levels.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(levels):
            raise WireFormatError("malformed", "brackets do not pair up")
        levels = shorter
    for _ in range(limit):  # exact, for the deep ones: a pass strips one level
        if not skeleton:
            return
        shorter = skeleton.replace(b"[]", b"|").replace(b"{}", b"|").replace(b"|", b"")
        if len(shorter) == len(skeleton):
            raise WireFormatError("malformed", "brackets do not pair up")
        skeleton = shorter
    if skeleton:
        raise WireFormatError("nesting", f"arrays and objects nested deeper than {limit} levels")


def _check_ints(value: object) -> None:
    """Integers anywhere in free-form JSON (event fields, inventory facts) must fit 64 bits,
    signed or unsigned. The walk is bounded: check_nesting bounded the depth, max_bytes the
    size."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, int) and not INT_MIN <= v <= UINT_MAX:
            raise WireFormatError("range", f"integer {v} does not fit in 64 bits")


def check_window(msg: Message | DiagResult, now: float, past: float = PAST_WINDOW,
                 future: float = FUTURE_WINDOW) -> None:
    """Raise `range` when a timestamp of `msg` (its own, or a sample's) is outside
    [now - past, now + future]: far-off times break SLA clocks and date arithmetic downstream."""
    lo, hi = now - past, now + future
    if msg.ts is not None and not lo <= msg.ts <= hi:
        raise WireFormatError("range", _outside("ts", msg.ts, lo, hi))
    if isinstance(msg, Metrics):
        for s in msg.samples:
            if s.ts is not None and not lo <= s.ts <= hi:
                raise WireFormatError("range", _outside(f"sample {s.name}: ts", s.ts, lo, hi))


def _outside(what: str, ts: float, lo: float, hi: float) -> str:
    return f"{what} {ts:.0f} outside the window {lo:.0f}..{hi:.0f} around the reader's clock"


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

ArgValue = str | Int64 | float | bool | list[str]


class Approval(msgspec.Struct, frozen=True):
    """A person's authorization of one action on one ticket, as recorded on the ticket."""

    action: str
    by: str
    at: Timestamp
    on_behalf_of: str = ""
    ticket: Int64 | None = None


class DiagRequest(msgspec.Struct, frozen=True, tag="diag_req", tag_field="kind"):
    """Run `check` with `args`. Signed by the collector over `signing_bytes` (Ed25519, base64)."""

    device: str
    site: str
    id: str  # correlation id: the result carries it back
    check: str
    issued: Timestamp
    expires: Timestamp
    nonce: str
    args: dict[str, ArgValue] = {}
    ticket: Int64 | None = None
    auto: bool = False  # started by a firing rule, no person involved
    approval: Approval | None = None
    requested_by: str = ""
    key_id: str = ""
    sig: str = ""
    v: Int64 = VERSION


class DiagResult(msgspec.Struct, frozen=True, tag="diag_res", tag_field="kind"):
    """What happened to one request. `status`: ok, failed (non-zero exit), timeout, error,
    refused (`reason` says why: unsigned, bad_signature, expired, replayed, not_allowed...)."""

    device: str
    site: str
    id: str
    check: str
    status: Literal["ok", "failed", "timeout", "error", "refused"]
    ts: Timestamp
    reason: str = ""
    detail: str = ""
    exit_code: Int64 | None = None
    output: str = ""
    output_bytes: Int64 = 0  # bytes the diagnostic printed, including any cut off
    truncated: bool = False
    duration: float = 0.0
    ticket: Int64 | None = None
    v: Int64 = VERSION


_diag_req_decoder = msgspec.json.Decoder(DiagRequest)
_diag_res_decoder = msgspec.json.Decoder(DiagResult)


def encode_diag(message: DiagRequest | DiagResult) -> bytes:
    return _encoder.encode(message)


def decode_diag_request(payload: bytes, max_bytes: int = 64 * 1024) -> DiagRequest:
    """Like `decode`. No time window here: the agent's verifier refuses expired and
    not-yet-valid requests with reasons of their own."""
    msg = _decode_with(_diag_req_decoder, payload, max_bytes)
    assert isinstance(msg, DiagRequest)
    return msg


def decode_diag_result(payload: bytes, max_bytes: int = 4 * 1024 * 1024, *,
                       now: float | None = None) -> DiagResult:
    """Like `decode`, `now` included."""
    msg = _decode_with(_diag_res_decoder, payload, max_bytes)
    assert isinstance(msg, DiagResult)
    if now is not None:
        check_window(msg, now)
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
