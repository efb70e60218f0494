"""Enrollment state in the collector's database (SQLite or PostgreSQL): tokens (hashed,
expiring, single use), the broker identities they turned into, and an audit trail.

Single use holds across collectors and threads because a token is spent by one
`UPDATE ... WHERE used_at IS NULL AND expires_at > now`: the database lets exactly one
such update match the row (PostgreSQL re-checks the WHERE after the row lock; SQLite has one
writer), and whoever sees rowcount 1 owns the token.

Its tables live in their own metadata, created on first use, so the store's schema version is
not touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fieldwatch.collector.enroll.acl import DeviceAcl, Target
from fieldwatch.collector.enroll.tokens import new_token, token_hash

from fieldwatch.clock import Clock
from fieldwatch.errors import EnrollmentRefused

metadata = sa.MetaData()

tokens = sa.Table(
    "enroll_tokens", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),  # [[site, device], ...]
    sa.Column("overlap", sa.Float, nullable=False, server_default="0"),  # rotation: old kept
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float),
    sa.Column("used_from", sa.String(64)),
    sa.Column("created_by", sa.String(128), nullable=False, server_default=""),
)

identities = sa.Table(
    "enroll_identities", metadata,
    sa.Column("username", sa.String(300), primary_key=True),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),  # a rotated-out credential: removed after this
    sa.Column("retired_at", sa.Float),  # removed from the broker
    sa.UniqueConstraint("site", "device", "generation", name="uq_enroll_generation"),
)

audit = sa.Table(
    "enroll_audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),  # issued, exchanged, refused, ...
    sa.Column("site", sa.String(128)),
    sa.Column("device", sa.String(128)),
    sa.Column("username", sa.String(300)),
    sa.Column("address", sa.String(64)),
    sa.Column("reason", sa.String(200)),
)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a spent token entitles its bearer to."""

    token_hash: str
    acl: DeviceAcl
    overlap: float


def _targets(raw: list[list[str]]) -> tuple[Target, ...]:
    return tuple(Target(s, d) for s, d in raw)


class EnrollStore:
    def __init__(self, engine: sa.Engine, clock: Clock) -> None:
        self.engine, self.clock = engine, clock
        metadata.create_all(engine)

    # -- tokens ------------------------------------------------------------------------------

    def issue(self, acl: DeviceAcl, ttl: float, overlap: float = 0.0, by: str = "") -> str:
        """A new token for `acl` (returned once, stored hashed)."""
        token, now = new_token(), self.clock.now()
        with self.engine.begin() as c:
            c.execute(tokens.insert().values(
                token_hash=token_hash(token), site=acl.site, device=acl.device,
                targets=[[t.site, t.device] for t in acl.targets], overlap=overlap,
                created_at=now, expires_at=now + ttl, created_by=by))
            self._audit(c, "issued", acl.site, acl.device, reason=f"ttl {ttl:g}s")
        return token

    def spend(self, token: str, address: str) -> Grant:
        """Spend `token` once; EnrollmentRefused (audited) when it is unknown, used or
        expired."""
        h, now = token_hash(token), self.clock.now()
        with self.engine.begin() as c:
            done = c.execute(tokens.update().where(
                tokens.c.token_hash == h, tokens.c.used_at.is_(None),
                tokens.c.expires_at > now).values(used_at=now, used_from=address[:64]))
            row = c.execute(sa.select(tokens).where(tokens.c.token_hash == h)).first()
            if done.rowcount == 1 and row is not None:
                return Grant(h, DeviceAcl(row.site, row.device, _targets(row.targets)),
                             row.overlap)
            reason = ("forged" if row is None else
                      "retired" if row.used_from == "(retired)" else
                      "used" if row.used_at is not None else "expired")
        self.refused(reason, address, row.site if row else None, row.device if row else None)
        raise EnrollmentRefused(reason)

    def unspend(self, grant: Grant) -> None:
        """Give a token back when the broker could not be provisioned (nothing was handed
        out, so the device may try again)."""
        with self.engine.begin() as c:
            c.execute(tokens.update().where(tokens.c.token_hash == grant.token_hash)
                      .values(used_at=None, used_from=None))

    def refused(self, reason: str, address: str, site: str | None = None,
                device: str | None = None) -> None:
        with self.engine.begin() as c:
            self._audit(c, "refused", site, device, address=address, reason=reason)

    # -- identities --------------------------------------------------------------------------

    def add_identity(self, acl: DeviceAcl, address: str) -> str:
        """Record the device's next broker username (generation) and return it."""
        now = self.clock.now()
        with self.engine.begin() as c:
            last = c.execute(sa.select(sa.func.max(identities.c.generation)).where(
                identities.c.site == acl.site, identities.c.device == acl.device)).scalar()
            username = acl.username((last or 0) + 1)
            c.execute(identities.insert().values(
                username=username, site=acl.site, device=acl.device,
                generation=(last or 0) + 1, targets=[[t.site, t.device] for t in acl.targets],
                created_at=now))
            self._audit(c, "exchanged", acl.site, acl.device, username=username,
                        address=address)
        return username

    def forget_identity(self, username: str, why: str) -> None:
        """Undo add_identity: the broker never got this account (audited with `why`)."""
        with self.engine.begin() as c:
            row = c.execute(sa.select(identities).where(identities.c.username == username)
                            ).first()
            c.execute(identities.delete().where(identities.c.username == username))
            if row is not None:
                self._audit(c, "provisioning_failed", row.site, row.device,
                            username=username, reason=why)

    def active(self, site: str, device: str) -> list[str]:
        """The device's usernames the broker still knows, oldest first."""
        with self.engine.connect() as c:
            return list(c.execute(sa.select(identities.c.username).where(
                identities.c.site == site, identities.c.device == device,
                identities.c.retired_at.is_(None)).order_by(identities.c.generation)).scalars())

    def expire_others(self, site: str, device: str, keep: str, at: float) -> list[str]:
        """Mark the device's other live usernames to be removed at `at` (rotation overlap)."""
        with self.engine.begin() as c:
            c.execute(identities.update().where(
                identities.c.site == site, identities.c.device == device,
                identities.c.username != keep, identities.c.retired_at.is_(None),
                sa.or_(identities.c.expires_at.is_(None), identities.c.expires_at > at))
                .values(expires_at=at))
        return [u for u in self.active(site, device) if u != keep]

    def due(self) -> list[tuple[str, str, str]]:
        """(username, site, device) of rotated-out credentials whose overlap has ended."""
        with self.engine.connect() as c:
            return [(r.username, r.site, r.device) for r in c.execute(
                sa.select(identities).where(identities.c.retired_at.is_(None),
                                            identities.c.expires_at <= self.clock.now()))]

    def retired(self, usernames: list[str], event: str, reason: str = "") -> None:
        now = self.clock.now()
        with self.engine.begin() as c:
            for u in usernames:
                row = c.execute(sa.select(identities).where(identities.c.username == u)).first()
                c.execute(identities.update().where(identities.c.username == u)
                          .values(retired_at=now))
                self._audit(c, event, row.site if row else None, row.device if row else None,
                            username=u, reason=reason)

    def cancel_tokens(self, site: str, device: str) -> int:
        """Spend every unused token of the device (it is being retired)."""
        with self.engine.begin() as c:
            return c.execute(tokens.update().where(
                tokens.c.site == site, tokens.c.device == device, tokens.c.used_at.is_(None))
                .values(used_at=self.clock.now(), used_from="(retired)")).rowcount

    def devices(self) -> list[dict[str, Any]]:
        """Every enrolled device with its live usernames (for `devices enrolled`)."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(identities).order_by(
                identities.c.site, identities.c.device, identities.c.generation)).all()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            d = out.setdefault((r.site, r.device), {"site": r.site, "device": r.device,
                                                    "usernames": [], "targets": r.targets,
                                                    "enrolled_at": r.created_at})
            if r.retired_at is None:
                d["usernames"].append(r.username)
                d["targets"] = r.targets
        return list(out.values())

    # -- audit -------------------------------------------------------------------------------

    def _audit(self, c: sa.Connection, event: str, site: str | None, device: str | None,
               username: str | None = None, address: str | None = None,
               reason: str | None = None) -> None:
        c.execute(audit.insert().values(at=self.clock.now(), event=event, site=site,
                                        device=device, username=username,
                                        address=(address or None) and address[:64],
                                        reason=reason and reason[:200]))

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(
                sa.select(audit).order_by(audit.c.id.desc()).limit(limit))]
