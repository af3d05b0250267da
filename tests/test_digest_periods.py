"""Digest periods and the MIME writer: pure functions, no database."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from papertide.config import load_settings
from papertide.digest.mime import multipart_alternative
from papertide.digest.periods import (
    daily_period,
    latest_due,
    parse_period,
    period_covering,
    weekly_period,
)
from papertide.errors import InvalidInput

SETTINGS = load_settings(env={"PAPERTIDE_DIGEST_SEND_TIME": "07:00"})


def test_daily_periods_cover_the_lists_since_the_previous_weekday() -> None:
    tuesday = daily_period(date(2026, 11, 24))
    assert (tuesday.key, tuesday.first_day, tuesday.last_day) == (
        "daily:2026-11-24",
        date(2026, 11, 23),
        date(2026, 11, 23),
    )
    monday = daily_period(date(2026, 11, 30))
    assert (monday.first_day, monday.last_day) == (date(2026, 11, 27), date(2026, 11, 29))
    assert monday.label == "Friday 27 to Sunday 29 November 2026"
    with pytest.raises(InvalidInput, match="weekdays"):
        daily_period(date(2026, 11, 28))


def test_weekly_periods_are_iso_weeks_sent_the_next_monday() -> None:
    week = weekly_period(2026, 48)
    assert (week.first_day, week.last_day, week.send_on) == (
        date(2026, 11, 23),
        date(2026, 11, 29),
        date(2026, 11, 30),
    )
    assert parse_period("weekly:2026-W48") == week
    assert parse_period("daily:2026-11-24") == daily_period(date(2026, 11, 24))
    for bad in ("daily:2026-11-28", "weekly:2026-W60", "monthly:2026-11", "daily:2026-13-01"):
        with pytest.raises(InvalidInput):
            parse_period(bad)


def test_latest_due_waits_for_the_send_time_in_the_site_time_zone() -> None:
    # 07:00 in New York is 12:00 UTC in November.
    before = datetime(2026, 11, 24, 11, 59, tzinfo=UTC)
    after = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert latest_due("daily", before, SETTINGS).key == "daily:2026-11-23"
    assert latest_due("daily", after, SETTINGS).key == "daily:2026-11-24"
    saturday = datetime(2026, 11, 28, 18, tzinfo=UTC)
    assert latest_due("daily", saturday, SETTINGS).key == "daily:2026-11-27"
    assert latest_due("weekly", saturday, SETTINGS).key == "weekly:2026-W47"
    monday_late = datetime(2026, 11, 30, 13, tzinfo=UTC)
    assert latest_due("weekly", monday_late, SETTINGS).key == "weekly:2026-W48"


@given(st.dates(min_value=date(2000, 1, 3), max_value=date(2090, 12, 1)))
def test_every_list_day_belongs_to_exactly_the_period_that_covers_it(day: date) -> None:
    for kind in ("daily", "weekly"):
        period = period_covering(kind, day)
        assert period.first_day <= day <= period.last_day
        assert parse_period(period.key) == period
        assert period.send_on > period.last_day


@given(
    subject=st.text(min_size=1, max_size=200).filter(lambda s: s.strip() and "\r" not in s),
    text=st.text(max_size=2000),
    html=st.text(max_size=2000),
)
def test_the_mime_writer_round_trips_through_the_standard_parser(
    subject: str, text: str, html: str
) -> None:
    subject = " ".join(subject.split())
    raw = multipart_alternative(
        [("From", "Papertide <p@example.org>"), ("To", "ünï@example.org"), ("Subject", subject)],
        text,
        html,
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(message["Subject"]) == subject
    assert str(message["To"]) == "ünï@example.org"
    assert message.get_content_type() == "multipart/alternative"

    def lf(value: str) -> str:
        return value.replace("\r\n", "\n").replace("\r", "\n")

    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    assert lf(plain.get_content()) == lf(text)
    assert lf(rich.get_content()) == lf(html)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
