"""Faults of the store made real: a private PostgreSQL database that refuses connections, and
a small file system that fills up (tmpfs, mounted as root)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL


class SmallDisk:
    """A tmpfs of `size` bytes at `path`; `fill()` takes all its free space, `free()` gives it
    back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        # unbuffered: a buffered file would raise ENOSPC again when it is closed
        with open(self.filler, "ab", buffering=0) as f:
            for size in (1 << 20, 65536, 4096, 512):  # big pieces, then the last few bytes
                while True:  # bounded: the file system is small
                    try:
                        if f.write(b"\0" * size) < size:
                            continue  # a short write: the next one says ENOSPC
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str = "16m") -> Iterator[SmallDisk]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


class Outage:
    """Makes one private PostgreSQL database refuse connections (the shared server keeps
    running for everyone else): ALLOW_CONNECTIONS false and its sessions terminated."""

    def __init__(self, url: str) -> None:
        self.name = url.rsplit("/", 1)[1]
        self.admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")

    def begin(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 f"WHERE datname = '{self.name}'")

    def end(self) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def close(self) -> None:
        self.end()
        self.admin.dispose()


@contextlib.contextmanager
def outage_of(url: str) -> Iterator[Outage]:
    out = Outage(url)
    try:
        yield out
    finally:
        out.close()


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
