"""The collector's `history:` section: how long each resolution of the embedded store is kept.

```yaml
history:
  enabled: true        # false: no samples or rollups are written (rules, tickets unaffected)
  raw_for: 2d          # every sample as received
  rollup_5m_for: 90d   # min/avg/max/last/count per series per 5 minutes
  rollup_1h_for: 730d  # the same per hour
```
"""

from __future__ import annotations

from pydantic import ValidationInfo, field_validator

from fieldwatch.durations import Duration
from fieldwatch.models import StrictModel

DAY = 86400.0
MIN_RAW_FOR = 2 * 3600.0  # a bucket's rollup is computed from raw samples after it closes


class HistoryConfig(StrictModel):
    enabled: bool = True
    raw_for: Duration = 2 * DAY
    rollup_5m_for: Duration = 90 * DAY
    rollup_1h_for: Duration = 730 * DAY
    rollup_every: Duration = 60.0  # how often closed buckets are rolled up
    retention_every: Duration = 600.0  # how often what is past its horizon is deleted

    @field_validator("raw_for")
    @classmethod
    def _raw(cls, v: float) -> float:
        if v < MIN_RAW_FOR:
            raise ValueError("at least 2h: rollups are computed from the raw samples of "
                             "buckets that have closed")
        return v

    @field_validator("rollup_5m_for")
    @classmethod
    def _five(cls, v: float, info: ValidationInfo) -> float:
        raw = info.data.get("raw_for")
        if raw is not None and v < raw:
            raise ValueError("must be at least raw_for: a coarser resolution reaches further")
        return v

    @field_validator("rollup_1h_for")
    @classmethod
    def _hour(cls, v: float, info: ValidationInfo) -> float:
        five = info.data.get("rollup_5m_for")
        if five is not None and v < five:
            raise ValueError("must be at least rollup_5m_for: a coarser resolution reaches "
                             "further")
        return v

    @field_validator("rollup_every", "retention_every")
    @classmethod
    def _every(cls, v: float) -> float:
        if not 1.0 <= v <= DAY:
            raise ValueError("between 1s and 1d")
        return v
