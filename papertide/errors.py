"""The handful of exceptions Papertide raises, each carrying its HTTP status.

The web layer maps them, in one place, to one JSON error shape and one HTML error page; the CLI
prints their message and exits non-zero. Messages name the action and the id that failed.
"""

from __future__ import annotations


class PapertideError(Exception):
    """Base class: an error a user or operator can act on."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PapertideError):
    """A setting has an invalid value; start-up stops."""

    code = "invalid_setting"


class InvalidInput(PapertideError):
    """A request or a record is malformed (bad arXiv id, bad date, unparseable line)."""

    status = 400
    code = "invalid_input"


class NotFound(PapertideError):
    """The thing asked for does not exist (or is hidden from the asker)."""

    status = 404
    code = "not_found"


class Conflict(PapertideError):
    """The request clashes with the current state (duplicate, already exists)."""

    status = 409
    code = "conflict"


class NotReady(PapertideError):
    """The database is unreachable or has migrations pending."""

    status = 503
    code = "not_ready"


class DatabaseUnavailable(NotReady):
    """The database refused for now: its disk is full, it is read-only, writers stayed locked
    out too long, or it cannot be reached (``code`` says which; see papertide/db/failures.py).
    Nothing was written; ``retry_after`` seconds is a fair time to wait before trying again."""

    def __init__(self, message: str, code: str, retry_after: int) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class PermissionDenied(PapertideError):
    """The asker may not do this: not logged in (``login_required``), or lacks the role.

    Objects the asker may not even see answer NotFound instead, so their existence leaks not.
    """

    status = 403
    code = "forbidden"

    def __init__(self, message: str, *, login_required: bool = False) -> None:
        super().__init__(message)
        self.login_required = login_required
        if login_required:
            self.status = 401
            self.code = "login_required"


class RateLimited(PapertideError):
    """Too many attempts; ``retry_after`` seconds until the window resets."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
