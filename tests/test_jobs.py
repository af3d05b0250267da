"""The scheduler and its lock; the digest CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import smtp
from click.testing import CliRunner
from digests import TUESDAY_DIGEST, add_lists, add_subscriber, smtp_settings
from sqlalchemy import Engine, select

from papertide.cli import cli
from papertide.config import Settings
from papertide.db.schema import job_runs, leases, outbox, trending
from papertide.digest.service import digest_job
from papertide.election import Lease
from papertide.jobs import JobLock, Scheduler, every, trending_job

smtp_server = smtp.smtp_server

HOLD = """
import sys, time
from papertide.db.engine import make_engine
from papertide.jobs import JobLock
lock = JobLock(make_engine(sys.argv[1]), "scheduler")
assert lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_lock_is_exclusive_and_dies_with_its_holder(db_url: str, engine: Engine) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = JobLock(engine, "scheduler")
        assert not mine.acquire()
        assert JobLock(engine, "another job").acquire()  # locks are per name
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert mine.acquire(wait=30)  # taken over as soon as the holder is gone
        assert not JobLock(engine, "scheduler").acquire()  # and now exclusive to us
        mine.release()
        assert JobLock(engine, "scheduler").acquire()
    finally:
        holder.kill()
        holder.wait()


def test_the_scheduler_sends_each_period_once_from_one_worker(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    add_subscriber(engine, "a@example.org")
    add_subscriber(engine, "b@example.org")
    mail_settings = smtp_settings(settings, smtp_server)
    jobs = {"digest": digest_job(engine, mail_settings, smtp_server.mailer, None)}
    first, second = Scheduler(engine, mail_settings, jobs), Scheduler(engine, mail_settings, jobs)
    before = datetime(2026, 11, 24, 11, 30, tzinfo=UTC)  # 06:30 in New York: not yet
    assert first.tick(before) and not second.tick(before)  # the second worker stands by
    assert smtp_server.messages == []
    due = datetime(2026, 11, 24, 12, 5, tzinfo=UTC)
    assert first.tick(due)
    assert sorted(m.recipients[0] for m in smtp_server.wait_for(2)) == [
        "a@example.org",
        "b@example.org",
    ]
    first.tick(due + timedelta(minutes=1))
    first.stop()  # the first worker leaves; the second takes over and sends nothing again
    assert second.tick(due + timedelta(minutes=2))
    assert len(smtp_server.messages) == 2
    with engine.connect() as connection:
        runs = connection.execute(select(job_runs.c.key, job_runs.c.status)).all()
    assert ("daily:2026-11-24", "done") in runs
    second.stop()


def test_a_period_long_past_its_send_time_is_not_started(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    add_subscriber(engine, "a@example.org")
    job = digest_job(engine, smtp_settings(settings, smtp_server), smtp_server.mailer, None)
    job(datetime(2026, 11, 25, 11, 0, tzinfo=UTC))  # Tuesday's digest, 23 hours late
    with engine.connect() as connection:
        assert connection.execute(select(outbox.c.id)).first() is None
    assert smtp_server.messages == []


def test_every_runs_a_job_at_most_once_per_interval(engine: Engine, settings: Settings) -> None:
    add_lists(engine, count=3, day=datetime.now(UTC).date() - timedelta(days=1))
    job = trending_job(engine, settings)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 15)  # the start of a slot, so +1 minute is in it
    job(now)
    with engine.connect() as connection:
        assert len(connection.execute(select(trending.c.paper_id)).all()) == 3
        connection.execute(trending.delete())
        connection.commit()
    job(now + timedelta(minutes=1))  # too soon: nothing recomputed
    with engine.connect() as connection:
        assert connection.execute(select(trending.c.paper_id)).first() is None
    calls: list[datetime] = []
    counted = every(engine, "count", 15, calls.append)
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    for minutes in (0, 5, 14, 15, 16, 31):
        counted(start + timedelta(minutes=minutes))
    assert [round((c - start).total_seconds() / 60) for c in calls] == [0, 15, 31]
    # Another process (a new leader after a fail-over) does not run a slot again.
    again: list[datetime] = []
    every(engine, "count", 15, again.append)(start + timedelta(minutes=32))
    assert again == []
    with engine.connect() as connection:
        keys = connection.execute(
            select(job_runs.c.key).where(job_runs.c.job == "count").order_by(job_runs.c.key)
        ).scalars()
        assert list(keys) == [
            "2026-11-24T12:00:00+00:00",
            "2026-11-24T12:15:00+00:00",
            "2026-11-24T12:30:00+00:00",
        ]


def test_a_lease_is_held_by_one_process_until_it_expires(engine: Engine) -> None:
    now = [datetime(2026, 11, 24, 12, 0, tzinfo=UTC)]
    first = Lease(engine, "role", ttl=30, holder="a", clock=lambda: now[0])
    second = Lease(engine, "role", ttl=30, holder="b", clock=lambda: now[0])
    assert first.acquire() and first.token == 1
    assert not second.acquire() and not second.held
    now[0] += timedelta(seconds=20)
    assert first.acquire() and first.token == 1  # renewed: the same term
    now[0] += timedelta(seconds=29)
    assert not second.acquire()  # still renewed 29 s ago
    now[0] += timedelta(seconds=2)
    assert second.acquire() and second.token == 2  # expired: taken, with a new token
    assert not first.acquire() and not first.held
    second.release()  # a clean stop hands over at once
    assert first.acquire() and first.token == 3
    with engine.connect() as connection:
        row = connection.execute(select(leases.c.holder, leases.c.token)).one()
    assert tuple(row) == ("a", 3)


LEAD = """
import sys, time
from papertide.db.engine import make_engine
from papertide.election import Leadership
leadership = Leadership(make_engine(sys.argv[1]), "scheduler", ttl=3)
while not leadership.acquire():
    time.sleep(leadership.poll)
print("leading", leadership.holder, flush=True)
while True:
    time.sleep(leadership.poll)
    leadership.acquire()
"""


def test_a_standby_scheduler_takes_over_when_the_leader_is_killed(
    db_url: str, engine: Engine, settings: Settings
) -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", LEAD, db_url], stdout=subprocess.PIPE, text=True
    )
    standby = Scheduler(engine, settings.replace(scheduler_lease_seconds=3), {})
    try:
        assert leader.stdout is not None
        line = leader.stdout.readline().split()
        assert line[0] == "leading"
        standby.start(tick=0.2)
        time.sleep(2.5)
        assert not standby.lock.held  # the leader renews its term
        killed = time.monotonic()
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait()
        while not standby.lock.held and time.monotonic() - killed < 30:
            time.sleep(0.05)
        took = time.monotonic() - killed
        assert standby.lock.held
        # at most the lease and a poll (on PostgreSQL: one poll), with room for a loaded machine
        assert took < 3 + 1 + 3
        with engine.connect() as connection:
            row = connection.execute(select(leases.c.holder, leases.c.token)).one()
        assert row.holder == standby.lock.holder != line[1]
        assert row.token == 2
    finally:
        leader.kill()
        leader.wait()
        standby.stop()
    with engine.connect() as connection:  # a clean stop expires the lease
        assert connection.execute(select(leases.c.expires_at)).scalar_one() <= datetime.now(UTC)


def invoke(db_url: str, sink: smtp.SmtpSink, *args: str) -> tuple[int, str]:
    env = {
        "PAPERTIDE_DATABASE_URL": db_url,
        "PAPERTIDE_MAIL_BACKEND": "smtp",
        "PAPERTIDE_SMTP_HOST": sink.host,
        "PAPERTIDE_SMTP_PORT": str(sink.port),
        "PAPERTIDE_SMTP_SECURITY": "none",
    }
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_digest_commands(db_url: str, engine: Engine, smtp_server: smtp.SmtpSink) -> None:
    add_lists(engine)
    add_subscriber(engine, "a@example.org", size=3)
    add_subscriber(engine, "b@example.org", size=3)
    code, out = invoke(
        db_url, smtp_server, "digest", "send", "--period", TUESDAY_DIGEST.key, "--dry-run"
    )
    assert code == 0 and "2 digests would be sent" in out and "a@example.org" in out
    assert smtp_server.messages == []
    code, out = invoke(
        db_url,
        smtp_server,
        "digest",
        "preview",
        "--email",
        "a@example.org",
        "--period",
        TUESDAY_DIGEST.key,
    )
    assert code == 0 and "Subject: Papertide daily: Paper 0" in out and "#3 · 100 upvotes" in out
    code, out = invoke(
        db_url,
        smtp_server,
        "digest",
        "send",
        "--period",
        TUESDAY_DIGEST.key,
        "--email",
        "a@example.org",
        "--quiet",
    )
    assert code == 0 and "sent 1" in out
    assert [m.recipients for m in smtp_server.wait_for(1)] == [["a@example.org"]]
    code, out = invoke(
        db_url, smtp_server, "digest", "send", "--period", TUESDAY_DIGEST.key, "--quiet"
    )
    assert code == 0 and "sent 1" in out and len(smtp_server.wait_for(2)) == 2
    code, out = invoke(
        db_url, smtp_server, "digest", "send", "--period", TUESDAY_DIGEST.key, "--quiet"
    )
    assert code == 3  # nothing left to send
    code, out = invoke(db_url, smtp_server, "digest", "status")
    assert code == 0 and "outbox sent" in out and "2" in out
    code, out = invoke(db_url, smtp_server, "digest", "send", "--period", "daily:2026-11-28")
    assert code == 2 and "weekdays" in out
    code, out = invoke(db_url, smtp_server, "digest", "preview", "--email", "nobody@example.org")
    assert code == 1 and "no subscription" in out
