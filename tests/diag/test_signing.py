"""Keys, canonical encoding and signatures of diagnostic requests; the diag wire structs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec
import pytest
from fieldwatch.agent.diag.verify import NonceStore
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldwatch import signing, wire
from fieldwatch.errors import ConfigError, DiagnosticRefused, WireFormatError
from tests.diag.helpers import keypair, request


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    key, pub = signing.generate(tmp_path)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert signing.key_id(signing.public_bytes(signing.load_private(key).public_key())) == \
        signing.key_id(signing.load_public(pub))
    with pytest.raises(ConfigError, match="--force"):
        signing.generate(tmp_path)
    signing.generate(tmp_path, force=True)


def test_bad_key_files_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError) as exc:
        signing.trusted([tmp_path / "junk.pem", tmp_path / "missing.pub"])
    assert len(exc.value.problems) == 2
    with pytest.raises(ConfigError):
        signing.load_private(tmp_path / "junk.pem")


def test_signature_covers_every_field(tmp_path: Path) -> None:
    key, _, _ = keypair(tmp_path)
    raw = signing.public_bytes(key.public_key())
    keys = {signing.key_id(raw): raw}
    req = request("ping", 1000.0, key, args={"host": "gw"},
                  approval=wire.Approval(action="ping", by="Ana", at=1.0, ticket=1))
    signing.verify(req, keys)
    signing.verify(wire.decode_diag_request(wire.encode_diag(req)), keys)  # survives the wire
    for change in ({"check": "restart_service"}, {"args": {"host": "evil"}}, {"ticket": 2},
                   {"expires": 99999.0}, {"nonce": "n" * 32}, {"device": "other"},
                   {"auto": True}, {"approval": None}, {"requested_by": "mallory"}):
        with pytest.raises(DiagnosticRefused) as exc:
            signing.verify(msgspec.structs.replace(req, **change), keys)
        assert exc.value.reason == "bad_signature"
    with pytest.raises(DiagnosticRefused, match="bad_signature"):
        signing.verify(msgspec.structs.replace(req, sig="!!notbase64"), keys)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=20), st.integers(
    -2**53, 2**53), st.booleans(), st.lists(st.text(max_size=5), max_size=3)), max_size=5))
def test_canonical_bytes_survive_a_round_trip(args: dict[str, object]) -> None:
    req = wire.DiagRequest(device="d", site="s", id="i", check="c", issued=1.5, expires=2.5,
                           nonce="n" * 16, args=args)  # type: ignore[arg-type]
    back = wire.decode_diag_request(wire.encode_diag(req))
    assert wire.signing_bytes(back) == wire.signing_bytes(req)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decoders_never_crash_on_garbage(payload: bytes) -> None:
    for decode in (wire.decode_diag_request, wire.decode_diag_result):
        try:
            decode(payload)
        except WireFormatError as exc:
            assert exc.reason in ("malformed", "invalid", "version", "oversized")


def test_oversized_and_wrong_version() -> None:
    with pytest.raises(WireFormatError, match="oversized"):
        wire.decode_diag_request(b"x" * 70_000)
    bad = b'{"kind":"diag_res","v":2,"device":"d","site":"s","id":"i","check":"c",' \
          b'"status":"ok","ts":1}'
    with pytest.raises(WireFormatError, match="version"):
        wire.decode_diag_result(bad)


def test_nonce_store_forgets_only_expired_nonces_and_survives_damage(tmp_path: Path) -> None:
    store = NonceStore(tmp_path / "n.json")
    store.add("a" * 16, 100.0, 50.0)
    with pytest.raises(DiagnosticRefused, match="replayed"):
        NonceStore(tmp_path / "n.json").add("a" * 16, 100.0, 60.0)
    NonceStore(tmp_path / "n.json").add("a" * 16, 300.0, 101.0)  # expired: forgotten
    (tmp_path / "n.json").write_text("{broken")
    fresh = NonceStore(tmp_path / "n.json")
    assert fresh.seen == {} and (tmp_path / "n.damaged").exists()
    small = NonceStore(tmp_path / "s.json", max_entries=1)
    small.add("b" * 16, 100.0, 1.0)
    with pytest.raises(DiagnosticRefused, match="busy"):
        small.add("c" * 16, 100.0, 1.0)
