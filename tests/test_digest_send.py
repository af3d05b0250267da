"""Digests through a real SMTP server (aiosmtpd on loopback): what arrives, exactly once."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import smtp
from digests import (
    TUESDAY_DIGEST,
    WEEK_48,
    add_lists,
    add_subscriber,
    sent_on,
    smtp_settings,
)
from people import add_user
from sqlalchemy import Engine, select

from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import outbox, paper_marks, papers, subscriptions
from papertide.digest import subscriptions as subs
from papertide.digest.sender import DigestSender

smtp_server = smtp.smtp_server


def send(engine: Engine, settings: Settings, sink: smtp.SmtpSink, *periods: object) -> object:
    sender = DigestSender(
        engine, smtp_settings(settings, sink), sink.mailer(), now=sent_on(TUESDAY_DIGEST)
    )
    return sender.run(list(periods))  # type: ignore[arg-type]


def test_digest_arrives_with_headers_and_both_parts(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    sub = add_subscriber(engine, "reader@example.org", size=4)
    settings = settings.replace(mail_from="Équipe Papertide <digest@papertide.example>")
    report = send(engine, settings, smtp_server, TUESDAY_DIGEST)
    assert report.sent == 1 and report.complete  # type: ignore[attr-defined]
    [got] = smtp_server.wait_for(1)
    message = got.message
    assert got.envelope_from == "digest@papertide.example"
    assert got.recipients == ["reader@example.org"]
    assert str(message["From"]) == "Équipe Papertide <digest@papertide.example>"
    assert b"=?utf-8?" in got.raw.split(b"\r\n\r\n", 1)[0]  # non-ASCII headers encoded
    assert str(message["Subject"]).startswith("Papertide daily: Paper 0: Schrödinger bridges")
    assert message["Date"] is not None
    with engine.connect() as connection:
        stored_id = connection.execute(select(outbox.c.message_id)).scalar_one()
    assert message["Message-ID"] == stored_id
    unsubscribe = f"http://127.0.0.1:8000/subscriptions/{sub.token}/unsubscribe"
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    # Top four by upvotes, in order, with why they trend; math as Unicode, no raw TeX.
    ranks = re.findall(r"#(\d) · (\d+) upvotes, #(\d) on Monday's list", text)
    assert ranks == [("1", "120", "1"), ("2", "110", "2"), ("3", "100", "3"), ("4", "90", "4")]
    assert "Paper 4:" not in text
    assert "α-divergences" in text and "O(n log n)" in text and "\\alpha" not in text
    assert "50% less data" in text  # a percent sign in prose is not a TeX comment
    assert unsubscribe in text and unsubscribe in html
    # HTML: escaped abstract, inline styles only, no scripts, no style blocks.
    assert "&lt;b&gt;tags&lt;/b&gt;" in html and "<b>tags</b>" not in html
    assert "<script" not in html and "<style" not in html and 'style="' in html
    assert 'href="https://github.com/lab/p0"' in html


def test_rules_and_sent_papers_shape_each_digest(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    daily = add_subscriber(engine, "daily@example.org", size=3)
    weekly = add_subscriber(engine, "weekly@example.org", size=3, frequency="weekly")
    vision = add_subscriber(engine, "vision@example.org", size=3)
    with write_transaction(engine) as connection:
        subs.update_preferences(
            connection,
            vision,
            frequency="daily",
            size=3,
            personal=False,
            include={"categories": ["cs.CV"]},
            exclude={},
        )
    send(engine, settings, smtp_server, TUESDAY_DIGEST, WEEK_48)
    smtp_server.wait_for(3)
    titles = {
        address: re.findall(r"Paper (\d+):", m.message.get_body(("plain",)).get_content())
        for address in ("daily@example.org", "vision@example.org", "weekly@example.org")
        for m in smtp_server.for_recipient(address)
    }
    assert titles["vision@example.org"] == ["1"]  # only the cs.CV paper
    assert titles["daily@example.org"] == ["0", "1", "2"]
    assert titles["weekly@example.org"] == ["0", "1", "2"]
    # The daily subscriber switches to weekly: the week's digest leaves out what they got.
    with write_transaction(engine) as connection:
        subs.update_preferences(
            connection, daily, frequency="weekly", size=3, personal=True, include={}, exclude={}
        )
    smtp_server.messages.clear()
    send(engine, settings, smtp_server, WEEK_48)
    [again] = smtp_server.wait_for(1)
    assert again.recipients == ["daily@example.org"]
    assert re.findall(r"Paper (\d+):", again.message.get_body(("plain",)).get_content()) == [
        "3",
        "4",
        "5",
    ]
    del weekly


def test_a_second_run_sends_nothing_and_unsubscribing_stops_mail(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    first = add_subscriber(engine, "one@example.org")
    add_subscriber(engine, "two@example.org")
    add_subscriber(engine, "unconfirmed@example.org", confirmed=False)
    assert send(engine, settings, smtp_server, TUESDAY_DIGEST).sent == 2  # type: ignore[attr-defined]
    assert send(engine, settings, smtp_server, TUESDAY_DIGEST).sent == 0  # type: ignore[attr-defined]
    assert sorted(r for m in smtp_server.messages for r in m.recipients) == [
        "one@example.org",
        "two@example.org",
    ]
    with write_transaction(engine) as connection:
        subs.unsubscribe(connection, first.token)
    smtp_server.messages.clear()
    add_lists(engine, day=datetime(2026, 11, 24).date(), first=200)
    from papertide.digest.periods import daily_period

    wednesday = daily_period(datetime(2026, 11, 25).date())
    assert send(engine, settings, smtp_server, wednesday).sent == 1  # type: ignore[attr-defined]
    assert [m.recipients for m in smtp_server.messages] == [["two@example.org"]]


def test_nothing_new_is_skipped_not_sent(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine, count=2)
    add_subscriber(engine, "reader@example.org", size=5)
    send(engine, settings, smtp_server, TUESDAY_DIGEST)
    smtp_server.messages.clear()
    report = send(engine, settings, smtp_server, WEEK_48)  # reader is daily: not planned
    assert report.planned == 0  # type: ignore[attr-defined]
    with write_transaction(engine) as connection:
        connection.execute(subscriptions.update().values(frequency="weekly"))
    report = send(engine, settings, smtp_server, WEEK_48)  # both papers were sent already
    assert report.skipped == 1 and report.sent == 0  # type: ignore[attr-defined]
    assert smtp_server.messages == []
    with engine.connect() as connection:
        status = connection.execute(
            select(outbox.c.status).where(outbox.c.period == WEEK_48.key)
        ).scalar_one()
    assert status == "skipped"


def test_permanent_refusals_count_and_stop_a_bouncing_address(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    add_subscriber(engine, "gone@example.org")
    add_subscriber(engine, "fine@example.org")
    smtp_server.refuse["gone@example.org"] = "550 5.1.1 no such user"
    settings = settings.replace(digest_bounce_limit=2)
    report = send(engine, settings, smtp_server, TUESDAY_DIGEST)
    assert (report.sent, report.failed, report.stopped) == (1, 1, 0)  # type: ignore[attr-defined]
    add_lists(engine, day=datetime(2026, 11, 24).date(), first=200)
    from papertide.digest.periods import daily_period

    wednesday = daily_period(datetime(2026, 11, 25).date())
    report = send(engine, settings, smtp_server, wednesday)
    assert (report.failed, report.stopped) == (1, 1)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        gone = subs.by_email(connection, "gone@example.org")
        errors = (
            connection.execute(select(outbox.c.last_error).where(outbox.c.status == "failed"))
            .scalars()
            .all()
        )
    assert gone is not None and gone.state is subs.State.BOUNCING and gone.bounces == 2
    assert all("550 5.1.1 no such user" in e for e in errors)
    thursday = daily_period(datetime(2026, 11, 26).date())
    add_lists(engine, day=datetime(2026, 11, 25).date(), first=300)
    assert send(engine, settings, smtp_server, thursday).planned == 1  # type: ignore[attr-defined]


def test_temporary_refusal_waits_and_resends_the_same_message(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    add_subscriber(engine, "later@example.org")
    smtp_server.refuse["later@example.org"] = "451 4.3.0 try again later"
    report = send(engine, settings, smtp_server, TUESDAY_DIGEST)
    assert (report.sent, report.deferred) == (0, 1)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        row = connection.execute(select(outbox)).one()
    assert row.status == "ready" and row.attempts == 1 and "451" in row.last_error
    assert row.next_attempt_at > sent_on(TUESDAY_DIGEST)
    # Retried once due, even after the papers changed: the stored message goes out unchanged.
    with write_transaction(engine) as connection:
        connection.execute(papers.update().values(title="Renamed"))
    del smtp_server.refuse["later@example.org"]
    sender = DigestSender(
        engine, smtp_settings(settings, smtp_server), smtp_server.mailer(), now=row.next_attempt_at
    )
    assert sender.run([]).sent == 1
    [got] = smtp_server.wait_for(1)
    assert got.message["Message-ID"] == row.message_id
    assert "Renamed" not in got.message.get_body(("plain",)).get_content()


def test_server_down_stops_the_run_and_loses_nothing(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    add_lists(engine)
    for n in range(3):
        add_subscriber(engine, f"r{n}@example.org")
    port = smtp.free_port()  # nothing listens there
    down = settings.replace(mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port)
    from papertide.mail import make_mailer

    report = DigestSender(
        engine,
        down.replace(smtp_security="none"),
        make_mailer(down.replace(smtp_security="none")),
        now=sent_on(TUESDAY_DIGEST),
    ).run([TUESDAY_DIGEST])
    assert report.error is not None and "unavailable" in report.error
    assert report.sent == 0 and report.deferred == 1
    report = DigestSender(
        engine,
        smtp_settings(settings, smtp_server),
        smtp_server.mailer(),
        now=datetime(2026, 11, 24, 23, tzinfo=UTC),
    ).run([TUESDAY_DIGEST])
    assert report.sent == 3
    assert sorted(r for m in smtp_server.messages for r in m.recipients) == [
        "r0@example.org",
        "r1@example.org",
        "r2@example.org",
    ]


def test_picked_for_you_follows_the_account_and_marks_papers_seen(
    engine: Engine, settings: Settings, smtp_server: smtp.SmtpSink
) -> None:
    from papertide.search.models import shared_embedder
    from papertide.search.pipeline import embed_missing

    add_lists(engine, count=6)
    add_lists(engine, count=6, first=300)  # a second set of papers, same day
    model = shared_embedder("all-MiniLM-L6-v2", "auto", 0)
    embed_missing(engine, model)
    user = add_user(engine, "ada")
    with write_transaction(engine) as connection:
        liked = connection.execute(
            select(papers.c.id).where(papers.c.arxiv_id == "2611.00305")
        ).scalar_one()
        from papertide.db.schema import votes

        connection.execute(
            votes.insert().values(user_id=user.id, paper_id=liked, created_at=datetime.now(UTC))
        )
    add_subscriber(engine, "ada@example.org", size=3, user_id=user.id)
    sender = DigestSender(
        engine,
        smtp_settings(settings, smtp_server),
        smtp_server.mailer(),
        embedder=lambda: model,
        now=sent_on(TUESDAY_DIGEST),
    )
    assert sender.run([TUESDAY_DIGEST]).sent == 1
    [got] = smtp_server.wait_for(1)
    text = got.message.get_body(("plain",)).get_content()
    assert "PICKED FOR YOU" in text
    picked = text.split("PICKED FOR YOU", 1)[1]
    assert "which you liked" in picked
    assert "/papers/2611.00305" not in text  # the paper they upvoted is not sent back
    with engine.connect() as connection:
        seen = (
            connection.execute(
                select(paper_marks.c.paper_id).where(
                    paper_marks.c.user_id == user.id, paper_marks.c.via == "digest"
                )
            )
            .scalars()
            .all()
        )
        sent_ids = connection.execute(select(outbox.c.paper_ids)).scalar_one()
    assert sorted(seen) == sorted(sent_ids) and len(sent_ids) == 6
