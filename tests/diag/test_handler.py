"""The agent's gate: every refusal has a reason, is audited, and nothing unsafe runs."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fieldwatch.agent.diag.config import DiagConfig
from fieldwatch.agent.diag.handler import DiagHandler

from fieldwatch import signing, wire
from fieldwatch.clock import FakeClock
from fieldwatch.structs import convert
from tests.diag.helpers import keypair, nested, request


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    key, _, pub = keypair(tmp_path)
    other, _, _ = keypair(tmp_path, "other")
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "big").write_bytes(b"x" * 200_000)
    (tmp_path / "secret").write_text("no")
    (root / "escape").symlink_to(tmp_path)
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(500)))
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "job1").write_text("x")
    marker = tmp_path / "flushed"

    def make(**over: Any) -> DiagHandler:
        cfg: dict[str, Any] = {
            "trusted_keys": [str(pub)], "roots": [str(root)], "logs": {"app": str(log)},
            "spools": {"print": str(spool)}, "services": ["cron"], "timeout": "5s",
            "max_output": 4096,
            "policy": {"changing": "ask", "checks": {"smart_status": "never"}},
            "commands": {
                "flush": {"argv": ["/usr/bin/touch", str(marker)], "changing": True},
                "spin": {"argv": ["/bin/sleep", "30"], "changing": False, "timeout": "300ms"},
                "chatty": {"argv": ["/usr/bin/head", "-c", "100000000", "/dev/zero"],
                           "changing": False, "timeout": "60s"}}}
        cfg.update(over)
        c = convert(DiagConfig, cfg)
        return DiagHandler(c, "pump-01", "plant", tmp_path / "state", clock,
                           signing.trusted(c.trusted_keys))

    h = make()
    yield {"h": h, "key": key, "other": other, "clock": clock, "make": make, "root": root,
           "spool": spool, "marker": marker}
    h.close()


def run(env: dict[str, Any], req: wire.DiagRequest, handler: DiagHandler | None = None
        ) -> wire.DiagResult:
    res = (handler or env["h"]).handle(wire.encode_diag(req))
    assert res is not None  # a request that decodes is always answered
    return res


def last_audit(env: dict[str, Any]) -> dict[str, Any]:
    return env["h"].audit.read()[-1]


def approval(check: str, ticket: int = 1) -> wire.Approval:
    return wire.Approval(action=check, by="Ana (service desk)", at=1.0,
                         on_behalf_of="ACME plant manager", ticket=ticket)


def test_a_signed_read_only_check_runs_and_is_audited(env: dict[str, Any]) -> None:
    res = run(env, request("disk_usage", env["clock"].now(), env["key"]))
    assert res.status == "ok", res
    assert "a/b" in res.output and res.ticket == 1
    rec = last_audit(env)
    assert rec["status"] == "ok" and rec["check"] == "disk_usage" and rec["signed"]
    assert rec["output_bytes"] == res.output_bytes and "output" not in rec


def test_list_describes_the_allow_list(env: dict[str, Any]) -> None:
    res = run(env, request("list", env["clock"].now(), env["key"]))
    names = {c["name"]: c["class"] for c in json.loads(res.output)}
    assert names["restart_service"] == "changing" and names["ping"] == "read_only"
    assert names["flush"] == "changing" and names["spin"] == "read_only"


@pytest.mark.parametrize(("mutate", "reason"), [
    ("unsigned", "unsigned"),
    ("wrong_key", "unknown_key"),
    ("tampered", "bad_signature"),
    ("expired", "expired"),
    ("future", "not_yet_valid"),
    ("too_long", "too_long_valid"),
    ("other_device", "wrong_device"),
    ("unknown_check", "unknown_check"),
])
def test_refusals_are_explained_and_audited(env: dict[str, Any], mutate: str,
                                            reason: str) -> None:
    now, key = env["clock"].now(), env["key"]
    req = {
        "unsigned": lambda: request("top_processes", now),
        "wrong_key": lambda: request("top_processes", now, env["other"]),
        "tampered": lambda: msgspec.structs.replace(
            request("disk_usage", now, key), args={"depth": 4}),
        "expired": lambda: request("top_processes", now - 120, key),
        "future": lambda: request("top_processes", now + 3600, key),
        "too_long": lambda: request("top_processes", now, key, ttl=86400),
        "other_device": lambda: request("top_processes", now, key, device="pump-02"),
        "unknown_check": lambda: request("rm_rf", now, key),
    }[mutate]()
    res = run(env, req)
    assert (res.status, res.reason) == ("refused", reason)
    assert res.id == req.id and res.output == ""
    rec = last_audit(env)
    assert (rec["status"], rec["reason"], rec["id"]) == ("refused", reason, req.id)


def test_a_replayed_request_is_refused_even_after_a_restart(env: dict[str, Any]) -> None:
    req = request("top_processes", env["clock"].now(), env["key"], args={"n": 1})
    assert run(env, req).status == "ok"
    assert run(env, req).reason == "replayed"
    env["h"].close()
    fresh = env["make"]()
    assert run(env, req, fresh).reason == "replayed"
    # ... and the nonce file forgets it only after the request has expired anyway
    env["clock"].advance(3600)
    assert run(env, req, fresh).reason == "expired"
    fresh.close()


def test_garbage_payload_is_refused_as_malformed(env: dict[str, Any]) -> None:
    # no id can be read from cut-off JSON: audited and counted, nobody to answer
    assert env["h"].handle(b'{"id": "abc", "kind": "diag_req", "check": 5') is None
    rec = last_audit(env)
    assert (rec["status"], rec["reason"], rec["answered"]) == ("refused", "malformed", False)
    assert env["h"].unanswered["malformed"] == 1
    res = env["h"].handle(b'{"id": "abc", "kind": "diag_req", "check": "ping"}')
    assert res is not None and (res.reason, res.id, res.check) == ("malformed", "abc", "ping")
    assert (last_audit(env)["reason"], last_audit(env)["answered"]) == ("malformed", True)


@pytest.mark.parametrize(("check", "args"), [
    ("ping", {"host": "8.8.8.8; rm -rf /"}),
    ("ping", {"host": "-f"}),
    ("ping", {"host": "$(id)"}),
    ("ping", {"host": "127.0.0.1", "count": "3; id"}),
    ("tcp_port", {"host": "`id`", "port": 80}),
    ("tcp_port", {"host": "127.0.0.1", "port": "80 -e"}),
    ("tcp_port", {"host": "127.0.0.1", "port": True}),
    ("disk_usage", {"path": "../../etc/shadow"}),
    ("disk_usage", {"path": "/etc/shadow"}),
    ("disk_usage", {"path": "escape/secret"}),  # a symlink out of the root
    ("disk_usage", {"path": "-rf"}),
    ("log_tail", {"log": "/etc/shadow"}),
    ("service_status", {"service": "cron; reboot"}),
    ("http_check", {"url": "file:///etc/shadow"}),
    ("http_check", {"url": "http://user:pw@127.0.0.1/"}),
    ("dns_lookup", {"name": "a b"}),
    ("top_processes", {"n": 5, "extra": "x"}),
    ("flush", {"argv": ["/bin/sh"]}),  # operator commands take no arguments
])
def test_injection_attempts_are_rejected_by_validation(env: dict[str, Any], check: str,
                                                       args: dict[str, Any]) -> None:
    ap = approval(check) if check == "flush" else None
    res = run(env, request(check, env["clock"].now(), env["key"], args=args, approval=ap))
    assert (res.status, res.reason) == ("refused", "invalid_arguments"), res
    assert last_audit(env)["reason"] == "invalid_arguments"
    assert not env["marker"].exists()


def test_never_policy_refuses(env: dict[str, Any]) -> None:
    res = run(env, request("smart_status", env["clock"].now(), env["key"],
                           args={"device": "/dev/sda"}))
    assert res.reason == "not_allowed"


def test_changing_actions_need_a_matching_approval(env: dict[str, Any]) -> None:
    now, key = env["clock"].now(), env["key"]
    assert run(env, request("flush", now, key)).reason == "approval_required"
    assert run(env, request("flush", now, key, approval=approval("clear_spool"))
               ).reason == "approval_mismatch"
    assert run(env, request("flush", now, key, approval=approval("flush", ticket=2))
               ).reason == "approval_mismatch"
    assert not env["marker"].exists()
    res = run(env, request("flush", now, key, approval=approval("flush")))
    assert res.status == "ok" and env["marker"].exists()
    rec = last_audit(env)
    assert rec["approval"]["by"] == "Ana (service desk)"
    assert rec["approval"]["on_behalf_of"] == "ACME plant manager"


def test_changing_actions_are_off_unless_the_device_allows_them(env: dict[str, Any]) -> None:
    h = env["make"](policy={})  # default: changing = never
    res = run(env, request("clear_spool", env["clock"].now(), env["key"],
                           args={"spool": "print"}, approval=approval("clear_spool")), h)
    assert res.reason == "not_allowed"
    assert (env["spool"] / "job1").exists()
    h.close()


def test_clear_spool_with_approval_takes_a_backup_first(env: dict[str, Any]) -> None:
    import tarfile

    (env["spool"] / "sub").mkdir()
    (env["spool"] / "sub" / "job2").write_text("yy")
    (env["spool"] / "outside").symlink_to(env["root"])  # removed as a link, target untouched
    res = run(env, request("clear_spool", env["clock"].now(), env["key"],
                           args={"spool": "print"}, approval=approval("clear_spool")))
    doc = json.loads(res.output)
    assert res.status == "ok" and doc["removed"] == 3
    assert env["spool"].is_dir() and list(env["spool"].iterdir()) == []
    assert (env["root"] / "a" / "b" / "big").exists()
    with tarfile.open(doc["backup"]) as tar:
        assert sorted(tar.getnames()) == ["job1", "outside", "sub", "sub/job2"]
        assert tar.extractfile("sub/job2").read() == b"yy"  # type: ignore[union-attr]
    assert Path(doc["backup"]).stat().st_mode & 0o077 == 0


def test_a_spool_too_large_to_back_up_is_not_cleared(env: dict[str, Any]) -> None:
    h = env["make"](backup_max_bytes=0)
    res = run(env, request("clear_spool", env["clock"].now(), env["key"],
                           args={"spool": "print"}, approval=approval("clear_spool")), h)
    assert res.status == "failed" and "not cleared" in json.loads(res.output)["error"]
    assert (env["spool"] / "job1").exists()
    h.close()


def test_ask_policy_makes_read_only_checks_need_approval(env: dict[str, Any]) -> None:
    h = env["make"](policy={"read_only": "ask"})
    req = request("top_processes", env["clock"].now(), env["key"], auto=True)
    assert run(env, req, h).reason == "approval_required"
    h.close()


def test_rate_limit_per_device(env: dict[str, Any]) -> None:
    h = env["make"](rate_limit={"max": 2, "per": "1m"})
    now, key = env["clock"].now(), env["key"]
    got = [run(env, request("dns_lookup", now, key, args={"name": "localhost"}), h).status
           for _ in range(3)]
    assert got == ["ok", "ok", "refused"]
    assert run(env, request("dns_lookup", now, key, args={"name": "localhost"}), h
               ).reason == "rate_limited"
    env["clock"].advance(61)
    assert run(env, request("dns_lookup", env["clock"].now(), key,
                            args={"name": "localhost"}), h).status == "ok"
    h.close()


def test_operator_command_past_its_timeout_is_killed(env: dict[str, Any]) -> None:
    res = run(env, request("spin", env["clock"].now(), env["key"]))
    assert (res.status, res.exit_code) == ("timeout", None)
    assert last_audit(env)["status"] == "timeout"


def test_100_mb_of_output_is_cut_at_the_cap(env: dict[str, Any]) -> None:
    res = run(env, request("chatty", env["clock"].now(), env["key"]))
    assert res.status == "ok" and res.truncated
    assert len(res.output) == 4096 and res.output_bytes == 100_000_000
    assert set(res.output) == {"\ufffd"}  # NULs made printable (and storable in PostgreSQL)
    assert len(wire.encode_diag(res)) < 4096 * 3 + 1000


def test_tcp_port_and_log_tail(env: dict[str, Any]) -> None:
    now, key = env["clock"].now(), env["key"]
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        res = run(env, request("tcp_port", now, key, args={"host": "127.0.0.1", "port": port}))
    assert res.status == "ok" and "open" in res.output
    res = run(env, request("log_tail", now, key, args={"log": "app", "lines": "3"}))
    assert res.output == "line 497\nline 498\nline 499\n"


def test_defaults_from_config_fill_rule_runs(env: dict[str, Any]) -> None:
    h = env["make"](defaults={"log_tail": {"log": "app", "lines": 2}})
    res = run(env, request("log_tail", env["clock"].now(), env["key"], auto=True), h)
    assert res.output == "line 498\nline 499\n"
    h.close()


def test_no_trusted_keys_refuses_everything(env: dict[str, Any]) -> None:
    h = env["make"](trusted_keys=[])
    assert run(env, request("list", env["clock"].now(), env["key"]), h).reason == "unknown_key"
    h.close()


def test_audit_lines_stay_small_whatever_the_request_carries(env: dict[str, Any]) -> None:
    req = request("ping", env["clock"].now(), None, args={"host": "x" * 60_000})
    assert run(env, req).reason == "unsigned"
    line = env["h"].audit.path.read_text().splitlines()[-1]
    assert len(line) < 4000 and "_cut" in json.loads(line)["args"]


def test_undecodable_requests_are_audited_never_whole_and_answered_only_when_addressable(
        env: dict[str, Any]) -> None:
    h = env["h"]
    cases = {
        # readable id and this device: answered
        "wrong_shape": (b'{"kind":"diag_req","id":"r1","device":"pump-01","site":"plant",'
                        b'"check":5}', "r1"),
        "nested_200": (nested(200, "r2"), "r2"),
        # another device named, cut-off JSON, an id too long, an oversized payload: not
        "other_device": (nested(200, "r3", device="pump-02"), None),
        "cut_off": (b'{"kind":"diag_req","id":"r4","check":"pi', None),
        "long_id": (nested(5, "x" * 65), None),
        "device_not_a_name": (b'{"kind":"diag_req","id":"r7","device":5}', None),
        "oversized": (b'{"kind":"diag_req","id":"r6","device":"pump-01","args":{"a":"'
                      + b"A" * 70_000 + b'"}}', None),
    }
    for name, (payload, answered_as) in cases.items():
        res = h.handle(payload)
        rec = last_audit(env)
        assert (rec["status"], rec["reason"], rec["answered"]) == (
            "refused", "malformed", answered_as is not None), name
        if answered_as is None:
            assert res is None, name
        else:
            assert res is not None and (res.id, res.status, res.reason) == (
                answered_as, "refused", "malformed"), name
        assert rec["payload_bytes"] == len(payload) and rec["payload_head"] == payload[
            :64].decode(), name
        assert len(h.audit.path.read_text().splitlines()[-1]) < 2000, name
    assert "oversized" in last_audit(env)["detail"]
    assert sum(h.unanswered.values()) == 5


def test_a_deeply_nested_request_is_refused_as_malformed_and_audited(
        env: dict[str, Any]) -> None:
    assert env["h"].handle(nested(3000, "deep")) is None  # its id cannot be read safely
    rec = last_audit(env)
    assert (rec["status"], rec["reason"], rec["answered"]) == ("refused", "malformed", False)
    assert rec["payload_bytes"] == len(nested(3000, "deep"))
