"""External service desks: one protocol, `deliver(change) -> Receipt`, one module per desk.

Each adapter is a pair of pure mappings (change → `httpx.Request`, `httpx.Response` → result)
run through an injected `httpx.Client`; `http.send` is the one place where httpx errors become
`DeskUnavailable` (retry) or `DeskRejected` (dead letter), so the outbox decides without httpx.
"""
