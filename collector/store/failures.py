"""Is a failed write the data's fault or the store's? The worker's retry-or-set-aside decision.

- `data`: the rows themselves were refused — SQLAlchemy's `DataError` (a value out of range, a
  NUL in text on PostgreSQL, a string too long) and `IntegrityError` (NOT NULL, a constraint),
  a `StatementError` raised while binding parameters (before the database saw them), and the
  Python errors a driver raises for a value it cannot bind (`OverflowError` for an integer
  beyond 64 bits in sqlite3, `ValueError`, `TypeError`). Retrying the same rows cannot help:
  the batch is split and the rows that fail alone are set aside (deadletter.py).
- `store`: the store cannot write at all — `OperationalError` (database down or refusing
  connections, locked, disk full, read-only file, a table missing on SQLite), `InterfaceError`
  (the connection broke), a connection invalidated under a statement, the pool timing out,
  `OSError`. Nothing is set aside: the batch is kept and retried until it is stored.
- `unknown`: anything else (`ProgrammingError`, `InternalError`, a bug of ours that some row
  trips). Retried like `store`; after `PROBE_AFTER` failures in a row the worker asks the store
  to do a known-good write of the same tables (`Store.probe`, rolled back): if that works the
  failure belongs to the rows and they are split like `data`, otherwise the store is broken
  and the batch waits.

Never `data` for `OperationalError`, even when reads still work: a read-only or full disk
answers queries but takes no rows, and splitting then would set every message aside.
"""

from __future__ import annotations

import logging
from typing import Literal

import sqlalchemy.exc as sa_exc

Failure = Literal["data", "store", "unknown"]

PROBE_AFTER = 3  # failures in a row of an `unknown` kind before the probe decides


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return "store"
        if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
            return "data"
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return "store"
        return "unknown"
    if isinstance(exc, sa_exc.StatementError):
        return "data"  # not a DBAPIError: a bind processor refused a value
    if isinstance(exc, sa_exc.SQLAlchemyError | OSError):
        return "store"  # pool timeout, disconnection, the file system
    if isinstance(exc, OverflowError | ValueError | TypeError):
        return "data"  # the driver refused to bind a value (sqlite3: int beyond 64 bits)
    return "unknown"


def describe(exc: BaseException, limit: int = 500) -> str:
    """`ErrorClass: first line of the message` (SQLAlchemy appends the SQL and parameters on
    later lines: left out, the parameters of a whole batch would flood the log)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:limit]


def log_failure(logger: logging.Logger, exc: BaseException, msg: str, *args: object) -> None:
    """Log a failed read or job: one line (`describe`) when the store itself is down — an
    outage is expected and already on /healthz — and the traceback for anything else."""
    if classify(exc) == "store":
        logger.warning(msg + " (%s)", *args, describe(exc))
    else:
        logger.error(msg, *args, exc_info=exc)
