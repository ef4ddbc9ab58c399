"""Unit tests for tasks.logs: every line is JSON with timestamp, level, service, event and the bound ids."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

import pytest
import structlog

from tasks import logs


@pytest.fixture(autouse=True)
def restore_logging():
    """Configure freely inside a test; the root logger and structlog come back as they were."""
    root = logging.getLogger()
    botocore = logging.getLogger("botocore")
    saved = (root.handlers[:], root.level, botocore.level, structlog.get_config(), structlog.is_configured())
    logs.clear()
    yield
    handlers, level, botocore_level, config, was_configured = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    botocore.setLevel(botocore_level)
    if was_configured:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()
    logs.clear()


def fresh_logger():
    """A structlog logger never used before, so it picks up the configuration made in this test."""
    return logs.get_logger(f"test.{uuid.uuid4().hex}")


def lines(capsys) -> list[dict]:
    """Every stdout line, each parsed as one JSON object (fails if a line is not JSON)."""
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_structlog_line_is_json_with_required_fields(capsys):
    """A structlog event is one JSON line with timestamp (ISO, UTC), level, service, event and its fields."""
    logs.configure_logging("svc-under-test", "INFO")
    fresh_logger().info("job.queued", attempt=2)
    [line] = lines(capsys)
    assert line["event"] == "job.queued"
    assert line["level"] == "info"
    assert line["service"] == "svc-under-test"
    assert line["attempt"] == 2
    assert line["timestamp"].endswith("Z")
    assert datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0


def test_bound_ids_appear_on_every_line(capsys):
    """requestId and jobId bound once appear on every following line, structlog and stdlib alike."""
    logs.configure_logging("api", "INFO")
    logs.bind(requestId="req-1", jobId="job-1")
    fresh_logger().info("first")
    logging.getLogger("some.library").warning("second %s", "line")
    first, second = lines(capsys)
    for line in (first, second):
        assert line["requestId"] == "req-1" and line["jobId"] == "job-1"
        assert line["service"] == "api"
        assert "timestamp" in line
    assert second["event"] == "second line" and second["level"] == "warning"


def test_none_ids_are_not_bound(capsys):
    """bind skips None, so a missing jobId is absent rather than null."""
    logs.configure_logging("api", "INFO")
    logs.bind(requestId="req-2", jobId=None)
    fresh_logger().info("x")
    [line] = lines(capsys)
    assert line["requestId"] == "req-2" and "jobId" not in line


def test_clear_forgets_ids(capsys):
    """After clear, lines no longer carry the previous request's ids."""
    logs.configure_logging("api", "INFO")
    logs.bind(requestId="req-3", jobId="job-3")
    logs.clear()
    fresh_logger().info("after")
    [line] = lines(capsys)
    assert "requestId" not in line and "jobId" not in line


def test_level_filters_lines(capsys):
    """Lines below the configured level are dropped."""
    logs.configure_logging("worker", "WARNING")
    logger = fresh_logger()
    logger.info("dropped")
    logger.warning("kept")
    assert [line["event"] for line in lines(capsys)] == ["kept"]


def test_exception_is_rendered_inside_the_one_json_line(capsys):
    """log.exception keeps to one JSON line, with the traceback as a string field."""
    logs.configure_logging("worker", "INFO")
    try:
        raise ValueError("kaput")
    except ValueError:
        fresh_logger().exception("step.failed")
    [line] = lines(capsys)
    assert line["event"] == "step.failed" and line["level"] == "error"
    assert "ValueError: kaput" in line["exception"]


def test_non_ascii_is_kept_readable(capsys):
    """Emoji and accents are written as themselves, not \\u escapes."""
    logs.configure_logging("api", "INFO")
    fresh_logger().info("prompt", prompt="👻 café")
    out = capsys.readouterr().out
    assert "👻 café" in out
    assert json.loads(out)["prompt"] == "👻 café"


def test_configure_replaces_root_handlers(capsys):
    """Configuring twice leaves one handler, so lines are not duplicated."""
    logs.configure_logging("api", "INFO")
    logs.configure_logging("api", "INFO")
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("x").warning("once")
    assert len(lines(capsys)) == 1


def test_botocore_stays_quiet_at_debug():
    """Even at DEBUG, botocore logs at INFO or above."""
    logs.configure_logging("api", "DEBUG")
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("botocore").level >= logging.INFO


def test_is_configured_after_configure():
    """is_configured reports configure_logging has run."""
    structlog.reset_defaults()
    assert not logs.is_configured()
    logs.configure_logging("api", "INFO")
    assert logs.is_configured()
