"""Benchmarks reuse the test suite's private Mosquitto (repo root on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import Mosquitto  # noqa: E402

__all__ = ["Mosquitto"]
