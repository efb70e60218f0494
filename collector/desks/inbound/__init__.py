"""Changes made in the external desks, coming back to fieldwatch (issue 16).

    desk webhook ─► routes (size, media type, signature, replay) ─► <desk>.parse ─► Inbound
    reconcile (GET the desk's ticket) ──────────────────────────────► <desk>.state ─┘
                                                                                   ▼
                          apply.plan (pure: what changed at the desk, the conflict rule)
                                                                                   ▼
                          apply.apply: one transaction — ticket actions, timeline events
                          marked with their origin (the outbox skips that desk), replay log

One module per desk kind holds its pure functions: `verify` (the desk's signature scheme),
`parse` (its webhook body → `Inbound` values) and, for the reconcile, a request for one
ticket's state and its reading. `model` has the shared values, `apply` the decisions and the
database step, `audit` the refused requests, `routes` the HTTP shell, `reconcile` the loop.
"""
