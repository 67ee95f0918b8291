"""Logging set-up for the CLI and servers, and a filter that redacts secrets.

The library itself never configures handlers; ``configure_logging`` is
called by the CLI entry point and by the servers only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from manara.security.redaction import redact

__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "redact"]

_TRACEBACK_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Redact secrets and personal data from a record's message, arguments and traceback.

    Installed on a handler, it receives every record that the handler emits,
    including those that propagate from third-party loggers such as
    ``uvicorn.error`` and ``uvicorn.access``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse ``exc_text`` when it is set, so the traceback
            # is rendered and redacted once, here.
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(record.stack_info)
        return orjson.dumps(entry).decode()


# Loggers of the bundled server. An in-process uvicorn started with
# ``access_log=False`` sets ``uvicorn.access`` to not propagate and clears its
# handlers, and that state outlives the server in the same process.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Send every record, uvicorn's included, to one redacting handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        for existing in list(server_logger.handlers):
            server_logger.removeHandler(existing)
        server_logger.propagate = True
