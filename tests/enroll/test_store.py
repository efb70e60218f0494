"""Enrollment tokens in a real database (SQLite and PostgreSQL): stored hashed, single use
even when raced, expiring on the injected clock, every refusal audited; and the ACL a device
gets, worked out from its names."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from fieldwatch.collector.enroll.acl import DeviceAcl, Target, check_name, parse_targets
from fieldwatch.collector.enroll.store import EnrollStore, tokens
from fieldwatch.collector.enroll.tokens import token_hash
from fieldwatch.collector.store.db import open_engine
from hypothesis import given
from hypothesis import strategies as st

from fieldwatch.clock import FakeClock
from fieldwatch.errors import EnrollmentRefused


@pytest.fixture
def es(db_url_any: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    engine = open_engine(db_url_any)
    yield EnrollStore(engine, clock)
    engine.dispose()


ACL = DeviceAcl("hq", "web-01")


def refusals(es: EnrollStore) -> list[tuple[str, str | None]]:
    return [(r["reason"], r["device"]) for r in es.audit_log() if r["event"] == "refused"]


def test_a_token_is_stored_hashed_and_spent_once(es: EnrollStore) -> None:
    token = es.issue(ACL, ttl=3600)
    with es.engine.connect() as c:
        stored = c.execute(sa.select(tokens.c.token_hash)).scalars().all()
    assert stored == [token_hash(token)] and token not in stored[0]
    grant = es.spend(token, "192.0.2.1")
    assert grant.acl == ACL
    with pytest.raises(EnrollmentRefused) as exc:
        es.spend(token, "192.0.2.1")
    assert exc.value.reason == "used"
    assert refusals(es) == [("used", "web-01")]


def test_an_expired_or_forged_token_is_refused_and_audited(es: EnrollStore,
                                                           clock: FakeClock) -> None:
    token = es.issue(ACL, ttl=60)
    clock.advance(60)
    with pytest.raises(EnrollmentRefused, match="expired"):
        es.spend(token, "192.0.2.2")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(EnrollmentRefused, match="forged"):
        es.spend(forged, "192.0.2.3")
    assert refusals(es) == [("forged", None), ("expired", "web-01")]
    addresses = [r["address"] for r in es.audit_log() if r["event"] == "refused"]
    assert addresses == ["192.0.2.3", "192.0.2.2"]


def test_a_token_raced_by_eight_threads_is_spent_once(es: EnrollStore) -> None:
    token = es.issue(ACL, ttl=3600)
    won: list[int] = []
    lost: list[str] = []
    start = threading.Barrier(8)

    def go(i: int) -> None:
        start.wait()
        try:
            es.spend(token, f"192.0.2.{i}")
            won.append(i)
        except EnrollmentRefused as exc:
            lost.append(exc.reason)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1 and lost == ["used"] * 7


def test_identities_take_the_next_generation_and_rotation_expires_the_old(
        es: EnrollStore, clock: FakeClock) -> None:
    first = es.add_identity(ACL, "a")
    second = es.add_identity(ACL, "a")
    assert (first, second) == ("hq/web-01~1", "hq/web-01~2")
    assert es.expire_others("hq", "web-01", second, clock.now() + 60) == [first]
    assert es.due() == []
    clock.advance(60)
    assert es.due() == [(first, "hq", "web-01")]
    es.retired([first], "rotated_out")
    assert es.active("hq", "web-01") == [second]


def test_the_acl_lists_own_topics_and_the_declared_targets_only() -> None:
    acl = DeviceAcl("hq", "poller-1", parse_targets("core-sw-1, plant/ups-1,core-sw-1", "hq"))
    assert acl.targets == (Target("hq", "core-sw-1"), Target("plant", "ups-1"))
    pub = acl.publish()
    assert "fieldwatch/v1/hq/poller-1/status" in pub
    assert "fieldwatch/v1/plant/ups-1/metrics" in pub
    assert "fieldwatch/v1/hq/core-sw-1/status" not in pub  # a target's status is its poller's
    assert not any("+" in t or "#" in t for t in pub)
    assert acl.subscribe() == ("fieldwatch/v1/hq/poller-1/diag/req",)
    for bad in ("a/b/c", "+", "#", "x y", "hq/"):
        with pytest.raises(ValueError):
            parse_targets(bad, "hq")
    for name in ("web-01\n", "-x", "a" * 65, "web/01"):
        with pytest.raises(ValueError):
            check_name("device", name)


@given(st.text(max_size=80))
def test_parsed_targets_are_always_single_topic_levels(text: str) -> None:
    """Whatever an operator types after --targets: either refused, or targets whose names are
    one topic level each, so no ACL entry can be widened by a wildcard or an extra level."""
    try:
        targets = parse_targets(text, "hq")
    except ValueError:
        return
    for t in targets:
        for name in (t.site, t.device):
            assert name and not set(name) & set("/+#\x00 ,")
    acl = DeviceAcl("hq", "poller-1", targets)
    assert all(len(topic.split("/")) in (5, 6) for topic in acl.publish())
