"""The CLI over the same service layer: the skeleton's --json fields stay, errors exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldwatch.cli import main

SKELETON_FIELDS = {"id", "rule", "site", "device", "labels", "severity", "state", "title",
                   "description", "team", "fingerprint", "occurrences", "last_value",
                   "opened_at", "updated_at", "resolved_at", "last_seen"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_phoned_in_fault_from_create_to_close(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", str(tmp_path / "fw.db")]
    code, out, _ = run(capsys, "tickets", "create", "--device", "compressor-2", "--site",
                       "plant", "--title", "pressure drops", "--customer", "Ann 555",
                       "--priority", "P2", "--by", "phone-desk", "--json", *db)
    assert code == 0
    [t] = json.loads(out)
    tid = str(t["id"])
    for argv in (["ack", tid], ["assign", tid, "eli"], ["comment", tid, "on my way"],
                 ["wait", tid, "--text", "gate closed"], ["resume", tid], ["start", tid],
                 ["resolve", tid, "--note", "replaced valve", "--cause", "valve",
                  "--part", "valve V3", "--minutes", "50", "--on-site"],
                 ["close", tid, "--satisfaction", "5"]):
        code, out, err = run(capsys, "tickets", *argv, "--by", "eli", *db)
        assert code == 0, (argv, err)
    code, out, _ = run(capsys, "tickets", "show", tid, "--json", *db)
    [shown] = json.loads(out)
    assert shown["state"] == "closed" and shown["resolution"]["mode"] == "on_site"
    assert [e["actor"] for e in shown["timeline"]][:2] == ["phone-desk", "eli"]

    code, out, _ = run(capsys, "tickets", "list", "--json", *db)
    [listed] = json.loads(out)
    assert set(listed) >= SKELETON_FIELDS
    code, out, _ = run(capsys, "tickets", "show", tid, *db)
    assert "timeline:" in out and "sla response" in out

    code, out, _ = run(capsys, "devices", "history", "plant/compressor-2", "--json", *db)
    assert [x["id"] for x in json.loads(out)[0]["tickets"]] == [int(tid)]
    code, out, _ = run(capsys, "devices", "history", "compressor-2", "--site", "plant", *db)
    assert "replaced valve" in out

    code, out, _ = run(capsys, "report", "kpi", "--since", "1d", "--json", *db)
    k = json.loads(out)
    assert k["tickets"]["opened"] == 1 and k["parts"] == {"valve V3": 1}
    code, out, _ = run(capsys, "report", "kpi", *db)
    assert "MTTA" in out
    target = tmp_path / "report.md"
    code, out, _ = run(capsys, "report", "monthly", "--month", "2026-11", "--out", str(target),
                       *db)
    assert code == 0 and target.read_text().startswith("# Service report — November 2026")


@pytest.mark.parametrize(("argv", "message"), [
    (["tickets", "ack", "42"], "no ticket 42"),
    (["tickets", "close", "1"], "resolve it first"),
    (["tickets", "reopen", "1", "--text", "x"], "cannot reopen a ticket that is open"),
    (["report", "kpi", "--since", "soon"], "expected a duration"),
    (["report", "monthly", "--month", "2026/11"], "expected YYYY-MM"),
])
def test_errors_are_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        argv: list[str], message: str) -> None:
    db = ["--db", str(tmp_path / "fw.db")]
    assert run(capsys, "tickets", "create", "--device", "d", "--title", "t", *db)[0] == 0
    code, _, err = run(capsys, *argv, *db)
    assert code == 1 and message in err


def test_desk_config_errors_are_located(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    sla = tmp_path / "sla.yaml"
    sla.write_text("priorities:\n  P1: {respond: 15m, resolve: 4h, calendar: office}\n"
                   "  P2: {respond: 2h, resolve: 8h}\n  P3: {respond: soon, resolve: 1d}\n")
    cfg = tmp_path / "collector.yaml"
    cfg.write_text(f"db: {tmp_path / 'fw.db'}\ndesk:\n  sla: {sla}\n")
    code, _, err = run(capsys, "tickets", "list", "--config", str(cfg))
    assert code == 2
    assert f"{sla}:4:17: priorities.P3.respond: expected a duration" in err
