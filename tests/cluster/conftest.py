"""One private 3-node RabbitMQ cluster per test module (it takes ~25 s to start)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.rabbit import RabbitCluster, installed


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    if not installed():
        if os.environ.get("CI"):
            pytest.fail("rabbitmq-server is not installed; .ci/run must install it")
        pytest.skip("rabbitmq-server not installed (apt-get install rabbitmq-server)")
    pytest.importorskip("pika")
    cluster = RabbitCluster(Path(tmp_path_factory.mktemp("rabbit")), size=3).start()
    yield cluster
    cluster.stop()
