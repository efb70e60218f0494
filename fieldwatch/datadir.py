"""The data directory of `fieldwatch up` is its owner's alone: tickets, tokens and keys live
there. The directory 0700, files 0600 — also those made later (SQLite's -wal and -shm, tokens,
the agent's buffer), which the process umask sees to."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

# What `fieldwatch up` writes in its data directory; only these are tightened when they exist
# already (from an older version), so `--data` pointed at a shared folder changes nothing else.
OWN = ("fieldwatch.db", "fieldwatch.db-wal", "fieldwatch.db-shm", "fieldwatch.db-journal",
       "api-token", "alertmanager-token", "mqtt-port", "keys", "agent", "admin-password")


def _tighten(path: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def make_private(path: Path, own: Iterable[str] = OWN) -> None:
    """Create `path` (0700), take group and other bits off the entries named `own` already in
    it (whole trees for directories), and set the umask to 077 for what this process makes."""
    os.umask(0o077)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    for name in own:
        top = path / name
        if not top.exists() or top.is_symlink():
            continue
        _tighten(str(top))
        for root, dirs, files in os.walk(top):  # does not follow symlinked directories
            for entry in dirs + files:
                _tighten(os.path.join(root, entry))
