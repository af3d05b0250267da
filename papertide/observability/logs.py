"""Logging set-up: one line per record, human text or JSON, with the request id in each.

``log_format = "text"`` (the default) writes ``time level logger [request id] message``;
``"json"`` writes one JSON object per line with ``time``, ``level``, ``logger``, ``message``,
``request_id`` and every extra field the call passed (``extra={"job": ...}``), plus ``exc`` with
the traceback of an error. The request id comes from a context variable that
:class:`papertide.observability.middleware.RequestObservability` sets for each request; thread
pools copy context variables, so records made in a synchronous endpoint carry it too.

The values of secret settings (``secret_key``, ``smtp_password``, the password in
``database_url``) are replaced by ``***`` in every line, whatever logged them: a safety net
behind the rule that no code logs a secret, a token or a raw request path.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from papertide.config import Settings
from papertide.setting_list import SETTINGS

request_id_var: ContextVar[str | None] = ContextVar("papertide_request_id", default=None)

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
# (uvicorn adds color_message: its message with terminal colours.)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}
# Shorter secrets are not redacted: replacing every "abc" in the log would garble it.
MIN_SECRET_LENGTH = 4
_HANDLER_MARK = "_papertide_handler"
ACCESS_LOGGER = "papertide.access"


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or None outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class Redactor:
    """Replaces known secret values by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self.secrets = sorted(unique, key=len, reverse=True)  # longest first: no partial leftovers

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def secret_values(settings: Settings) -> list[str]:
    """The values of ``settings``' secret settings, and the password inside the database URL
    (as written and percent-encoded)."""
    values: list[str] = []
    for setting in SETTINGS:
        value = settings.values.get(setting.name)
        if not setting.secret or not isinstance(value, str) or not value:
            continue
        if setting.name == "database_url":
            try:
                password = make_url(value).password
            except ArgumentError:
                password = None
            if password:
                values += [str(password), quote(str(password), safe="")]
            continue
        values.append(value)
    return values


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """``2026-11-30 07:00:01,123 INFO papertide.jobs [3f9a...] message key=value``."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        line = super().format(record)
        extras = _extras(record) if record.name != ACCESS_LOGGER else {}
        if extras:
            fields = " ".join(f"{k}={v}" for k, v in extras.items())
            head, sep, tail = line.partition("\n")  # after the message, before a traceback
            line = f"{head} {fields}{sep}{tail}"
        return self.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's docstring)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, self.redact(value) if isinstance(value, str) else value)
        if record.exc_info:
            entry["exc"] = self.redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.redact(self.formatStack(record.stack_info))
        line = orjson.dumps(entry, default=str).decode()
        return self.redact(line)


def make_handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``settings``' log format to ``stream`` (standard error by default)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    redact = Redactor(secret_values(settings))
    formatter: logging.Formatter = (
        JsonFormatter(redact) if settings.log_format == "json" else TextFormatter(redact)
    )
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record of this process through one handler in ``settings.log_format``.

    Called by ``papertide serve`` and by each worker process (:mod:`papertide.web.asgi`). It
    replaces plain stream handlers on the root logger (``logging.basicConfig``'s, or its own from
    an earlier call) and keeps others (a test runner's capture). Uvicorn's loggers go through
    it; uvicorn's access log is switched off, as the middleware writes one line per request.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    handler = make_handler(settings, stream)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    return handler
