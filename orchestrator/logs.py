"""Structured logs: one JSON object per line, with the build id on every line about a build.

``build_context(build_id)`` marks the current build (the work-horse runs one build), and a
filter copies it onto every record, whichever library logged it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

current_build: ContextVar[str | None] = ContextVar("kiln_build_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(build_id)s] %(message)s"


class BuildIdFilter(logging.Filter):
    """Adds ``build_id`` (or "-") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "build_id", None):
            record.build_id = current_build.get() or "-"  # type: ignore[attr-defined]
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, build_id, message, error."""

    def format(self, record: logging.LogRecord) -> str:
        build_id = getattr(record, "build_id", None)
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "build_id": None if build_id in (None, "-") else build_id,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str = "json", level: int = logging.INFO) -> None:
    """Send this process's logs to stderr as JSON lines (``fmt="json"``) or plain text."""
    handler = logging.StreamHandler()
    handler.addFilter(BuildIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic logs its plugins and dialect at INFO each time a process checks the schema.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


@contextlib.contextmanager
def build_context(build_id: str) -> Iterator[None]:
    """Within this block, every log line carries ``build_id``."""
    token = current_build.set(build_id)
    try:
        yield
    finally:
        current_build.reset(token)
