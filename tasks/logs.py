"""JSON log lines for the API and the worker, carrying requestId and jobId.

structlog renders every line, including those of the standard library's
loggers (Celery, gunicorn, botocore), so one query language reads them all.
The request and job ids live in context variables: bound once per HTTP
request or task, they appear on every line logged inside it.
"""

from __future__ import annotations

import logging
import sys

import structlog

_SHARED_PROCESSORS: list = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger through structlog's JSON renderer, tagged with ``service``."""

    def add_service(_logger, _method, event_dict):
        event_dict.setdefault("service", service)
        return event_dict

    shared = [*_SHARED_PROCESSORS, add_service]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # botocore at DEBUG prints credentials-adjacent detail; keep it quiet.
    logging.getLogger("botocore").setLevel(max(logging.INFO, root.level))


def is_configured() -> bool:
    """True once configure_logging ran in this process (gunicorn and tests may configure first)."""
    return structlog.is_configured()


def bind(**ids: str | None) -> None:
    """Attach ids (requestId, jobId) to every line logged from here in this context."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v})


def clear() -> None:
    """Forget the ids bound in this context."""
    structlog.contextvars.clear_contextvars()


def get_logger(name: str):
    """A structlog logger named ``name``."""
    return structlog.stdlib.get_logger(name)
