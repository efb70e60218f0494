"""The `remote_write:` and `remote_query:` sections of collector.yaml (docs/history.md).

```yaml
remote_write:                     # zero or more exporters, each with its own cursor
  - name: vm
    url: http://127.0.0.1:8428/api/v1/write
remote_query:                     # read history from the server instead of the embedded store
  url: http://127.0.0.1:8428      # its /api/v1/query_range and /api/v1/series
```
Credentials follow the desks' rule: `{env: NAME}` or `{file: PATH}`, never inline.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fieldwatch.collector.desks.config import Secret
from pydantic import AfterValidator, Field, HttpUrl, model_validator

from fieldwatch.durations import Duration
from fieldwatch.models import StrictModel


class RemoteAuth(StrictModel):
    """Bearer token, or basic auth (username + password); none by default."""

    bearer_token: Secret | None = None
    username: str | None = None
    password: Secret | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RemoteAuth:
        if self.bearer_token is not None and (self.username or self.password):
            raise ValueError("give bearer_token or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both username and password")
        return self

    def headers(self) -> dict[str, str]:
        """Authorization header (secrets read now, at start-up)."""
        if self.bearer_token is not None:
            return {"Authorization": f"Bearer {self.bearer_token.value().get_secret_value()}"}
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password.value().get_secret_value()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}


class RemoteWriteConfig(RemoteAuth):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # the cursor's key in the database
    url: HttpUrl  # e.g. http://vm:8428/api/v1/write, http://prom:9090/api/v1/write
    timeout: Duration = 10.0
    max_samples: int = Field(10_000, ge=1, le=1_000_000)  # per request (whole messages)
    max_messages: int = Field(1000, ge=1, le=100_000)  # messages read per round
    poll: Duration = 0.5  # how often an idle exporter looks for new messages
    # send only messages whose ids were visible this long (see exporter); default: 1 s, but
    # 0 on SQLite, whose ids become visible in order
    settle: Duration | None = None
    first_delay: Duration = 0.5  # backoff after a failed send, doubling ...
    max_delay: Duration = 30.0  # ... up to this; retried until the server takes it
    start: Literal["oldest", "now"] = "oldest"  # where a new exporter's cursor begins


def _unique(v: list[RemoteWriteConfig]) -> list[RemoteWriteConfig]:
    names = [e.name for e in v]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"remote_write names must be unique: {', '.join(dup)}")
    return v


RemoteWriteList = Annotated[list[RemoteWriteConfig], AfterValidator(_unique)]


class RemoteQueryConfig(RemoteAuth):
    url: HttpUrl  # the server's base URL: /api/v1/query_range etc. are appended
    timeout: Duration = 10.0
    raw_within: Duration = 6 * 3600.0  # ranges up to this, with no step, return raw samples
    max_points: int = Field(1000, ge=10, le=11_000)  # per series when the backend picks a step
