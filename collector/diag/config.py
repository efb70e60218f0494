"""The collector's `diag:` config section."""

from __future__ import annotations

from pathlib import Path

from fieldwatch.durations import Duration
from fieldwatch.models import StrictModel


class CollectorDiagConfig(StrictModel):
    private_key: Path | None = None  # `fieldwatch diag keygen`; None: no diagnostics are sent
    auto_run: bool = True  # run a rule's read-only diagnostics when it opens a ticket
    validity: Duration = 300.0  # a request expires this long after it is signed
    timeout: Duration = 120.0  # no result by then: recorded as no_response on the ticket
    approval_ttl: Duration = 86400.0  # an approval not used within this expires
    onsite_on_failure: bool = True  # a failed remote action marks the ticket needs_onsite
