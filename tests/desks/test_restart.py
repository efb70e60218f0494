"""Across a collector killed with SIGKILL mid-delivery and started again: every change reaches
the desks exactly once, in order per ticket."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from fieldwatch.collector.desks import outbox
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from tests.desks import emulators as emu
from tests.desks.helpers import clear, fire
from tests.desks.server import DeskServer, wait_for
from tests.e2e.procs import Proc, write_yaml
from tests.servers import Mosquitto

pytestmark = pytest.mark.e2e
TICKETS = 10


def start(tmp: Path, mqtt_port: int, hook: DeskServer, jira: DeskServer, n: int) -> Proc:
    rules = tmp / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "r.yaml").write_text(
        "rules:\n  - name: pump_hot\n    metric: pump.temp\n    when: value > 80\n"
        "    severity: P1\n    ticket: {title: hot}\n")
    cfg = write_yaml(tmp / "collector.yaml", {
        "broker": {"host": "127.0.0.1", "port": mqtt_port}, "client_id": "fw-restart",
        "rules": [str(rules)], "db": f"sqlite:///{tmp / 'fieldwatch.db'}",
        "integrations": {
            "instance": "fw", "poll": "20ms", "concurrency": 4,
            "retry": {"base": "50ms", "max_delay": "300ms"},
            "targets": [
                {"type": "webhook", "name": "hook", "url": hook.url + "/hook",
                 "secret": {"env": "FW_TEST_HOOK_SECRET"}, "timeout": "300ms"},
                {"type": "jira", "name": "jira", "url": jira.url, "project": "OPS",
                 "email": "bot", "api_token": {"file": str(tmp / "jira-token")},
                 "timeout": "300ms"}]}})
    (tmp / "jira-token").write_text("t\n")
    proc = Proc(["collector", "run", "--config", str(cfg), "--http-port", "0"],
                tmp / f"collector-{n}.log", env={"FW_TEST_HOOK_SECRET": "k"})
    proc.wait_output(r"HTTP API on")
    return proc


def test_kill_9_mid_delivery_then_restart_delivers_exactly_once(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    receiver, ji = emu.WebhookReceiver(b"k"), emu.JiraEmu("bot", "t")
    hook, jira = DeskServer(receiver, 3.0).start(), DeskServer(ji, 3.0).start()
    collector = start(tmp_path, mosquitto.port, hook, jira, 1)
    store = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}", create=False))
    q = outbox.Queue(store.engine)
    try:
        for srv in (hook, jira):
            srv.mode = "hang"  # the desks take requests and never answer
        for i in range(TICKETS):
            fire(store, f"t{i}", float(i))
        wait_for(lambda: len(jira.seen) >= 4 and len(hook.seen) >= 4)
        assert collector.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-delivery
        assert ji.issues  # some issues exist whose ids fieldwatch never heard
        for i in range(TICKETS):  # changes made while the collector is down
            clear(store, f"t{i}", 100.0 + i)
            fire(store, f"t{i}", 200.0 + i)  # recurs: reopened
        for srv in (hook, jira):
            srv.mode = "ok"
        collector = start(tmp_path, mosquitto.port, hook, jira, 2)
        for i in range(TICKETS):
            clear(store, f"t{i}", 300.0 + i)  # and while it runs again
        wait_for(lambda: q.counts() == {"hook": {"delivered": 4 * TICKETS},
                                        "jira": {"delivered": 4 * TICKETS}}, timeout=30)
    finally:
        collector.stop()
        store.engine.dispose()
        hook.stop()
        jira.stop()
    assert receiver.actions() == {f"fw-{i}": ["open", "resolve", "reopen", "resolve"]
                                  for i in range(1, TICKETS + 1)}
    assert len(ji.issues) == TICKETS
    assert all(i["status"] == "Done" and len(i["comments"]) == 3 for i in ji.issues.values())
