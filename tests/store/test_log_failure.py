"""A store outage is one log line, a bug keeps its traceback (store/failures.log_failure)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from fieldwatch.collector.store.failures import log_failure

log = logging.getLogger("fieldwatch.test.failures")


def _outage() -> BaseException:
    engine = sa.create_engine("sqlite:////nonexistent-dir/fieldwatch.db")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("a database under a missing folder opened")


def test_an_outage_is_one_line_naming_the_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        log_failure(log, _outage(), "could not read %s; keeping the previous ones", "silences")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("could not read silences; keeping the previous ones "
                                          "(OperationalError: unable to open database file")
    assert "Traceback" not in caplog.text and "\n" not in record.getMessage()


def test_anything_else_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        with caplog.at_level(logging.INFO):
            log_failure(log, exc, "tick failed; retrying in %.0fs", 30.0)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.getMessage() == "tick failed; retrying in 30s"
    assert "Traceback" in caplog.text and "KeyError: 'missing'" in caplog.text
