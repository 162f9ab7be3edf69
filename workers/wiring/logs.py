"""Logging set-up shared by every process kind (web, workers, cron, CLI): plain lines, or one JSON object per
line (`HOOKLINE_LOG_FORMAT=json`) carrying the fields a line was logged with (`extra=`: event_id, message_id…).

Formats only; what is logged, and that no secret or full number ever is, is each caller's duty
(tests/test_logs_secrets.py checks the whole flow).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from workers.wiring.settings import Settings

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, the `extra=` fields, and the
    exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line = {"time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _foreign_handlers() -> list[logging.Handler]:
    """The handlers RQ's and gunicorn's commands put on their own loggers before Hookline's code runs (RQ's do
    not propagate to the root logger), so that in JSON mode their lines are JSON too."""
    loggers = [logger for name, logger in logging.root.manager.loggerDict.items()
               if name.split(".")[0] in ("rq", "gunicorn") and isinstance(logger, logging.Logger)]
    return [handler for logger in loggers for handler in logger.handlers]


def configure(settings: Settings) -> None:
    """Hookline's level from the settings, and its format: plain lines when nothing else configured logging,
    or JSON on the root logger's stream handler (added when it has none) and on RQ's and gunicorn's own."""
    root = logging.getLogger()
    if settings.log_format == "json":
        streams = [h for h in root.handlers if type(h) is logging.StreamHandler]  # not pytest's or file handlers
        if not streams:
            streams = [logging.StreamHandler()]
            root.addHandler(streams[0])
        for handler in streams + _foreign_handlers():
            handler.setFormatter(JsonFormatter())
    elif not root.handlers:
        logging.basicConfig(format=PLAIN)
    logging.getLogger("hookline").setLevel(settings.log_level)
