"""One log format for every cbcc process: JSON lines on stderr, quiet by default.

cbcc's own loggers speak from INFO, libraries from WARNING (amqtt from ERROR, uvicorn's access
log never, uvicorn's own logging config is not applied); ``cbcc --debug`` shows everything, with
tracebacks. The command layer calls :func:`configure_logging` once; ``gateway run`` again after
uvicorn is imported.
"""

from __future__ import annotations

import json
import logging
import sys
import time

DEBUG = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (and exc with --debug)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and DEBUG:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


# Libraries and the level they may speak at without --debug.
_QUIET = {
    "amqtt": logging.ERROR,
    "transitions": logging.ERROR,
    "alembic": logging.WARNING,
    "uvicorn": logging.WARNING,
    "uvicorn.error": logging.WARNING,
    "uvicorn.access": logging.CRITICAL + 1,
    "httpx": logging.WARNING,
    "paho": logging.WARNING,
    "asyncio": logging.WARNING,
}


def configure_logging(debug: bool | None = None) -> None:
    """Route every logger (ours and the libraries') to one JSON handler on stderr; ``debug`` None
    keeps the last choice."""
    global DEBUG
    if debug is not None:
        DEBUG = debug
    debug = DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("cbcc").setLevel(logging.DEBUG if debug else logging.INFO)
    for name, level in _QUIET.items():
        lg = logging.getLogger(name)
        lg.setLevel(logging.DEBUG if debug else level)
        lg.handlers.clear()
        lg.propagate = True
