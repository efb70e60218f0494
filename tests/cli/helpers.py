"""Running the real CLI: in-process through `main` (fast) or as a subprocess (exit codes,
pipes, imports), and a data directory seeded the way `fieldwatch up` leaves one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fieldwatch.collector.store.db import open_engine
from fieldwatch.collector.store.schema import devices

from fieldwatch.cli import main

FIELDWATCH = [sys.executable, "-m", "fieldwatch.cli"]
INVENTORY = {"hostname": "pump-1", "os": "Linux", "kernel": "6.1.0", "arch": "x86_64",
             "cpu_model": "Atom", "cpu_cores": 2, "cpu_threads": 4, "ram_bytes": 4 * 2**30,
             "boot_time": 1_790_000_000, "distro": {"pretty_name": "Debian 12", "id": "debian"},
             "disks": [{"name": "sda", "bytes": 64 * 2**30, "rotational": False}],
             "nics": {"eth0": "02:00:00:00:00:01"}, "serial": None}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def cli(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        **kw: object) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "FIELDWATCH_DATA"}
    return subprocess.run([*FIELDWATCH, *argv], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**clean, **(env or {})}, **kw)  # type: ignore[call-overload]


def seed_data_dir(data: Path) -> Path:
    """A data directory with a database, one device with an inventory; tickets via the CLI."""
    data.mkdir(parents=True, exist_ok=True)
    engine = open_engine(f"sqlite:///{data / 'fieldwatch.db'}")
    with engine.begin() as conn:
        conn.execute(sa.insert(devices).values(
            site="plant", device="pump-1", first_seen=1_790_000_000.0,
            last_seen=1_790_000_600.0, status="online", status_cause="", last_seq=7,
            messages_total=7, agent="0.1.0", inventory=INVENTORY, seq_missing=0,
            seq_backfilled=0, seq_duplicates=0))
    engine.dispose()
    return data
