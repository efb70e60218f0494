"""Fixtures: a ServiceDesk over a real store (SQLite and PostgreSQL) with a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fieldwatch.collector.notify.notifier import Notification
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store
from fieldwatch.collector.tickets.service_desk import ServiceDesk

from fieldwatch.clock import FakeClock
from tests.tickets.helpers import berlin, desk_policy


class Inbox:
    """A Notifier that keeps what it is given (the webhook one is tested on a real server)."""

    def __init__(self) -> None:
        self.got: list[Notification] = []

    def notify(self, n: Notification) -> None:
        self.got.append(n)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def desk(db_url_any: str, inbox: Inbox) -> Iterator[ServiceDesk]:
    store = Store(open_engine(db_url_any), desk_policy())
    yield ServiceDesk(store, FakeClock(berlin(2026, 12, 31, 16)), inbox)
    store.engine.dispose()
