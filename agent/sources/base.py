"""The source contract: an object with a `name` and `collect()` returning samples.

Sources hold no hidden history: counters go out raw (`*_total`), rates are the rules' job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from fieldwatch.wire import Sample


class Source(Protocol):
    name: str

    def collect(self) -> Iterable[Sample]:
        """This cycle's samples; raise any exception to have the cycle count a source error."""
        ...


def sample(name: str, value: float, **labels: str) -> Sample:
    return Sample(name=name, value=float(value), labels=labels)


def unique_names(sources: Iterable[Source]) -> dict[str, Source]:
    """Map sources by name; a duplicate name is a start-up error, not a silent overwrite."""
    out: dict[str, Source] = {}
    for s in sources:
        if s.name in out:
            raise ValueError(f"two sources are named {s.name!r}")
        out[s.name] = s
    return out


def as_labels(mapping: Mapping[str, object]) -> dict[str, str]:
    return {k: str(v) for k, v in mapping.items()}
