"""Hot reload: watch the rule files, load a changed set whole, swap it in atomically.

A broken edit never reaches the engine: the old rules keep running, the problems are logged as
`file:line:col: message`, counted (`rules_reload_errors_total`) and shown in /healthz until a
good set loads. Polling mtimes (default every 2 s) needs no inotify and sees editors that
replace files by rename; SIGHUP (wired by the collector) asks for an immediate check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from fieldwatch.collector.rules.loader import load_rules, rule_files
from fieldwatch.collector.rules.model import RuleSet

from fieldwatch.errors import RuleError

log = logging.getLogger(__name__)

Snapshot = tuple[tuple[str, int, int], ...]


def snapshot(paths: Sequence[str | Path]) -> Snapshot:
    """What the rule files look like on disk: names, mtimes and sizes."""
    out = []
    for f in rule_files(paths):
        try:
            s = f.stat()
            out.append((str(f), s.st_mtime_ns, s.st_size))
        except OSError:
            out.append((str(f), -1, -1))
    return tuple(out)


class RuleReloader:
    def __init__(self, paths: Sequence[str | Path], apply: Callable[[RuleSet], None],
                 on_error: Callable[[RuleError], None] | None = None,
                 interval: float = 2.0) -> None:
        self.paths = list(paths)
        self.apply = apply
        self.on_error = on_error
        self.interval = interval
        self.last = snapshot(self.paths)
        self.error: RuleError | None = None
        self.reloads = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fieldwatch-rules-reload",
                                        daemon=True)

    def request(self) -> None:
        """Reload now even if nothing looks changed (SIGHUP). Safe from a signal handler."""
        self.last = ()
        self._wake.set()

    def check(self) -> bool | None:
        """One step: None when unchanged, True when a new set was applied, False when the
        changed files are broken (the old set stays)."""
        snap = snapshot(self.paths)
        if snap == self.last:
            return None
        self.last = snap
        try:
            ruleset = load_rules(self.paths)
        except RuleError as exc:
            self.error = exc
            log.error("rule files changed but are broken; the previous rules keep running:\n%s",
                      exc)
            if self.on_error is not None:
                self.on_error(exc)
            return False
        self.apply(ruleset)
        self.error = None
        self.reloads += 1
        log.info("rules reloaded: %d rules", len(ruleset.rules))
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.check()
