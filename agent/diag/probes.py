"""In-process diagnostics: each is `fn(timeout) -> (exit_code, output bytes)`, bound with
validated arguments by the registry. They honour the time budget they are given."""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import socket
import time
from collections import defaultdict
from pathlib import Path

import psutil


def dns_lookup(name: str, family: str) -> tuple[int, bytes]:
    fam = {"any": 0, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}[family]
    try:
        infos = socket.getaddrinfo(name, None, fam, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return 1, f"{name}: lookup failed: {exc.strerror}\n".encode()
    addrs = sorted({str(i[4][0]) for i in infos})
    return 0, "".join(f"{name}\t{a}\n" for a in addrs).encode()


def tcp_port(host: str, port: int, timeout: float) -> tuple[int, bytes]:
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 10.0)):
            ms = (time.monotonic() - start) * 1000
            return 0, f"{host}:{port} open (connected in {ms:.1f} ms)\n".encode()
    except TimeoutError:
        return 1, f"{host}:{port} no answer (timed out)\n".encode()
    except OSError as exc:
        return 1, f"{host}:{port} closed or unreachable: {exc.strerror or exc}\n".encode()


def http_check(url: str, timeout: float) -> tuple[int, bytes]:
    import httpx

    start = time.monotonic()
    try:
        with httpx.Client(timeout=min(timeout, 15.0), follow_redirects=False) as client:
            r = client.get(url, headers={"User-Agent": "fieldwatch-diag"})
    except httpx.HTTPError as exc:
        return 1, f"GET {url}: {type(exc).__name__}: {exc}\n".encode()
    ms = (time.monotonic() - start) * 1000
    lines = [f"GET {url} -> {r.status_code} {r.reason_phrase} ({r.http_version}, {ms:.1f} ms)"]
    lines += [f"{k}: {v}" for k, v in r.headers.items()
              if k.lower() in ("server", "content-type", "content-length", "location",
                               "date", "retry-after")]
    return (0 if r.status_code < 400 else 1), ("\n".join(lines) + "\n").encode()


def top_processes(n: int, sample: float = 0.5) -> tuple[int, bytes]:
    procs = list(psutil.process_iter(["pid", "name", "username"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(sample)
    rows = []
    for p in procs:
        try:
            with p.oneshot():
                rows.append((p.cpu_percent(None), p.memory_info().rss, p.pid,
                             p.info["name"] or "?", p.info["username"] or "?"))
        except psutil.Error:
            continue
    out = ["by CPU:", f"{'PID':>7} {'CPU%':>6} {'RSS MB':>8}  USER      NAME"]
    fmt = "{2:>7} {0:>6.1f} {1:>8.1f}  {4:<9.9} {3}"
    for r in heapq.nlargest(n, rows):
        out.append(fmt.format(r[0], r[1] / 2**20, *r[2:]))
    out += ["", "by memory:", out[1]]
    for r in heapq.nlargest(n, rows, key=lambda r: r[1]):
        out.append(fmt.format(r[0], r[1] / 2**20, *r[2:]))
    vm = psutil.virtual_memory()
    out += ["", f"memory: {vm.percent:.1f}% used of {vm.total / 2**30:.1f} GiB; "
                f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    return 0, ("\n".join(out) + "\n").encode()


def disk_usage(root: Path, depth: int, n: int, timeout: float,
               max_entries: int = 2_000_000) -> tuple[int, bytes]:
    """The `n` largest directories under `root`, sizes summed up to `depth` levels below it.
    Stays on root's filesystem and never follows symlinks; stops at the deadline."""
    deadline = time.monotonic() + timeout * 0.9
    dev = root.stat().st_dev
    sizes: dict[Path, int] = defaultdict(int)
    stack, seen, partial = [root], 0, False
    while stack:
        d = stack.pop()
        if time.monotonic() > deadline or seen > max_entries:
            partial = True
            break
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                seen += 1
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.is_dir(follow_symlinks=False):
                    if st.st_dev == dev:
                        stack.append(Path(e.path))
                    continue
                rel = Path(e.path).relative_to(root).parts[:-1]
                size = st.st_blocks * 512
                for k in range(min(len(rel), depth) + 1):
                    sizes[root.joinpath(*rel[:k])] += size
    total = shutil.disk_usage(root)
    lines = [f"{s / 2**20:10.1f} MB  {p}" for p, s in
             sorted(sizes.items(), key=lambda kv: -kv[1])[:n]]
    lines.append(f"filesystem of {root}: {total.used / total.total * 100:.1f}% used, "
                 f"{total.free / 2**30:.1f} GiB free")
    if partial:
        lines.append(f"(partial: stopped after {seen} entries at the time limit)")
    return 0, ("\n".join(lines) + "\n").encode()


def tail_file(path: Path, lines: int, max_bytes: int = 4 * 2**20) -> tuple[int, bytes]:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block, data = 64 * 1024, b""
        pos = size
        while pos > 0 and data.count(b"\n") <= lines and size - pos < max_bytes:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    return 0, b"\n".join(data.splitlines()[-lines:]) + b"\n"


def _size(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):  # never follows symlinked dirs
        for name in filenames + dirnames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def clear_spool(spool: Path, backup_dir: Path, name: str, max_backup: int) -> tuple[int, bytes]:
    """Archive the contents of `spool` to a tar.gz in `backup_dir`, then remove them (not the
    directory itself), never following symlinks. A spool too large to back up is left alone:
    changing a device without a backup is for a technician on site to decide."""
    size = _size(spool)
    if size > max_backup:
        out = {"spool": str(spool), "removed": 0, "bytes": size,
               "error": f"{size} bytes is more than backup_max_bytes ({max_backup}); "
                        "not cleared"}
        return 1, (json.dumps(out) + "\n").encode()
    backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    archive = backup_dir / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-" \
                           f"{os.getpid()}.tar.gz"
    entries = sorted(os.scandir(spool), key=lambda e: e.name)
    import tarfile  # only clear_spool archives; most agents never load it

    with tarfile.open(archive, "w:gz") as tar:
        for e in entries:
            tar.add(e.path, arcname=e.name, recursive=True)  # symlinks stored as links
    os.chmod(archive, 0o600)
    removed, failed = 0, []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path)
            else:
                os.unlink(e.path)
            removed += 1
        except OSError as exc:
            failed.append(f"{e.name}: {exc.strerror}")
    out = {"spool": str(spool), "removed": removed, "bytes": size, "backup": str(archive),
           "failed": failed}
    return (1 if failed else 0), (json.dumps(out) + "\n").encode()
