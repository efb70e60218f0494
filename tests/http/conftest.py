"""The HTTP tests are about the HTTP layer: one SQLite store is enough (the stores' own tests
run both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(open_engine(f"sqlite:///{tmp_path / 'fieldwatch.db'}"))
    yield s
    s.engine.dispose()
