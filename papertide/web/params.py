"""Parsing the dates, weeks and months in URLs; a bad value is InvalidInput (HTTP 400).

Only the years the catalog holds (1900 to 2999, see papertide.catalog.records) are read: no
list exists outside them, and a page of year 1 or 9999 could not even link to its neighbours.
"""

from __future__ import annotations

import re
from datetime import date

from papertide.catalog.records import EARLIEST_DATE, LATEST_DATE
from papertide.daily import month_bounds, week_bounds
from papertide.errors import InvalidInput

FIRST_YEAR, LAST_YEAR = EARLIEST_DATE.year, LATEST_DATE.year - 1

# ASCII digits only: \d alone also takes "٢٠٢٥-٠٥" for a month.
_DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_WEEK_RE = re.compile(r"(\d{4})-W(\d{1,2})", re.IGNORECASE | re.ASCII)
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})", re.ASCII)


def parse_day(text: str) -> date:
    """``2025-05-01`` -> date."""
    match = _DAY_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not a date (expected YYYY-MM-DD, e.g. 2025-05-01)")
    try:
        day = date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a date: {exc}") from None
    _check_year(day.year, text)
    return day


def parse_week(text: str) -> tuple[int, int]:
    """``2025-W18`` -> (ISO year, ISO week)."""
    match = _WEEK_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not an ISO week (expected YYYY-Www, e.g. 2025-W18)")
    year, week = int(match.group(1)), int(match.group(2))
    _check_year(year, text)
    try:
        week_bounds(year, week)  # refuses week 0, year 0 and a week 53 that does not exist
    except InvalidInput:
        raise InvalidInput(f"{text.strip()} is not an ISO week") from None
    return year, week


def parse_month(text: str) -> tuple[int, int]:
    """``2025-05`` -> (year, month)."""
    match = _MONTH_RE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not a month (expected YYYY-MM, e.g. 2025-05)")
    year, month = int(match.group(1)), int(match.group(2))
    _check_year(year, text)
    try:
        month_bounds(year, month)  # refuses month 0 or 13 and year 0
    except InvalidInput:
        raise InvalidInput(f"{text.strip()} is not a month") from None
    return year, month


def _check_year(year: int, text: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidInput(
            f"{text.strip()} is out of range: there are lists for the years {FIRST_YEAR} "
            f"to {LAST_YEAR} only"
        )
