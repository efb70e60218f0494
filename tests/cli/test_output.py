"""What a person sees (issue 12 #13): human values instead of Python reprs, choices checked
with exit 2, quiet `| head`, `--json` wherever state is read."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.tickets.alerts import TicketChange

from fieldwatch.cli import human
from tests.cli.helpers import FIELDWATCH, run, seed_data_dir

# what a Python value looks like when it leaks into human output
REPR = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\['|': |\bnan\b")
T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


@pytest.fixture(autouse=True)
def berlin_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Human times are local: pin the zone so they are predictable."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A device with an inventory, a rule ticket with labels, a worked manual ticket, a
    silence."""
    d = seed_data_dir(tmp_path / "data")
    store = Store(open_engine(f"sqlite:///{d / 'fieldwatch.db'}"))
    store.write(BatchWrite(changes=[TicketChange(
        kind="fire", fingerprint="fp-1", rule="bearing_hot", site="plant", device="pump-1",
        labels={"sensor": "bearing"}, severity="P1", title="Bearing hot", description="",
        team=None, value=91.5, first_ts=T0, last_ts=T0)]), T0)
    store.engine.dispose()
    db = ["--data", str(d)]
    for argv in (["create", "--device", "pump-1", "--site", "plant", "--title", "leaks",
                  "--customer", "Ann"],
                 ["ack", "2"], ["wait", "2", "--text", "gate closed"],
                 ["resume", "2"], ["resolve", "2", "--note", "new seal", "--cause", "seal",
                                   "--part", "seal S4", "--minutes", "50", "--on-site"],
                 ["close", "2", "--satisfaction", "4"]):
        assert run(capsys, "tickets", *argv, "--by", "eli", *db)[0] == 0, argv
    assert run(capsys, "silences", "add", "-m", "device=pump-1", "--duration", "2h",
               "--reason", "service", *db)[0] == 0
    return d


HUMAN_COMMANDS = [
    ["tickets", "list"], ["tickets", "show", "1"], ["tickets", "show", "2"],
    ["devices", "list"], ["devices", "history", "plant/pump-1"], ["report", "kpi"],
    ["report", "monthly"], ["silences", "list", "--all"], ["outbox", "list", "--state", "all"],
    ["diag", "show", "1"],
]


@pytest.mark.parametrize("argv", HUMAN_COMMANDS, ids=" ".join)
def test_no_python_value_reaches_the_terminal(data: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str]) -> None:
    code, out, err = run(capsys, *argv, "--data", str(data))
    assert code == 0, err
    assert out.strip()
    assert not REPR.search(out), out


def test_tickets_show_in_words(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, one, _ = run(capsys, "tickets", "show", "1", "--data", str(data))
    assert one.startswith("ticket 1: Bearing hot\n")
    assert re.search(r"labels: sensor=bearing\n", one)
    assert re.search(r"last value: 91.5 \(1 sample\)\n", one)
    assert "opened: 2026-09-21 16:13:20 CEST (" in one  # local time, then how long ago
    assert re.search(r"sla response: BREACHED, \S+ .*of 15 min used, was due 2026-09-21 "
                     r"16:28:20 CEST", one)
    assert "description" not in one and "assignee" not in one  # nothing empty is shown
    _, two, _ = run(capsys, "tickets", "show", "2", "--data", str(data))
    assert "fix: new seal (50 min, on site, parts: seal S4)" in two
    assert "cause: seal" in two and "satisfaction: 4/5" in two and "customer: Ann" in two
    assert "sla response: met at" in two
    assert re.search(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T  eli: waiting — gate closed",
                     two)


def test_devices_in_words(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "devices", "history", "pump-1", "--data", str(data))
    assert "first seen 2026-09-21 16:13:20 CEST, last seen 2026-09-21 16:23:20 CEST" in out
    for line in ("system: Debian 12 6.1.0 x86_64", "cpu: Atom, 2 cores / 4 threads",
                 "ram: 4.0 GiB", "disks: sda 64.0 GiB", "nics: eth0=02:00:00:00:00:01",
                 "serial: —"):
        assert line in out
    _, out, _ = run(capsys, "devices", "list", "--data", str(data))
    assert re.search(r"pump-1\s+online\s+\d+ d( \d+ h)? ago\s+7", out)


def test_kpi_in_words(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "report", "kpi", "--since", "3650d", "--data", str(data))
    assert "satisfaction: 4/5 (1 scores)" in out
    assert "SLA P2: no tickets" in out
    assert re.search(r"SLA P1: response 0.0% \(0 met, 1 breached, 0 pending\)", out)


@pytest.mark.parametrize(("value", "text"), [
    (None, "—"), ("", "—"), ([], "—"), ({}, "—"), (True, "yes"), (False, "no"), (3.0, "3"),
    (0.25, "0.25"), ({"a": 1, "b": None}, "a=1, b=—"), (["x", 2], "x, 2"), ("ok", "ok")])
def test_values(value: object, text: str) -> None:
    assert human.value(value) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0.4, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"),
    (3600, "1 h"), (3 * 3600 + 20 * 60 + 5, "3 h 20 min"), (86400, "1 d"),
    (2 * 86400 + 4 * 3600, "2 d 4 h"), (-90, "-1 min")])
def test_durations(seconds: float | None, text: str) -> None:
    assert human.duration(seconds) == text


def test_when_accepts_epoch_and_rfc3339() -> None:
    assert human.when(T0) == human.when("2026-09-21T14:13:20.000Z") == "2026-09-21 16:13:20 CEST"
    assert human.when(None) == "—"
    assert human.relative(T0 - 300, T0) == "5 min ago" and human.relative(T0 + 60, T0) == \
        "in 1 min"


@pytest.mark.parametrize(("argv", "valid"), [
    (["tickets", "list", "--status", "opne"], "'open', 'acknowledged', 'in_progress'"),
    (["tickets", "list", "--priority", "p1"], "'P1', 'P2', 'P3'"),
    (["tickets", "create", "--device", "d", "--title", "t", "--priority", "high"], "'P1'"),
    (["outbox", "list", "--state", "failed"], "'dead', 'pending', 'delivered', 'all'"),
])
def test_invalid_choices_exit_2_naming_the_valid_values(
        data: Path, capsys: pytest.CaptureFixture[str], argv: list[str], valid: str) -> None:
    with pytest.raises(SystemExit) as exc:
        run(capsys, *argv, "--data", str(data))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and valid in err


def test_a_closed_pipe_ends_quietly(data: Path) -> None:
    """`fieldwatch tickets list | head -1`: the reader is gone before we write."""
    r, w = os.pipe()
    os.close(r)
    try:
        out = subprocess.run([*FIELDWATCH, "tickets", "list", "--data", str(data)], stdout=w,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)
    assert out.returncode == 141
    assert out.stderr == ""


def test_head_reads_the_first_line(data: Path) -> None:
    shell = subprocess.run(
        f"set -o pipefail; {sys.executable} -m fieldwatch.cli tickets list --data "
        f"'{data}' | head -1", shell=True, executable="/bin/bash", capture_output=True,
        text=True, timeout=60)
    assert shell.stdout.startswith("ID ") and "Traceback" not in shell.stderr


def test_json_where_state_is_read_or_changed(data: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--data", str(data)]
    code, out, _ = run(capsys, "report", "monthly", "--month", "2026-09", "--json", *db)
    assert code == 0 and json.loads(out)["tickets"]["opened"] == 1  # the rule ticket
    code, out, _ = run(capsys, "silences", "add", "-m", "site=plant", "--duration", "1h",
                       "--reason", "x", "--json", *db)
    [row] = json.loads(out)
    assert row["matchers"] == {"site": "plant"} and row["state"] == "active"
    code, out, _ = run(capsys, "silences", "expire", row["id"], "--json", *db)
    assert json.loads(out)[0]["state"] == "expired"
    code, out, _ = run(capsys, "outbox", "retry", "--all", "--json", *db)
    assert json.loads(out) == [{"requeued": 0}]
    code, out, _ = run(capsys, "tickets", "approve", "1", "restart_service", "--by", "Ana",
                       "--json", *db)
    [a] = json.loads(out)
    assert (a["ticket"], a["action"], a["by"]) == (1, "restart_service", "Ana")


def test_every_state_command_takes_json_and_config() -> None:
    from fieldwatch.cli import build_parser

    parser = build_parser(every=True)
    readers = [["tickets", "list"], ["tickets", "show"], ["tickets", "ack"],
               ["devices", "list"], ["devices", "history"], ["report", "kpi"],
               ["report", "monthly"], ["silences", "add"], ["silences", "list"],
               ["silences", "expire"], ["outbox", "list"], ["outbox", "retry"],
               ["diag", "show"], ["diag", "run"], ["diag", "list"], ["diag", "onsite"],
               ["tickets", "approve"], ["rules", "backtest"]]
    for path in readers:
        p = parser
        for word in path:
            p = next(a for a in p._subparsers._group_actions  # type: ignore[union-attr]
                     ).choices[word]
        flags = {s for a in p._actions for s in a.option_strings}
        assert {"--json", "--config", "--data", "--db"} <= flags, path


def test_outbox_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fieldwatch.collector.desks import outbox
    from fieldwatch.collector.desks.config import WebhookDesk

    from fieldwatch.errors import DeskRejected
    from tests.desks.helpers import fire

    url = f"sqlite:///{tmp_path / 'fw.db'}"
    store = Store(open_engine(url))
    outbox.register_desks(store.engine, "fw", [
        WebhookDesk(type="webhook", name="hook", url="http://127.0.0.1:9/")], 0.0)
    fire(store, "a", T0)
    fire(store, "b", T0 + 5)
    q = outbox.Queue(store.engine)
    q.dead(q.due("hook", T0 + 10)[0], DeskRejected("POST 127.0.0.1/hook: 422 bad team"))
    store.engine.dispose()
    code, out, _ = run(capsys, "outbox", "list", "--state", "all", "--db", url)
    assert code == 0 and not REPR.search(out)
    pending, dead = out.splitlines()[1:3]
    assert re.search(r"pending\s+0\s+2026-09-21 16:13:25 CEST\s+now\s+—$", pending)
    assert re.search(r"dead\s+1\s+2026-09-21 16:13:20 CEST\s+—\s+POST 127.0.0.1/hook: 422", dead)
