"""Tables of remote diagnostics, kept apart from the ticket schema (created on first use):
approvals, requests with their results, and on-site visit marks."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

approvals = sa.Table(
    "diag_approvals", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, nullable=False, index=True),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("by", sa.String(128), nullable=False),  # who authorized it
    sa.Column("on_behalf_of", sa.String(256), nullable=False, server_default=""),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("used_by_request", sa.String(64)),  # single use: the request that carried it
)

requests = sa.Table(
    "diag_requests", metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the correlation id
    sa.Column("ticket_id", sa.Integer, index=True),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("check_name", sa.String(128), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("auto", sa.Boolean, nullable=False),
    sa.Column("approval_id", sa.Integer),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.Column("deadline", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # sent, or the result's status
    sa.Column("reason", sa.String(64), nullable=False, server_default=""),
    sa.Column("result", sa.JSON),
    sa.Column("finished_at", sa.Float),
    sa.Index("ix_diag_requests_open", "status", "deadline"),
    sa.Index("ix_diag_requests_device", "site", "device"),
)

onsite = sa.Table(
    "diag_onsite", metadata,
    sa.Column("ticket_id", sa.Integer, primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("checklist", sa.JSON, nullable=False),
)
