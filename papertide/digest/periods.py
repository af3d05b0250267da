"""Digest periods: which list days a digest covers, its key, and when it goes out.

* **Daily** digests go out each weekday (Monday to Friday) at ``digest_send_time`` in the site
  time zone, with the lists since the previous weekday: Tuesday's holds Monday's list,
  Monday's holds Friday's, Saturday's and Sunday's. Key: ``daily:<send date>``.
* **Weekly** digests go out on Monday at the same time with the previous ISO week (Monday to
  Sunday). Key: ``weekly:<ISO year>-W<week>``.

A period is due once its send moment has passed; the scheduler sends only the latest due
period of each kind, so a server that was down does not mail out last week's news.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from papertide.config import Settings
from papertide.errors import InvalidInput

KINDS = ("daily", "weekly")
_DAILY = re.compile(r"daily:(\d{4}-\d{2}-\d{2})")
_WEEKLY = re.compile(r"weekly:(\d{4})-W(\d{2})")


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # daily | weekly
    key: str
    first_day: date  # first list day covered
    last_day: date  # last list day covered (inclusive)
    send_on: date  # the local date it goes out

    @property
    def label(self) -> str:
        """'Monday 30 November 2026', 'Friday 27 to Sunday 29 November 2026' or 'week 48'."""
        if self.kind == "weekly":
            year, week, _ = self.first_day.isocalendar()
            return f"week {week} of {year} ({_span(self.first_day, self.last_day)})"
        if self.first_day == self.last_day:
            return _day(self.first_day, year=True)
        return _span(self.first_day, self.last_day)


def _day(day: date, *, year: bool = False, month: bool = True) -> str:
    text = f"{day:%A} {day.day}"
    if month:
        text += f" {day:%B}"
    return f"{text} {day.year}" if year else text


def _span(first: date, last: date) -> str:
    same_month = (first.year, first.month) == (last.year, last.month)
    return f"{_day(first, month=not same_month)} to {_day(last, year=True)}"


def daily_period(send_on: date) -> Period:
    if send_on.weekday() >= 5:
        raise InvalidInput(f"daily digests go out on weekdays; {send_on} is a {send_on:%A}")
    back = 3 if send_on.weekday() == 0 else 1
    return Period(
        "daily",
        f"daily:{send_on.isoformat()}",
        send_on - timedelta(days=back),
        send_on - timedelta(days=1),
        send_on,
    )


def weekly_period(iso_year: int, iso_week: int) -> Period:
    try:
        monday = date.fromisocalendar(iso_year, iso_week, 1)
    except ValueError:
        raise InvalidInput(f"{iso_year} has no ISO week {iso_week}") from None
    return Period(
        "weekly",
        f"weekly:{iso_year}-W{iso_week:02d}",
        monday,
        monday + timedelta(days=6),
        monday + timedelta(days=7),
    )


def parse_period(key: str) -> Period:
    """The period of a key such as ``daily:2026-11-30`` or ``weekly:2026-W48``."""
    if match := _DAILY.fullmatch(key):
        try:
            send_on = date.fromisoformat(match[1])
        except ValueError:
            raise InvalidInput(f"period {key!r}: {match[1]} is not a date") from None
        return daily_period(send_on)
    if match := _WEEKLY.fullmatch(key):
        return weekly_period(int(match[1]), int(match[2]))
    raise InvalidInput(f"period {key!r} is not daily:YYYY-MM-DD (a weekday) or weekly:YYYY-Www")


def send_time(settings: Settings) -> time:
    hours, minutes = settings.digest_send_time.split(":")
    return time(int(hours), int(minutes))


def send_moment(period: Period, settings: Settings) -> datetime:
    """When ``period`` goes out, as an aware datetime."""
    return datetime.combine(period.send_on, send_time(settings), ZoneInfo(settings.timezone))


def latest_due(kind: str, now: datetime, settings: Settings) -> Period:
    """The newest period of ``kind`` whose send moment is not after ``now``."""
    if kind not in KINDS:
        raise InvalidInput(f"digest frequency {kind!r} is not one of {', '.join(KINDS)}")
    local = now.astimezone(ZoneInfo(settings.timezone))
    day = local.date()
    if local.time() < send_time(settings):
        day -= timedelta(days=1)
    if kind == "daily":
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return daily_period(day)
    monday = day - timedelta(days=day.weekday())
    year, week, _ = (monday - timedelta(days=7)).isocalendar()
    return weekly_period(year, week)


def resolve(name: str, now: datetime, settings: Settings) -> Period:
    """``daily``/``weekly`` (the latest due period) or an explicit key."""
    if name in KINDS:
        return latest_due(name, now, settings)
    return parse_period(name)


def period_covering(kind: str, day: date) -> Period:
    """The period of ``kind`` whose lists include ``day``."""
    if kind == "weekly":
        year, week, _ = day.isocalendar()
        return weekly_period(year, week)
    send_on = day + timedelta(days=1)
    while send_on.weekday() >= 5:
        send_on += timedelta(days=1)
    return daily_period(send_on)
