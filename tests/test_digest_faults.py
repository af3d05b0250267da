"""Fault test: ``papertide digest send`` killed (SIGKILL) at random points, restarted until done.

Ten rounds, each a new daily period, over 500 subscribers: a subprocess sender is started and
killed after a random delay (seeded; spread over its run by a first, unkilled calibration run,
so kills land while starting, planning, composing, between committing *sending* and the SMTP
DATA, and between the server's "250" and the row being marked *sent*), then restarted until a
run exits 0 (or 3: killed after its last row was marked sent). After each kill: at most one
row in *sending*, every row marked sent arrived, and nothing arrived that is not sent or
sending. After each round: every subscriber got exactly the one Message-ID of its outbox row,
none missing; repeats (the same Message-ID again, same bytes) number at most the kills and at
most the outbox's ``resends``. The counts are reported.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import smtp
from digests import add_lists, add_subscriber
from sqlalchemy import Engine, select, text

from papertide.cli_digest import EXIT_NOTHING
from papertide.db.schema import outbox, subscriptions
from papertide.digest.periods import Period, daily_period

smtp_server = smtp.smtp_server

ROUNDS = 10
SUBSCRIBERS = 500
MAX_KILLS = 4  # a round plans 1 to MAX_KILLS kills; the run after the last one is left alone
SEED = 20261124
RUN_TIMEOUT_S = 180.0  # one unkilled run
MAX_BUSY = 25  # restarts refused because the killed sender's lock was not yet released
FIRST_SEND_DAY = date(2026, 11, 24)
APP_NAME = "papertide-digest-fault-test"


@dataclass
class Timing:
    """An unkilled run: seconds to the first message, and in all."""

    first_s: float
    full_s: float

    def delay(self, rng: random.Random, left: int) -> float:
        """When to kill a run that has ``left`` rows to send: from half its start-up (still
        importing) to its expected end, so later runs of a round, with less left, are not
        killed only while starting."""
        work = (self.full_s - self.first_s) * left / SUBSCRIBERS
        return rng.uniform(0.5 * self.first_s, self.first_s + work)


@dataclass
class RoundResult:
    period: str
    kills: int
    in_flight: int  # kills that left a row in sending (its message's fate unknown)
    busy: int  # restarts that found the dead sender's lock still held
    runs: int
    deliveries: int
    repeats: int  # deliveries of a Message-ID already received
    resends: int  # the outbox's count of rows sent again
    seconds: float

    def line(self, number: int) -> str:
        return (
            f"  round {number} {self.period}: {self.kills} kills "
            f"({self.in_flight} with a message in flight), {self.repeats} repeated deliveries, "
            f"{self.resends} resends, {self.runs} runs"
            + (f" ({self.busy} refused: lock still held)" if self.busy else "")
            + f", {self.seconds:.1f} s"
        )


def weekday_periods(count: int) -> list[Period]:
    """``count`` daily periods in a row (weekdays), each covering days of its own."""
    periods: list[Period] = []
    day = FIRST_SEND_DAY
    while len(periods) < count:
        if day.weekday() < 5:
            periods.append(daily_period(day))
        day += timedelta(days=1)
    return periods


def sender_env(db_url: str, sink: smtp.SmtpSink) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PAPERTIDE_") or key.startswith("PAPERTIDE_TEST_")
    }
    env.update(
        PAPERTIDE_DATABASE_URL=db_url,
        PAPERTIDE_MAIL_BACKEND="smtp",
        PAPERTIDE_SMTP_HOST=sink.host,
        PAPERTIDE_SMTP_PORT=str(sink.port),
        PAPERTIDE_SMTP_SECURITY="none",
        PAPERTIDE_MAIL_FROM="Papertide <digest@papertide.example>",
        PGAPPNAME=APP_NAME,  # libpq names the sender's PostgreSQL sessions (see settle)
    )
    return env


def send_command(period: Period) -> list[str]:
    return [sys.executable, "-m", "papertide", "digest", "send", "--period", period.key, "--quiet"]


def for_period(sink: smtp.SmtpSink, period: Period) -> list[smtp.Received]:
    """What the sink received so far for ``period`` (its ``X-Papertide-Period`` header)."""
    return [m for m in sink.wait_for(0) if m.message["X-Papertide-Period"] == period.key]


def statuses(engine: Engine, period: Period) -> dict[int, str]:
    """subscription id -> outbox status, for the period's rows."""
    with engine.connect() as connection:
        found = connection.execute(
            select(outbox.c.subscription_id, outbox.c.status).where(outbox.c.period == period.key)
        )
        return {sub_id: status for sub_id, status in found}


def open_rows(engine: Engine, period: Period) -> int:
    """Rows still to send; every subscriber's when the period is not planned yet."""
    found = statuses(engine, period)
    if not found:
        return SUBSCRIBERS
    return sum(status != "sent" for status in found.values())


class Sender:
    """Runs ``papertide digest send`` for a period in a subprocess."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.runs = 0

    def start(self) -> subprocess.Popen[str]:
        self.runs += 1
        return subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finish(self, process: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError(f"digest send ran over {timeout:.0f} s") from None
        return process.returncode, output


def calibrate(sender: Sender, engine: Engine, sink: smtp.SmtpSink, period: Period) -> Timing:
    """One unkilled run: how long until the first message goes out, and until it exits."""
    started = time.monotonic()
    process = sender.start()
    first: float | None = None
    while process.poll() is None and time.monotonic() - started < RUN_TIMEOUT_S:
        if first is None and for_period(sink, period):
            first = time.monotonic() - started
            if engine.dialect.name == "postgresql":  # settle() can tell the sender's sessions
                assert sender_sessions(engine) > 0, "PGAPPNAME did not name the sessions"
        time.sleep(0.005)
    code, output = sender.finish(process, RUN_TIMEOUT_S)
    full = time.monotonic() - started
    assert code == 0, f"digest send exited {code}: {output}"
    return Timing(first_s=first or full / 3, full_s=full)


def sender_sessions(engine: Engine) -> int:
    """The subprocess senders' PostgreSQL sessions (named by ``PGAPPNAME``)."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    with engine.connect() as connection:
        return int(connection.execute(query, {"name": APP_NAME}).scalar_one())


def settle(engine: Engine) -> None:
    """Wait until the killed sender's PostgreSQL sessions are gone: a COMMIT it had sent is
    then applied or not, for good, and its advisory lock is free. (SQLite needs no wait.)"""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + 30
    while sender_sessions(engine):
        assert time.monotonic() < deadline, "the killed sender's sessions did not end"
        time.sleep(0.01)


def check_after_kill(
    engine: Engine, sink: smtp.SmtpSink, period: Period, subscribers: dict[str, int]
) -> bool:
    """The state a SIGKILL leaves: whether a row was left in sending.

    Read in this order so that the sink's lag cannot make a correct sender fail: sent rows
    first (each was received before it was marked), then what arrived (each was committed as
    sending before it went out), then the rows again."""
    settle(engine)
    sent_before = {sub for sub, status in statuses(engine, period).items() if status == "sent"}
    arrived = {subscribers[m.recipients[0]] for m in for_period(sink, period)}
    after = statuses(engine, period)
    sending = [sub for sub, status in after.items() if status == "sending"]
    assert len(sending) <= 1, f"a kill left {len(sending)} rows in sending: {sending}"
    unreceived = sent_before - arrived
    assert not unreceived, f"marked sent but never received: subscriptions {sorted(unreceived)}"
    unmarked = arrived - {sub for sub, status in after.items() if status in ("sent", "sending")}
    assert not unmarked, f"received but neither sent nor sending: {sorted(unmarked)}"
    return bool(sending)


def send_with_kills(
    sender: Sender,
    engine: Engine,
    sink: smtp.SmtpSink,
    period: Period,
    subscribers: dict[str, int],
    delay: Callable[[int], float],
    kills_wanted: int,
) -> tuple[int, int, int]:
    """Start, kill after ``delay(rows left)`` (``kills_wanted`` times at most), restart until a
    run exits 0 (or 3, nothing left, when the last kill came after the last row was marked
    sent): (kills, kills that left a row in sending, restarts refused by the lock)."""
    kills = in_flight = busy = 0
    while True:
        process = sender.start()
        if kills < kills_wanted:
            try:
                output, _ = process.communicate(timeout=delay(open_rows(engine, period)))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.communicate()
                kills += 1
                in_flight += check_after_kill(engine, sink, period, subscribers)
                continue
            code = process.returncode
        else:
            code, output = sender.finish(process, RUN_TIMEOUT_S)
        if code == 0 or (code == EXIT_NOTHING and kills):  # 3: killed after the last "sent"
            return kills, in_flight, busy
        # PostgreSQL frees a dead session's advisory lock once its backend notices the hang-up.
        if code == 1 and "another process is sending" in output and busy < MAX_BUSY:
            busy += 1
            time.sleep(0.2)
            continue
        raise AssertionError(f"digest send exited {code} after {kills} kills: {output}")


def check_round(
    engine: Engine, sink: smtp.SmtpSink, period: Period, emails: dict[int, str]
) -> tuple[int, int, int]:
    """Exactly once for the period: (deliveries, repeats, the outbox's resends)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(outbox.c.subscription_id, outbox.c.status, outbox.c.message_id, outbox.c.resends)
            .where(outbox.c.period == period.key)
            .order_by(outbox.c.subscription_id)
        ).all()
    assert sorted(r.subscription_id for r in rows) == sorted(emails)
    not_sent = Counter(r.status for r in rows if r.status != "sent")
    assert not not_sent, f"{period.key}: rows not sent: {dict(not_sent)}"
    assert len({r.message_id for r in rows}) == len(rows), "a Message-ID used twice"
    everything = sink.wait_for(0)
    received = [m for m in everything if m.message["X-Papertide-Period"] == period.key]
    stray = [str(h) for m in everything if (h := m.message["X-Papertide-Period"]) != period.key]
    assert not stray, f"mail for other periods during {period.key}: {Counter(stray)}"
    ids: dict[str, set[str]] = defaultdict(set)
    raw: dict[str, set[bytes]] = defaultdict(set)
    for m in received:
        assert len(m.recipients) == 1, m.recipients
        message_id = str(m.message["Message-ID"])
        ids[m.recipients[0]].add(message_id)
        raw[message_id].add(m.raw)
    missing = [emails[r.subscription_id] for r in rows if not ids.get(emails[r.subscription_id])]
    assert not missing, f"{period.key}: {len(missing)} subscribers got nothing: {missing[:5]}"
    for r in rows:
        got = ids[emails[r.subscription_id]]
        assert got == {r.message_id}, f"{emails[r.subscription_id]} got {got}, not {r.message_id}"
    assert set(ids) == set(emails.values()), "mail to someone who is not subscribed"
    changed = [message_id for message_id, versions in raw.items() if len(versions) > 1]
    assert not changed, f"sent again with different bytes: {changed[:3]}"
    repeats = len(received) - len(rows)
    return len(received), repeats, sum(r.resends for r in rows)


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str], None]]:
    """Prints a line to the terminal even when pytest captures output (and to stderr)."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(line, file=sys.stderr, flush=True)

    yield say


@pytest.mark.slow
def test_killed_senders_deliver_each_digest_exactly_once(
    engine_name: str,
    db_url: str,
    engine: Engine,
    smtp_server: smtp.SmtpSink,
    tmp_path: Path,
    report: Callable[[str], None],
    record_property: Callable[[str, object], None],
) -> None:
    # Up to twice the rounds: on a loaded machine runs and kill delays drift apart, and the
    # test goes on until enough kills have landed (at least ROUNDS, over at least ROUNDS rounds).
    calibration, *periods = weekday_periods(2 * ROUNDS + 1)
    for n, period in enumerate([calibration, *periods]):
        add_lists(engine, day=period.first_day, first=100 + 20 * n)
    for n in range(SUBSCRIBERS):
        add_subscriber(engine, f"reader{n:03d}@example.org")
    with engine.connect() as connection:
        emails = dict(connection.execute(select(subscriptions.c.id, subscriptions.c.email)).all())
    assert len(emails) == SUBSCRIBERS
    env = sender_env(db_url, smtp_server)
    rng = random.Random(SEED)

    calibrator = Sender(send_command(calibration), env, tmp_path)
    timing = calibrate(calibrator, engine, smtp_server, calibration)
    deliveries, repeats, resends = check_round(engine, smtp_server, calibration, emails)
    assert (deliveries, repeats, resends) == (SUBSCRIBERS, 0, 0)
    report(
        f"\ndigest fault test [{engine_name}]: an unkilled run sends {SUBSCRIBERS} digests in "
        f"{timing.full_s:.1f} s (first after {timing.first_s:.1f} s)"
    )

    results: list[RoundResult] = []
    for number, period in enumerate(periods, start=1):
        if number > ROUNDS and sum(r.kills for r in results) >= ROUNDS:
            break
        started = time.monotonic()
        smtp_server.messages.clear()  # each round sees only its own mail
        sender = Sender(send_command(period), env, tmp_path)
        kills, in_flight, busy = send_with_kills(
            sender,
            engine,
            smtp_server,
            period,
            {email: sub_id for sub_id, email in emails.items()},
            lambda left: timing.delay(rng, left),
            rng.randint(1, MAX_KILLS),
        )
        deliveries, repeats, resends = check_round(engine, smtp_server, period, emails)
        result = RoundResult(
            period.key,
            kills,
            in_flight,
            busy,
            sender.runs,
            deliveries,
            repeats,
            resends,
            time.monotonic() - started,
        )
        results.append(result)
        report(result.line(number))
        # A repeat comes only from a row found in sending, which only a kill leaves behind.
        assert repeats <= resends <= in_flight <= kills, result

    kills = sum(r.kills for r in results)
    repeats = sum(r.repeats for r in results)
    total = (
        f"digest fault test [{engine_name}]: {len(results)} rounds, {SUBSCRIBERS} subscribers, "
        f"{kills} kills, {repeats} repeated deliveries (same Message-ID)"
    )
    report(total)
    record_property("digest_fault_kills", kills)
    record_property("digest_fault_repeats", repeats)
    record_property("digest_fault_summary", total)
    assert kills >= ROUNDS, "too few kills landed: the delays miss the runs"
