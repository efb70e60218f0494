"""The ticket store on SQLite and PostgreSQL: one open ticket per fingerprint, timeline."""

import sqlalchemy as sa
from fieldwatch.collector.ingest import Received
from fieldwatch.collector.pipeline import prepare
from fieldwatch.collector.rules.engine import Engine, EngineState
from fieldwatch.collector.rules.loader import rules_from_text
from fieldwatch.collector.rules.model import RuleSet
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store

from fieldwatch.wire import Metrics, Sample, Status, encode

RULES = """
rules:
  - {name: hot, metric: temp.celsius, when: value > 80, clear: value < 70, severity: P1,
     ticket: {title: "{labels.sensor} on {device} at {value}", team: hw}}
"""


def received(msg, at: float) -> Received:
    return Received(msg, encode(msg), at)


def metrics(device: str, seq: int, ts: float, value: float, sensor: str = "cpu") -> Metrics:
    return Metrics(device=device, site="hq", seq=seq, ts=ts, agent="t",
                   samples=[Sample("temp.celsius", value, {"sensor": sensor})])


def feed(store: Store, engine: Engine, state: EngineState, msgs: list, now: float) -> list[int]:
    return store.write(prepare([received(m, now) for m in msgs], engine, state), now)


def test_one_ticket_per_fingerprint_repeats_update_clear_resolves(store: Store) -> None:
    engine, state = Engine(RuleSet(tuple(rules_from_text(RULES)))), EngineState()
    opened = feed(store, engine, state, [metrics("a", 1, 10, 85.5)], 11)
    assert len(opened) == 1
    feed(store, engine, state, [metrics("a", s, 10 + s, 90 + s) for s in range(2, 6)], 20)
    feed(store, engine, state, [metrics("b", 1, 30, 99, sensor="psu")], 31)
    tickets = {t["device"]: t for t in store.list_tickets()}
    assert set(tickets) == {"a", "b"}
    a = tickets["a"]
    assert (a["state"], a["occurrences"], a["last_value"], a["last_seen"]) == ("open", 5, 95, 15)
    assert a["title"] == "cpu on a at 85.5" and a["team"] == "hw" and a["severity"] == "P1"
    assert a["labels"] == {"sensor": "cpu"}

    feed(store, engine, state, [metrics("a", 6, 40, 75), metrics("a", 7, 50, 60)], 51)
    a = {t["device"]: t for t in store.list_tickets()}["a"]
    assert (a["state"], a["resolved_at"]) == ("resolved", 50)
    assert [e["kind"] for e in store.timeline(a["id"])] == ["opened", "resolved"]

    # back inside the verification window: the same ticket reopens and counts a recurrence
    feed(store, engine, state, [metrics("a", 8, 60, 81)], 61)
    [a] = [t for t in store.list_tickets() if t["device"] == "a"]
    assert (a["state"], a["recurrences"], a["reopen_count"]) == ("reopened", 1, 1)
    assert len(store.list_tickets("open")) == 2


def test_database_refuses_a_second_open_ticket(store: Store) -> None:
    engine = Engine(RuleSet(tuple(rules_from_text(RULES))))
    # Two collectors with separate alert state fire the same fault.
    feed(store, engine, EngineState(), [metrics("a", 1, 10, 85)], 11)
    assert feed(store, engine, EngineState(), [metrics("a", 2, 12, 86)], 13) == []
    [ticket] = store.list_tickets()
    assert ticket["occurrences"] == 2
    assert [e["kind"] for e in store.timeline(ticket["id"])] == ["opened", "refired"]


def test_devices_registry_tracks_seen_seq_and_status(store: Store) -> None:
    engine = Engine(RuleSet())
    feed(store, engine, EngineState(), [metrics("a", 7, 10, 1), metrics("a", 8, 20, 1)], 21)
    lwt = Status(device="a", site="hq", state="offline", cause="lost")
    store.write(prepare([received(lwt, 30)], engine, EngineState()), 30)
    [dev] = store.list_devices()
    assert (dev["first_seen"], dev["last_seen"], dev["last_seq"]) == (21, 30, 8)
    assert (dev["status"], dev["status_cause"], dev["status_at"]) == ("offline", "lost", 30)
    assert dev["messages_total"] == 3
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from messages")).scalar() == 2


def test_reopening_an_existing_database_keeps_data(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    store = Store(open_engine(url))
    feed(store, Engine(RuleSet(tuple(rules_from_text(RULES)))), EngineState(),
         [metrics("a", 1, 10, 85)], 11)
    store.engine.dispose()
    again = Store(open_engine(url))
    assert len(again.list_tickets()) == 1
    again.engine.dispose()
