"""The outage buffer's files: one directory of segments `<first id>.log` (format in
`buffer_log`), the newest one appended to.

Each record goes out in one os.write and is fsynced before `put` returns. A new segment, and a
rewritten one, is written aside as `.tmp`, fsynced and renamed in, so a crash leaves either the
old file or the whole new one (a leftover `.tmp` is deleted at the next start). A torn last
record, found at start, is cut off.

The files' total size is kept within `limit`: a write that would not fit is refused (False),
and a full disk lowers `limit` to what is on disk now (DiskFull); the caller decides what to
drop. Transient copies count: a segment being written aside is part of the total.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from fieldwatch.agent.buffer_index import Segment, State
from fieldwatch.agent.buffer_log import Record, frame

try:
    import fcntl
except ImportError:  # Windows: no lock against a second agent on the same directory
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class DiskFull(Exception):
    """The disk is full; `limit` now is what is on disk."""


class Journal:
    """Not thread-safe: the buffer's lock covers every call."""

    def __init__(self, path: Path, limit: int, segment_size: int) -> None:
        self.path, self.limit, self.segment_size = path, limit, segment_size
        self._dirlock = _lock_directory(path)
        try:
            for stale in path.glob("*.tmp"):
                stale.unlink()
            self.st = State.load(path)
        except BaseException:
            os.close(self._dirlock)
            raise
        for bad in self.st.bad:
            log.error("outage buffer: %s has no intact checkpoint; deleted", bad)
            bad.unlink()
        self.total = sum(seg.size for seg in self.st.segs)  # bytes on disk
        self.ckpt_len = 0  # the newest checkpoint's frame
        self._wfd = -1
        if self.st.segs:
            self._reopen()
        else:
            self.rotate(first=True)

    def _reopen(self) -> None:
        seg = self.st.segs[-1]
        self.ckpt_len = seg.head_len
        self._wfd = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
        if self.st.torn:
            log.warning("outage buffer: ignored a torn last record (%d bytes) in %s",
                        self.st.torn, seg.path)
            os.ftruncate(self._wfd, seg.size - self.st.torn)
            seg.size -= self.st.torn
            self.total -= self.st.torn
        os.fsync(self._wfd)
        self.reap()

    def put(self, rec: Record, data: bytes) -> bool:
        """Append `rec` (framed: `data`) to the newest segment and apply it to the state."""
        if self.total + len(data) > self.limit:
            return False
        seg = self.st.segs[-1]
        off = seg.size
        try:
            _write_all(self._wfd, data)
            os.fsync(self._wfd)
        except OSError as exc:
            os.ftruncate(self._wfd, off)
            self._full(exc)
            raise DiskFull from None
        seg.size += len(data)
        self.total += len(data)
        self.st.apply(rec, seg, off, len(data))
        return True

    def should_rotate(self, n: int) -> bool:
        """Whether `n` more bytes belong in a new segment (only after at least one message)."""
        seg = self.st.segs[-1]
        return seg.size + n > self.segment_size and self.st.last_id >= seg.name

    def rotation_cost(self, n: int) -> int:
        return len(frame(self.st.checkpoint())) if self.should_rotate(n) else 0

    def rotate(self, first: bool = False) -> bool:
        """Start a new newest segment with a checkpoint of the state as it is."""
        data = frame(self.st.checkpoint())
        if self.total + len(data) > self.limit and not first:
            return False
        name = self.st.last_id + 1
        path = self.path / f"{name:020d}.log"
        try:
            _rename_in(_write_aside(path, [data]), path)
        except OSError as exc:
            if first:
                raise
            self._full(exc)
            return False
        if self._wfd >= 0:
            os.close(self._wfd)
        self._wfd = os.open(path, os.O_WRONLY | os.O_APPEND)
        seg = Segment(name, path)
        seg.head_len = self.ckpt_len = len(data)
        self.st.add_segment(seg)
        self.total += len(data)
        self.reap()  # the old newest segment may have nothing queued any more
        return True

    def compact(self, seg: Segment) -> bool:
        """Rewrite an older segment that is at least half dead space with its checkpoint and
        queued messages alone (after a drop: the ones left in MQTT's hands)."""
        keep = list(seg.live_at())
        size = seg.head_len + sum(seg.lens[i] for i in keep)
        if not seg.head_len or size > seg.size // 2 or self.total + size > self.limit:
            return False
        seg.file.seek(0)
        chunks = [seg.file.read(seg.head_len)] + [seg.read(i) for i in keep]
        try:
            tmp = _write_aside(seg.path, chunks)
        except OSError as exc:
            self._full(exc)
            return False
        seg.close()  # Windows renames over no open file
        _rename_in(tmp, seg.path)
        self.total += size - seg.size
        seg.reopen(keep)
        return True

    def reap(self) -> None:
        """Delete the older segments with nothing queued any more."""
        for seg in [s for s in self.st.segs[:-1] if s.nlive == 0]:
            self.st.remove_segment(seg)
            seg.path.unlink()
            self.total -= seg.size

    def _full(self, exc: OSError) -> None:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise exc
        self.limit = min(self.limit, self.total)

    def close(self) -> None:
        if self._wfd < 0:
            return
        self.st.close()
        os.close(self._wfd)
        self._wfd = -1
        os.close(self._dirlock)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # os.write writes at least one byte or raises
        view = view[os.write(fd, view):]


def _write_aside(path: Path, chunks: list[bytes]) -> Path:
    """`path` with suffix .tmp, written and fsynced (or removed again)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in chunks:
            _write_all(fd, chunk)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _rename_in(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    if os.name != "nt":  # Windows has no directory handles; NTFS journals the rename
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _lock_directory(path: Path) -> int:
    """One agent per buffer directory: an advisory lock the kernel releases on exit."""
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"outage buffer {path} is in use by another process") from None
    return fd
