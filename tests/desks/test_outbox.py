"""The outbox: rows written with the ticket change, delivered in order per ticket, retried with
backoff, dead-lettered on 4xx, made exactly-once after unclear failures."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from fieldwatch.collector.desks import jira, outbox, webhook
from fieldwatch.collector.desks.config import RetryPolicy, WebhookDesk
from fieldwatch.collector.desks.model import Change
from fieldwatch.collector.store.schema import outbox as outbox_table
from fieldwatch.collector.store.store import BatchWrite, Store
from fieldwatch.collector.telemetry.stats import Stats
from fieldwatch.collector.tickets.alerts import TicketChange
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock
from fieldwatch.errors import DeskRejected, DeskUnavailable
from tests.desks import emulators as emu
from tests.desks.helpers import alert, clear, fire
from tests.desks.server import DeskServer

POLICY = RetryPolicy(base=1.0, factor=2.0, max_delay=60.0, jitter=0.5)


def register(store: Store, *names: str, **kw: object) -> None:
    outbox.register_desks(store.engine, "fw", [
        WebhookDesk(type="webhook", name=n, url="http://127.0.0.1:9/", **kw)  # type: ignore[arg-type]
        for n in names], 0.0)


@pytest.fixture
def hook() -> Iterator[tuple[emu.WebhookReceiver, DeskServer, httpx.Client]]:
    receiver = emu.WebhookReceiver(b"k")
    server = DeskServer(receiver, hang_for=0.6).start()
    client = httpx.Client(timeout=0.3)
    yield receiver, server, client
    client.close()
    server.stop()


def rows(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(outbox_table).order_by(outbox_table.c.id)).mappings()]


def test_changes_fan_out_to_registered_desks_in_the_same_transaction(store: Store) -> None:
    fire(store, "a", 10.0)
    assert rows(store) == []  # no desk registered: nothing queued
    register(store, "hook", "pd")
    fire(store, "b", 11.0)
    clear(store, "b", 12.0)
    queued = rows(store)
    assert [(r["desk"], r["action"]) for r in queued] == [
        ("hook", "open"), ("pd", "open"), ("hook", "resolve"), ("pd", "resolve")]
    assert queued[0]["payload"]["reference"] == f"fw-{queued[0]['ticket_id']}"  # type: ignore[index]
    assert queued[0]["change_key"] != queued[2]["change_key"]
    # a change rolled back takes its outbox rows with it
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        outbox.record(conn, int(queued[0]["ticket_id"]), 999, 13.0, "alice",  # type: ignore[arg-type]
                      "comment", "rolled back")
        raise RuntimeError("abort")
    assert len(rows(store)) == 4


def test_desk_filters_on_actions_and_teams(store: Store) -> None:
    register(store, "only-resolve", actions=["resolve"])
    register(store, "other-team", teams=["network"])
    outbox.register_desks(store.engine, "fw", [
        WebhookDesk(type="webhook", name="only-resolve", url="http://x/", actions=["resolve"]),
        WebhookDesk(type="webhook", name="other-team", url="http://x/", teams=["network"]),
    ], 0.0)
    fire(store, "c", 1.0)
    clear(store, "c", 2.0)
    assert [(r["desk"], r["action"]) for r in rows(store)] == [("only-resolve", "resolve")]


def test_worker_delivers_in_order_with_backoff_and_exactly_once(
        store: Store, hook: tuple[emu.WebhookReceiver, DeskServer, httpx.Client]) -> None:
    receiver, server, client = hook
    register(store, "hook")
    clock = FakeClock(1000.0)
    worker = outbox.Worker(store.engine, {"hook": webhook.Webhook(
        "hook", client, server.url + "/hook", b"k")}, clock, POLICY, concurrency=1,
        rand=lambda: 0.0)
    for fp in ("x", "y"):
        fire(store, fp, 1.0)
        clear(store, fp, 2.0)
    server.mode = "503"
    assert worker.run_once("hook") == 2  # one head per ticket
    assert worker.run_once("hook") == 0  # both wait 1 s
    clock.advance(1.0)
    assert worker.run_once("hook") == 2
    clock.advance(1.5)
    assert worker.run_once("hook") == 0  # second retry waits 2 s
    delays = {r["next_at"] - 1001.0 for r in rows(store) if r["state"] == "pending"
              and r["attempts"]}
    assert delays == {2.0}
    server.mode = "ok"
    clock.advance(1.0)
    for _ in range(5):
        worker.run_once("hook")
    assert [(e["reference"], e["action"]) for e in receiver.effects] == [
        ("fw-1", "open"), ("fw-2", "open"), ("fw-1", "resolve"), ("fw-2", "resolve")]
    assert {r["state"] for r in rows(store)} == {"delivered"}
    assert [link["external_id"] for link in outbox.Queue(store.engine).links(1)] == ["fw-1"]


def test_429_waits_for_retry_after(
        store: Store, hook: tuple[emu.WebhookReceiver, DeskServer, httpx.Client]) -> None:
    receiver, server, client = hook
    register(store, "hook")
    clock = FakeClock(500.0)
    worker = outbox.Worker(store.engine, {"hook": webhook.Webhook(
        "hook", client, server.url + "/hook", b"k")}, clock, POLICY, concurrency=1)
    fire(store, "r", 1.0)
    server.mode = "429"
    worker.run_once("hook")
    [row] = rows(store)
    assert row["next_at"] == 507.0 and "429" in str(row["last_error"])
    server.mode = "ok"
    clock.advance(6.9)
    assert worker.run_once("hook") == 0
    clock.advance(0.1)
    assert worker.run_once("hook") == 1
    assert len(receiver.effects) == 1


def test_rejection_is_a_dead_letter_that_holds_its_ticket_until_retried(
        store: Store, hook: tuple[emu.WebhookReceiver, DeskServer, httpx.Client]) -> None:
    receiver, server, client = hook
    register(store, "hook")
    clock = FakeClock(0.0)
    desk = webhook.Webhook("hook", client, server.url + "/hook", b"wrong")
    worker = outbox.Worker(store.engine, {"hook": desk}, clock, POLICY, concurrency=1)
    fire(store, "d", 1.0)
    clear(store, "d", 2.0)
    worker.run_once("hook")
    assert worker.run_once("hook") == 0  # the resolve waits behind the dead open
    q = outbox.Queue(store.engine)
    [dead] = q.list("dead")
    assert "401" in str(dead["last_error"]) and "bad signature" in str(dead["last_error"])
    desk.secret = b"k"  # the operator fixes the secret
    assert q.retry(clock.now(), desk="hook") == 1
    worker.run_once("hook")
    worker.run_once("hook")
    assert [e["action"] for e in receiver.effects] == ["open", "resolve"]
    assert q.counts() == {"hook": {"delivered": 2}}


def test_crash_between_send_and_record_makes_the_next_attempt_look_first(store: Store) -> None:
    ji = emu.JiraEmu("bot", "t")
    server = DeskServer(ji).start()
    client = httpx.Client(timeout=2)
    try:
        register(store, "jira")
        fire(store, "k", 1.0)
        q = outbox.Queue(store.engine)
        desk = jira.Jira("jira", client, jira.JiraApi(server.url, jira.auth_header("bot", "t"),
                                                      "OPS", "Task"), "Done", "Reopen")
        [item] = q.due("jira", 10.0)  # marks the row as being sent …
        desk.deliver(item.change)  # … the desk creates the issue, then the collector dies
        [again] = q.due("jira", 11.0)
        assert again.change.unclear
        receipt = desk.deliver(again.change)  # looks up by label instead of creating
        q.delivered(again, receipt, 12.0)
        assert len(ji.issues) == 1
        assert q.links(1)[0]["external_id"] == receipt.external_id
    finally:
        client.close()
        server.stop()


@given(st.integers(1, 40), st.floats(0, 0.999))
def test_backoff_grows_is_capped_and_jittered(attempts: int, u: float) -> None:
    d = outbox.backoff(attempts, POLICY, u)
    full = min(60.0, 2.0 ** (attempts - 1))
    assert full * 0.5 <= d <= full


def test_backoff_honours_retry_after_up_to_a_cap() -> None:
    assert outbox.backoff(3, POLICY, 0.3, retry_after=12.0) == 12.0
    assert outbox.backoff(3, POLICY, 0.3, retry_after=1e9) == POLICY.max_retry_after


def test_unclear_flag_sticks_until_delivered(store: Store) -> None:
    register(store, "hook")
    fire(store, "u", 1.0)
    q = outbox.Queue(store.engine)
    [item] = q.due("hook", 1.0)
    q.retry_later(item, DeskUnavailable("timed out", unclear=True), 2.0)
    [item] = q.due("hook", 2.0)
    q.retry_later(item, DeskUnavailable("refused"), 3.0)
    [item] = q.due("hook", 3.0)
    assert item.change.unclear and item.attempts == 2


def test_one_collector_at_a_time_delivers_to_a_desk(store: Store) -> None:
    q = outbox.Queue(store.engine)
    assert q.lease("hook", "collector-a", 100.0, 30.0)
    assert not q.lease("hook", "collector-b", 110.0, 30.0)  # a holds it
    assert q.lease("hook", "collector-a", 120.0, 30.0)  # a renews
    assert q.lease("hook", "collector-b", 151.0, 30.0)  # a went quiet: b takes over
    q.release("hook", "collector-b")
    assert q.lease("hook", "collector-a", 152.0, 30.0)  # released: at once


def test_worker_without_the_lease_sends_nothing(store: Store) -> None:
    register(store, "hook")
    fire(store, "l", 1.0)
    outbox.Queue(store.engine).lease("hook", "other", 0.0, 1e9)
    sent: list[str] = []

    class Desk:
        name = "hook"

        def deliver(self, change: object) -> outbox.Receipt:
            sent.append("x")
            return outbox.Receipt()

    worker = outbox.Worker(store.engine, {"hook": Desk()}, FakeClock(5.0), POLICY, owner="me")
    assert worker.run_once("hook") == 0 and sent == []


def test_delivered_rows_are_pruned_after_keep_delivered(
        store: Store, hook: tuple[emu.WebhookReceiver, DeskServer, httpx.Client]) -> None:
    receiver, server, client = hook
    register(store, "hook")
    fire(store, "p", 1.0)
    worker = outbox.Worker(store.engine, {"hook": webhook.Webhook(
        "hook", client, server.url + "/hook", b"k")}, FakeClock(100.0), POLICY)
    worker.run_once("hook")
    q = outbox.Queue(store.engine)
    assert q.prune(50.0) == 0 and q.prune(101.0) == 1 and q.counts() == {}


def test_external_ids_show_on_the_ticket(store: Store) -> None:
    register(store, "jira")
    fire(store, "s", 1.0)
    q = outbox.Queue(store.engine)
    [item] = q.due("jira", 2.0)
    q.delivered(item, outbox.Receipt(external_id="OPS-7", url="http://jira/browse/OPS-7"), 3.0)
    assert outbox.external_tickets(store.engine, item.ticket_id) == {
        "jira": {"external_id": "OPS-7", "url": "http://jira/browse/OPS-7"}}


class Picky:
    """A desk that fails on some tickets by their title: a bug (RuntimeError), a rejection
    whose text carries a NUL, an external id longer than the column that keeps it."""

    name = "picky"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def deliver(self, change: Change) -> outbox.Receipt:
        self.sent.append(change.key)
        title = str(change.ticket["title"])
        if "bug" in title:
            raise RuntimeError("cannot build the request")
        if "reject" in title:
            raise DeskRejected("HTTP 422: field\x00 refused")
        if "long-id" in title:
            return outbox.Receipt(external_id="X" * 300)
        return outbox.Receipt(external_id=f"EXT-{change.ticket['id']}", detail="ok\x00")


def test_a_failing_item_is_settled_alone_and_never_resends_its_neighbours(store: Store) -> None:
    register(store, "picky")
    for fp, title in [("a", "fine a"), ("b", "bug"), ("c", "fine c"), ("d", "reject"),
                      ("e", "long-id"), ("f", "fine f")]:
        store.write(BatchWrite(changes=[_titled(fp, title)]), 1.0)
    desk = Picky()
    stats = Stats()
    worker = outbox.Worker(store.engine, {"picky": desk}, FakeClock(5.0), POLICY, stats=stats,
                           concurrency=4)
    assert worker.run_once("picky") == 6  # one round: all six in flight together
    for _ in range(3):
        worker.run_once("picky")
    assert sorted(Counter(desk.sent).values()) == [1] * 6  # nobody sent twice
    by_title = {r["payload"]["ticket"]["title"]: r for r in rows(store)}  # type: ignore[index]
    assert {t: r["state"] for t, r in by_title.items()} == {
        "fine a": "delivered", "fine c": "delivered", "fine f": "delivered",
        "bug": "dead", "reject": "dead",
        # the database decides: PostgreSQL refuses 300 characters in desk_links.external_id
        "long-id": "delivered" if store.engine.dialect.name == "sqlite" else "dead"}
    assert "RuntimeError: cannot build the request" in str(by_title["bug"]["last_error"])
    assert by_title["reject"]["last_error"] == "HTTP 422: field refused"
    assert all(r["sending_since"] is None for r in by_title.values())
    if store.engine.dialect.name != "sqlite":
        long_id = by_title["long-id"]
        assert "could not be recorded" in str(long_id["last_error"]) and long_id["unclear"]
        assert "XXXX" not in str(long_id["last_error"])  # not the statement's parameters
    assert stats.get("outbox_unexpected_total", "picky") == 1
    assert stats.get("outbox_dead_total", "picky") == (2 if store.engine.dialect.name == "sqlite"
                                                       else 3)
    assert stats.get("outbox_delivered_total", "picky") == 4


def _titled(fp: str, title: str) -> TicketChange:
    return dataclasses.replace(alert("fire", fp, 1.0), title=title)
