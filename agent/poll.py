"""One poll cycle as a plain function: sources in, one batch out. No scheduler, no network."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from fieldwatch.agent.sources.base import Source, sample

from fieldwatch.clock import Clock
from fieldwatch.errors import SourceUnsupported
from fieldwatch.wire import Sample

log = logging.getLogger(__name__)


@dataclass
class Batch:
    ts: float
    samples: list[Sample]
    errors: dict[str, str] = field(default_factory=dict)  # source name -> what went wrong
    unsupported: set[str] = field(default_factory=set)  # sources that can never work here


def poll_once(sources: Mapping[str, Source], clock: Clock) -> Batch:
    """Read every source; one failing source is recorded and never stops the others."""
    batch = Batch(ts=clock.now(), samples=[])
    for name, source in sources.items():
        try:
            # JSON has no NaN or infinity: a sensor reporting one has no reading this cycle
            batch.samples.extend(s for s in source.collect() if math.isfinite(s.value))
        except SourceUnsupported as exc:
            batch.errors[name] = f"unsupported here: {exc}"
            batch.unsupported.add(name)
        except Exception as exc:  # noqa: BLE001 - any source bug is this source's error only
            batch.errors[name] = f"{type(exc).__name__}: {exc}"
    return batch


class Poller:
    """poll_once plus the agent's own health series: error counters and cycle time."""

    def __init__(self, sources: Mapping[str, Source], clock: Clock) -> None:
        self.sources = dict(sources)
        self.names = list(sources)  # error counters keep reporting sources dropped below
        self.clock = clock
        self.errors_total: Counter[str] = Counter()
        self._warned: set[str] = set()

    def poll(self) -> Batch:
        started = time.perf_counter()
        batch = poll_once(self.sources, self.clock)
        for name, why in batch.errors.items():
            self.errors_total[name] += 1
            if name not in self._warned:  # one log line per failing source, not one per cycle
                log.warning("source %s failed (counted in agent.source_errors_total): %s",
                            name, why)
                self._warned.add(name)
        for name in batch.unsupported:  # counted once above, skipped from now on
            del self.sources[name]
        for name in self.names:
            batch.samples.append(sample("agent.source_errors_total", self.errors_total[name],
                                        source=name))
        batch.samples.append(sample("agent.cycle_seconds", time.perf_counter() - started))
        return batch
