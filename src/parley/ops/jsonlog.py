"""Logging set-up: plain text for people, one JSON object per line for log pipelines.

JSON lines carry ``ts`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``msg`` (the formatted message), every ``extra=`` field given to
the logging call, any fields fixed at set-up (e.g. ``node``), and ``exc``
(the formatted traceback) when there is one::

    {"ts":"2024-05-01T12:00:00.123Z","level":"info","logger":"parley","msg":"listening",
     "node":"n1","port":8001}
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = ["JsonFormatter", "TEXT_FORMAT", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def _default(value: Any) -> Any:
    """JSON for values ``json`` does not know: sets as lists, the rest as ``str``."""
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, tz=_dt.UTC)
        out: dict[str, Any] = {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(self.fields)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _json.dumps(out, default=_default, ensure_ascii=False, separators=(",", ":"))


def configure_logging(
    level: str,
    json: bool,
    *,
    stream: TextIO | None = None,
    fields: Mapping[str, Any] | None = None,
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr), as JSON or text.

    Replaces the root logger's handlers (safe to call again).  ``fields`` are
    added to every JSON line (e.g. ``{"node": "n1"}``).  Returns the handler.
    The per-request access log and Alembic's chatter are kept at WARNING.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter(fields))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler
