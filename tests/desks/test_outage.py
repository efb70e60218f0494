"""A desk that is down (refused, then 503, then taking requests but never answering) and comes
back: every change delivered exactly once, in order per ticket."""

from __future__ import annotations

import httpx
from fieldwatch.collector.desks import jira, outbox, webhook
from fieldwatch.collector.desks.config import RetryPolicy, WebhookDesk
from fieldwatch.collector.store.store import Store

from fieldwatch.clock import SystemClock
from tests.desks import emulators as emu
from tests.desks.helpers import clear, fire
from tests.desks.server import DeskServer, wait_for

TICKETS = 12
FAST = RetryPolicy(base=0.05, factor=2.0, max_delay=0.3, jitter=0.5)


def test_outage_then_recovery_delivers_everything_once_in_order(store: Store) -> None:
    receiver, ji = emu.WebhookReceiver(b"k"), emu.JiraEmu("bot", "t")
    hook_srv, jira_srv = DeskServer(receiver, 0.8).start(), DeskServer(ji, 0.8).start()
    client = httpx.Client(timeout=0.25)
    outbox.register_desks(store.engine, "fw", [
        WebhookDesk(type="webhook", name=n, url="http://127.0.0.1:9/") for n in ("hook", "jira")],
        0.0)
    desks = {"hook": webhook.Webhook("hook", client, hook_srv.url + "/hook", b"k"),
             "jira": jira.Jira("jira", client, jira.JiraApi(
                 jira_srv.url, jira.auth_header("bot", "t"), "OPS", "Task"), "Done", "Reopen")}
    worker = outbox.Worker(store.engine, desks, SystemClock(), FAST, concurrency=4, poll=0.02)
    try:
        for srv in (hook_srv, jira_srv):
            srv.stop()  # connection refused
        worker.start()
        for i in range(TICKETS // 2):
            fire(store, f"t{i}", float(i))
        wait_for(lambda: store_attempts(store) >= TICKETS)  # tried and refused
        for srv in (hook_srv, jira_srv):
            srv.mode = "503"
            srv.start()
        for i in range(TICKETS // 2, TICKETS - 2):
            fire(store, f"t{i}", float(i))
        wait_for(lambda: len(hook_srv.seen) >= 4 and len(jira_srv.seen) >= 4)
        for srv in (hook_srv, jira_srv):
            srv.mode = "hang"  # the desk acts, the answer is lost
        for i in range(TICKETS - 2, TICKETS):
            fire(store, f"t{i}", float(i))  # first tried now: a create that lands unanswered
        wait_for(lambda: len(ji.issues) >= 2)
        for i in range(TICKETS):  # resolved, recurs (reopened), resolved again
            clear(store, f"t{i}", 100.0 + i)
            fire(store, f"t{i}", 200.0 + i)
            clear(store, f"t{i}", 300.0 + i)
        for srv in (hook_srv, jira_srv):
            srv.mode = "ok"
        q = outbox.Queue(store.engine)
        wait_for(lambda: q.counts() == {"hook": {"delivered": 4 * TICKETS},
                                        "jira": {"delivered": 4 * TICKETS}}, timeout=30)
    finally:
        worker.stop()
        client.close()
        hook_srv.stop()
        jira_srv.stop()
    assert receiver.actions() == {f"fw-{i}": ["open", "resolve", "reopen", "resolve"]
                                  for i in range(1, TICKETS + 1)}
    assert len(ji.issues) == TICKETS  # one issue per ticket despite lost answers
    labels = sorted(i["fields"]["labels"][1] for i in ji.issues.values())
    assert labels == sorted(f"fw-{i}" for i in range(1, TICKETS + 1))
    # lost answers were followed by look-ups, not by second creates
    assert any(r.path == "/rest/api/2/search" for r in jira_srv.seen)
    for issue in ji.issues.values():
        assert issue["status"] == "Done"
        # resolution, reopen, resolution: each note once, in order
        assert [c.split(" by ")[0] for c in issue["comments"]] == [
            "Ticket resolved", "Ticket reopened", "Ticket resolved"]


def store_attempts(store: Store) -> int:
    return sum(int(r["attempts"]) for r in outbox.Queue(store.engine).list(None))
