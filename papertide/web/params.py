"""Parsing the dates, weeks and months in URLs; a bad value is InvalidInput (HTTP 400)."""

from __future__ import annotations

import re
from datetime import date

from papertide.daily import month_bounds, week_bounds
from papertide.errors import InvalidInput

_DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WEEK_RE = re.compile(r"(\d{4})-W(\d{1,2})", re.IGNORECASE)
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


def parse_day(text: str) -> date:
    """``2025-05-01`` -> date."""
    match = _DAY_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not a date (expected YYYY-MM-DD, e.g. 2025-05-01)")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a date: {exc}") from None


def parse_week(text: str) -> tuple[int, int]:
    """``2025-W18`` -> (ISO year, ISO week)."""
    match = _WEEK_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not an ISO week (expected YYYY-Www, e.g. 2025-W18)")
    year, week = int(match.group(1)), int(match.group(2))
    week_bounds(year, week)  # raises InvalidInput for week 0 or a week 53 that does not exist
    return year, week


def parse_month(text: str) -> tuple[int, int]:
    """``2025-05`` -> (year, month)."""
    match = _MONTH_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not a month (expected YYYY-MM, e.g. 2025-05)")
    year, month = int(match.group(1)), int(match.group(2))
    month_bounds(year, month)  # raises InvalidInput for month 0 or 13
    return year, month
