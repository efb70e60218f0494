"""Tables, as SQLAlchemy Core metadata, shared by SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from fieldwatch.collector.tickets.lifecycle import OPEN_STATES

metadata = sa.MetaData()

devices = sa.Table(
    "devices", metadata,
    sa.Column("site", sa.String(128), primary_key=True),
    sa.Column("device", sa.String(128), primary_key=True),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="unknown"),
    sa.Column("status_cause", sa.String(32), nullable=False, server_default=""),
    sa.Column("status_at", sa.Float),
    sa.Column("last_seq", sa.BigInteger),
    sa.Column("messages_total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("agent", sa.String(32), nullable=False, server_default=""),
    sa.Column("inventory", sa.JSON(none_as_null=True)),
    # sequence accounting (collector/ingest/sequence.py): metrics messages missing, late, repeated;
    # NULL until the device sent metrics
    sa.Column("seq_missing", sa.BigInteger),
    sa.Column("seq_backfilled", sa.BigInteger),
    sa.Column("seq_duplicates", sa.BigInteger),
    sa.Column("seq_gaps", sa.JSON(none_as_null=True)),
)

# Added in schema v2 (db.py migrates v1 databases by adding exactly these).
TICKET_V2 = [
    sa.Column("priority", sa.String(2)),  # current priority (escalation may raise it)
    sa.Column("sla_priority", sa.String(2)),  # the priority whose targets the clocks run on
    sa.Column("source", sa.String(16), nullable=False, server_default="rule"),  # rule | manual
    sa.Column("customer", sa.Text),  # who reported it and how to reach them (manual tickets)
    sa.Column("device_type", sa.String(64)),
    sa.Column("inventory", sa.JSON),  # the device's inventory when the ticket opened
    sa.Column("assignee", sa.String(128)),
    sa.Column("acknowledged_at", sa.Float),  # first response: stops the response clock
    sa.Column("closed_at", sa.Float),
    sa.Column("close_reason", sa.String(16)),  # fixed | verified | wont_fix | duplicate
    sa.Column("waiting_since", sa.Float),  # waiting on the customer: SLA clocks paused
    sa.Column("pauses", sa.JSON),  # [[start, end|null], ...] SLA pauses
    sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("recurrences", sa.Integer, nullable=False, server_default="0"),
    sa.Column("recurrence_of", sa.Integer),
    sa.Column("on_recurrence", sa.String(8), nullable=False, server_default="reopen"),
    sa.Column("verify_window", sa.Float),  # seconds a resolution waits before closing itself
    sa.Column("resolution", sa.JSON),  # cause, fix, parts, minutes, mode
    sa.Column("satisfaction", sa.Integer),  # 1-5, recorded on closure
    sa.Column("update_event_at", sa.Float),  # last `alert_update` timeline event (throttle)
]

tickets = sa.Table(
    "tickets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("severity", sa.String(2), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("team", sa.String(64)),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("last_value", sa.Float),
    sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
    # schema v2: the service desk (issue 6); every column nullable or defaulted for migration
    *TICKET_V2,
    # At most one open ticket per fingerprint, across every collector sharing the database.
    sa.Index("uq_tickets_open_fingerprint", "fingerprint", unique=True,
             sqlite_where=sa.text(f"state IN {OPEN_STATES!r}"),
             postgresql_where=sa.text(f"state IN {OPEN_STATES!r}")),
    sa.Index("ix_tickets_device", "site", "device"),
    sa.Index("ix_tickets_state", "state"),
    sa.Index("ix_tickets_fingerprint", "fingerprint", "id"),
)

# Each escalation step fires once per ticket, even with several collectors ticking (schema v2).
escalations = sa.Table(
    "ticket_escalations", metadata,
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), primary_key=True),
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("fired_at", sa.Float, nullable=False),
)

ticket_events = sa.Table(
    "ticket_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),  # "rule:disk_full", "system", a person
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.JSON),
)

# The metric history, one row per received message (what backtests replay and audits read).
messages = sa.Table(
    "messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("seq", sa.BigInteger),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_messages_ts", "ts"),
    sa.Index("ix_messages_device_seq", "site", "device", "seq"),
)

meta = sa.Table(
    "fieldwatch_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Silences added at run time (CLI, API); silences in rule files live in the files.
silences = sa.Table(
    "silences", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", sa.JSON, nullable=False),  # {key: matcher text}, see rules/selectors
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expired_at", sa.Float),  # set when expired early by hand
    sa.Index("ix_silences_ends_at", "ends_at"),
)

# Alerts that fired while silenced or explained by a parent's outage: recorded, no ticket.
muted_alerts = sa.Table(
    "muted_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # fire, repeat, resolve
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("severity", sa.String(2), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("silence_id", sa.String(64)),
    sa.Column("suppressed_by", sa.String(64)),  # the parent outage alert's fingerprint
    sa.Column("parent", sa.String(256)),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_muted_alerts_fingerprint", "fingerprint"),
    sa.Index("ix_muted_alerts_suppressed_by", "suppressed_by"),
)

# -- external desks (collector/desks/outbox.py) -----------------------------------------------
# One row per (ticket change, desk), written in the transaction of the change; the worker
# delivers the oldest pending row of each ticket and marks it delivered or dead.
outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("desk", sa.String(64), nullable=False),
    sa.Column("ticket_id", sa.Integer, nullable=False),
    sa.Column("change_key", sa.String(128), nullable=False),  # idempotency key
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),  # {"ticket": snapshot, "event": {...}}
    sa.Column("state", sa.String(12), nullable=False),  # pending | delivered | dead
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sending_since", sa.Float),  # set before a send; left set by a crash
    sa.Column("unclear", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("delivered_at", sa.Float),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("receipt", sa.JSON),
    sa.Index("ix_outbox_queue", "desk", "state", "ticket_id", "id"),
    sa.Index("ix_outbox_state", "state", "id"),
)

# The desks this database delivers to (registered by the collector that runs them), so a
# change recorded by any process — the CLI included — fans out to every desk.
outbox_desks = sa.Table(
    "outbox_desks", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("actions", sa.JSON, nullable=False),
    sa.Column("teams", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("instance", sa.String(32), nullable=False),
    sa.Column("registered_at", sa.Float, nullable=False),
)

# Which collector delivers to a desk (collectors sharing a database): a lease renewed each round.
outbox_leases = sa.Table(
    "outbox_leases", metadata,
    sa.Column("desk", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
)

# The external desk's id for a fieldwatch ticket: updates, resolution and reopen go there.
desk_links = sa.Table(
    "desk_links", metadata,
    sa.Column("ticket_id", sa.Integer, primary_key=True),
    sa.Column("desk", sa.String(64), primary_key=True),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("linked_at", sa.Float, nullable=False),
    sa.Index("ix_desk_links_external", "desk", "external_id"),  # a desk's webhook → the ticket
)

# -- changes made in the desks, coming back (collector/desks/inbound) --------------------------
# Deliveries (and desk comments) already applied, per desk: a replay changes nothing.
inbound_seen = sa.Table(
    "inbound_seen", metadata,
    sa.Column("desk", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),  # delivery id, "comment:<id>", or a hash
    sa.Column("seen_at", sa.Float, nullable=False, index=True),
)

# What fieldwatch last saw of each linked external ticket: the desk's state, its time, its
# assignee. A webhook or a reconcile acts on what changed since, never on what merely differs.
desk_sync = sa.Table(
    "desk_sync", metadata,
    sa.Column("ticket_id", sa.Integer, primary_key=True),
    sa.Column("desk", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16)),  # open | acknowledged | resolved
    sa.Column("status_at", sa.Float),  # the desk's own time of what we last saw
    sa.Column("assignee", sa.String(128)),
    sa.Column("alias", sa.String(255)),  # another id of the same external ticket (PagerDuty)
    sa.Column("synced_at", sa.Float, nullable=False),  # when fieldwatch last heard (reconcile)
    sa.Index("ix_desk_sync_alias", "desk", "alias"),
)

# Requests an inbound route refused (bad signature, too old, malformed): the audit trail.
inbound_refusals = sa.Table(
    "inbound_refusals", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("desk", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),  # the HTTP status answered
    sa.Column("remote", sa.String(64), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)

# Alertmanager notifications already applied: (fingerprint, startsAt, status) — HA pairs and
# retries deliver the same one more than once.
alertmanager_seen = sa.Table(
    "alertmanager_seen", metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("starts_at", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(16), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False, index=True),
)

# Messages and ticket changes the store refused as data (a value out of range, ...): set aside
# by the worker so the rest of their batch is stored (collector/store/deadletter.py).
dead_letters = sa.Table(
    "dead_letters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),  # when it was set aside (collector clock)
    sa.Column("received_at", sa.Float),  # when the collector received it (None: a change)
    sa.Column("topic", sa.Text, nullable=False),  # "" for a ticket change
    sa.Column("site", sa.Text, nullable=False),  # Text, not String(128): may be what was wrong
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # metrics | status | event | ... | ticket
    sa.Column("payload", sa.LargeBinary, nullable=False),  # as received (a change: its JSON)
    sa.Column("error", sa.String(64), nullable=False),  # the exception's class
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_dead_letters_at", "at"),
)

# How far each remote-write exporter has sent the `messages` table (collector/history/exporter.py):
# the id of the last message sent (or set aside), moved on only after the server said 2xx.
remote_write_cursors = sa.Table(
    "remote_write_cursors", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# -- desk accounts (collector/web/accounts/) --------------------------------------------------
# People who log in to the desk's pages or call the API with their own token. Secrets are
# stored hashed only: passwords with argon2id, session ids and API tokens with SHA-256 (they
# are random, so a fast hash is enough and lets a lookup use the index).
desk_users = sa.Table(
    "desk_users", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | engineer | supervisor | admin
    sa.Column("password_hash", sa.Text),  # argon2id; NULL: no login (API tokens only)
    sa.Column("language", sa.String(16), nullable=False, server_default="en"),
    sa.Column("all_sites", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("password_at", sa.Float),  # when the password was last set
)

# The sites a user sees (admins and `all_sites` users see every site).
desk_user_sites = sa.Table(
    "desk_user_sites", metadata,
    sa.Column("user_name", sa.String(64), sa.ForeignKey("desk_users.name", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("site", sa.String(128), primary_key=True),
)

desk_sessions = sa.Table(
    "desk_sessions", metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),  # sha256 hex of the cookie value
    sa.Column("user_name", sa.String(64), sa.ForeignKey("desk_users.name", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

desk_api_tokens = sa.Table(
    "desk_api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("user_name", sa.String(64), sa.ForeignKey("desk_users.name", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("label", sa.String(128), nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),  # updated at most hourly
)
