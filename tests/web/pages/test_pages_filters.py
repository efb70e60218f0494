"""The queue's filters and search: parsing query parameters, and the SQL (queries.where) keeping
exactly the rows the pure `matches` keeps — on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import tickets
from fieldwatch.collector.web.pages import filters, queries
from fieldwatch.collector.web.pages.filters import Filters, matches, parse, query_string
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PG_URL


def test_defaults() -> None:
    f, problems = parse({})
    assert f == Filters() and problems == []
    assert f.states == ("open", "acknowledged", "in_progress", "reopened") and f.only_open


@pytest.mark.parametrize(("params", "problem"), [
    ({"priority": "P9"}, "priority"), ({"state": "gone"}, "state"), ({"page": "0"}, "page"),
    ({"page": "x"}, "page"), ({"page": "99999999"}, "page"), ({"site": "s" * 129}, "site"),
    ({"q": "a\x00b"}, "q"),
])
def test_a_bad_value_is_named_and_dropped(params: dict[str, str], problem: str) -> None:
    f, problems = parse(params)
    assert len(problems) == 1 and problems[0].startswith(problem)
    assert f == Filters()


def test_values_are_trimmed_and_blank_ones_ignored() -> None:
    f, problems = parse({"site": "  hq ", "team": "", "q": "  fan noise ", "state": "closed",
                         "page": "3"})
    assert problems == []
    assert (f.site, f.team, f.q, f.state, f.page) == ("hq", None, "fan noise", "closed", 3)
    assert not f.only_open and f.words() == ["fan", "noise"]


@pytest.mark.parametrize(("q", "tid"), [("#12", 12), ("12", 12), (" #7 ", 7), ("1a", None),
                                        ("#", None), ("１２", None), ("12345678901", None)])
def test_a_search_naming_a_ticket_id(q: str, tid: int | None) -> None:
    f, _ = parse({"q": q})
    assert f.ticket_id() == tid
    assert f.words() == ([] if tid is not None else q.split())


def test_links_keep_the_filters() -> None:
    f, _ = parse({"site": "hq", "assignee": "-", "q": "风扇 noise", "state": "all", "page": "4"})
    again, problems = parse(dict(parse_qsl(query_string(f, page=5)[1:])))
    assert problems == [] and again == Filters("hq", None, None, "all", "-", "风扇 noise", 5)
    assert query_string(Filters()) == "?"
    assert "page" not in query_string(f)  # a new filter starts on page 1


# -- the SQL keeps what `matches` keeps ------------------------------------------------------------

SITES, TEAMS, PEOPLE = ["hq", "branch", "a_b"], ["desk", "hardware", None], ["dana", "eli", None]
TITLES = ["Fan noise", "风扇噪音 on printer", "Disk 100% full", "paper_jam", "UPS on battery"]
STATES = ["open", "acknowledged", "in_progress", "resolved", "closed", "reopened"]


def rows() -> Iterator[dict[str, object]]:
    combos = itertools.product(SITES, TEAMS, PEOPLE, ["P1", "P2", "P3"])
    for i, (site, team, who, prio) in enumerate(combos, 1):
        yield {"id": i, "fingerprint": f"f{i}", "rule": "r", "site": site,
               "device": f"dev-{i % 7}", "labels": {}, "severity": "P3",
               "priority": prio if i % 5 else None, "state": STATES[i % len(STATES)],
               "title": TITLES[i % len(TITLES)], "description": "line\nDEV_X" if i % 4 else "",
               "team": team, "opened_at": float(i), "updated_at": float(i), "last_seen": 0.0,
               "assignee": who, "customer": "Mrs Wu 555" if i % 3 == 0 else None}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[sa.Engine, list[dict[str, object]]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('filters') / 'f.db'}"
        engine = open_engine(url)
        yield from _fill(engine)
    else:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        name = f"fw_test_{uuid.uuid4().hex[:12]}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError:
            if os.environ.get("CI"):
                raise
            pytest.skip("PostgreSQL not reachable")
        engine = open_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
        yield from _fill(engine)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fill(engine: sa.Engine) -> Iterator[tuple[sa.Engine, list[dict[str, object]]]]:
    data = list(rows())
    with engine.begin() as conn:
        conn.execute(tickets.insert(), data)
    yield engine, data
    engine.dispose()


WORDS = st.sampled_from(["fan", "FAN", "风扇", "100%", "_", "paper_jam", "dev-3", "mrs", "dev_x",
                         "printer", "zzz", "\\", "UPS"])
FILTERS = st.builds(
    Filters, site=st.sampled_from([None, *SITES]),
    team=st.sampled_from([None, "desk", "hardware"]),
    priority=st.sampled_from([None, "P1", "P2", "P3"]),
    state=st.sampled_from(filters.STATE_CHOICES),
    assignee=st.sampled_from([None, "-", "dana", "eli"]),
    q=st.one_of(st.none(), st.lists(WORDS, min_size=1, max_size=2).map(" ".join),
                st.sampled_from(["#5", "17", "#999"])))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=FILTERS, scoped=st.sampled_from([None, frozenset({"hq"}), frozenset({"branch", "a_b"})]))
def test_sql_keeps_what_matches_keeps(filled: tuple[sa.Engine, list[dict[str, object]]],
                                      f: Filters, scoped: frozenset[str] | None) -> None:
    engine, data = filled
    with engine.connect() as conn:
        got = sorted(conn.execute(sa.select(tickets.c.id).where(
            *queries.where(f, scoped))).scalars())
    want = sorted(int(t["id"]) for t in data  # type: ignore[call-overload]
                  if matches(f, t) and (scoped is None or t["site"] in scoped))
    assert got == want
