"""Mail delivery: SmtpMailer against a real SMTP server on loopback, the other backends."""

from __future__ import annotations

import logging
import ssl
import time
import types
from email.message import EmailMessage
from pathlib import Path

import pytest
import smtp
from smtp import SmtpSink, client_tls_context, free_port, running_sink, server_tls_context

import papertide.mail
from papertide.config import load_settings
from papertide.mail import (
    ConsoleMailer,
    FileMailer,
    MailError,
    PermanentMailError,
    SmtpMailer,
    TransientMailError,
    compose,
    envelope_address,
    make_mailer,
    send_message,
)

smtp_server = smtp.smtp_server  # the fixture, visible to this module's tests

SETTINGS = load_settings({"PAPERTIDE_MAIL_FROM": "Papertide <news@papertide.example>"})
TEXT = "Hello Zoë,\n\n.a line that starts with a dot\n..and two\n.\nthe end — bye\n"


def message(to: str = "Ada <ada@example.org>", text: str = TEXT) -> EmailMessage:
    return compose(SETTINGS, to, "Your digest ✓", text)


def on_the_wire(message: EmailMessage) -> bytes:
    return message.as_bytes().replace(b"\n", b"\r\n")


class FakeClock:
    """Stands in for papertide.mail's ``time`` module: sleeping only advances the clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        fake = types.SimpleNamespace(
            monotonic=self.monotonic, sleep=self.sleep, time_ns=time.time_ns
        )
        monkeypatch.setattr(papertide.mail, "time", fake)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


def test_delivery_arrives_intact(smtp_server: SmtpSink) -> None:
    sent = message()
    mailer = smtp_server.mailer()
    send_message(mailer, sent)
    mailer.close()
    (received,) = smtp_server.wait_for(1)
    assert received.envelope_from == "news@papertide.example"
    assert received.recipients == ["ada@example.org"]
    assert received.raw == on_the_wire(sent)  # dots unstuffed, 8-bit body untouched
    assert received.message["Message-ID"] == sent["Message-ID"]
    assert received.message["Subject"] == "Your digest ✓"
    assert received.message.get_content() == TEXT.replace("\n", "\r\n")


def test_one_connection_carries_many_messages(smtp_server: SmtpSink) -> None:
    mailer = smtp_server.mailer()
    for n in range(25):
        mailer.deliver("news@papertide.example", f"reader{n}@example.org", on_the_wire(message()))
    assert len(smtp_server.wait_for(25)) == 25
    assert smtp_server.connections == 1
    assert [r.recipients for r in smtp_server.for_recipient("reader7@example.org")] == [
        ["reader7@example.org"]
    ]
    mailer.close()
    mailer.close()  # twice is harmless
    send_message(mailer, message())  # a closed mailer opens a new connection when used again
    smtp_server.wait_for(26)
    assert smtp_server.connections == 2
    mailer.close()


def test_550_at_rcpt_is_permanent_and_names_the_recipient(smtp_server: SmtpSink) -> None:
    smtp_server.refuse["bob@example.org"] = "550 5.1.1 no such user"
    mailer = smtp_server.mailer()
    with pytest.raises(PermanentMailError) as caught:
        send_message(mailer, message("Bob <bob@example.org>"))
    assert caught.value.code == 550 and not caught.value.connection
    where = f"{smtp_server.host}:{smtp_server.port}"
    assert str(caught.value) == f"smtp {where} refused bob@example.org: 550 5.1.1 no such user"
    send_message(mailer, message())  # the same connection goes on with the next message
    assert [r.recipients for r in smtp_server.wait_for(1)] == [["ada@example.org"]]
    assert smtp_server.connections == 1
    mailer.close()


def test_451_at_rcpt_is_transient_for_that_message_only(smtp_server: SmtpSink) -> None:
    smtp_server.refuse["bob@example.org"] = "451 4.3.0 try later"
    mailer = smtp_server.mailer()
    with pytest.raises(TransientMailError) as caught:
        mailer.deliver("news@papertide.example", "bob@example.org", on_the_wire(message()))
    assert caught.value.code == 451 and caught.value.connection is False
    assert "bob@example.org" in str(caught.value) and "451 4.3.0 try later" in str(caught.value)
    assert not isinstance(caught.value, PermanentMailError)
    mailer.close()


def test_refusals_after_data_are_classified_and_never_resent(smtp_server: SmtpSink) -> None:
    smtp_server.refuse_data["spam@example.org"] = "554 5.7.1 looks like spam"
    smtp_server.refuse_data["full@example.org"] = "452 4.2.2 mailbox full"
    smtp_server.refuse_data["lost@example.org"] = ""  # hangs up without answering DATA
    mailer = smtp_server.mailer()
    raw = on_the_wire(message())
    with pytest.raises(PermanentMailError) as permanent:
        mailer.deliver("news@papertide.example", "spam@example.org", raw)
    assert permanent.value.code == 554 and "looks like spam" in str(permanent.value)
    with pytest.raises(TransientMailError) as deferred:
        mailer.deliver("news@papertide.example", "full@example.org", raw)
    assert (deferred.value.code, deferred.value.connection) == (452, False)
    with pytest.raises(TransientMailError) as lost:
        mailer.deliver("news@papertide.example", "lost@example.org", raw)
    assert lost.value.connection is True and "lost@example.org" in str(lost.value)
    assert smtp_server.data_attempts == 3  # each message went over exactly once
    mailer.deliver("news@papertide.example", "ada@example.org", raw)
    assert smtp_server.wait_for(1)[0].recipients == ["ada@example.org"]
    assert smtp_server.connections == 4  # every failure at DATA dropped the connection
    mailer.close()


def test_unreachable_server_is_a_connection_fault() -> None:
    port = free_port()  # nobody listens there
    mailer = SmtpMailer("127.0.0.1", port, security="none", timeout=5)
    with pytest.raises(TransientMailError) as caught:
        send_message(mailer, message())
    assert caught.value.connection is True and caught.value.code is None
    assert f"127.0.0.1:{port}" in str(caught.value) and "ada@example.org" in str(caught.value)
    mailer.close()


def test_wrong_password_is_a_connection_fault_that_keeps_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "Hunter2-not-this-one"
    caplog.set_level(logging.DEBUG)
    with running_sink(auth={"papertide": "the-right-one"}) as sink:
        mailer = sink.mailer(username="papertide", password=secret)
        with pytest.raises(TransientMailError) as caught:
            send_message(mailer, message())
        error: BaseException | None = caught.value
        assert caught.value.connection is True and caught.value.code == 535
        assert sink.auth_failures >= 1 and sink.messages == []
        while error is not None:  # not in the message nor anywhere down the chain
            assert secret not in str(error) and secret not in repr(error)
            error = error.__cause__ or error.__context__
        assert secret not in repr(mailer) and secret not in caplog.text

        good = sink.mailer(username="papertide", password="the-right-one")
        send_message(good, message())
        good.close()
        assert len(sink.wait_for(1)) == 1


def test_starttls_delivery_verifies_the_server() -> None:
    with running_sink(tls_context=server_tls_context()) as sink:
        mailer = sink.mailer(security="starttls", ssl_context=client_tls_context())
        send_message(mailer, message())
        send_message(mailer, message())
        mailer.close()
        assert len(sink.wait_for(2)) == 2 and sink.connections == 1

        untrusting = sink.mailer(security="starttls")  # the system CAs do not know the test cert
        with pytest.raises(TransientMailError) as caught:
            send_message(untrusting, message())
        assert caught.value.connection is True
        assert isinstance(caught.value.__cause__, ssl.SSLError)


def test_starttls_never_falls_back_to_plain_text(smtp_server: SmtpSink) -> None:
    mailer = smtp_server.mailer(security="starttls", ssl_context=client_tls_context())
    with pytest.raises(TransientMailError) as caught:
        send_message(mailer, message())
    assert caught.value.connection is True and smtp_server.messages == []


def test_implicit_tls_delivery() -> None:
    with running_sink(implicit_tls_context=server_tls_context()) as sink:
        mailer = sink.mailer(security="tls", ssl_context=client_tls_context())
        sent = message()
        send_message(mailer, sent)
        mailer.close()
        assert sink.wait_for(1)[0].raw == on_the_wire(sent)


def test_a_server_that_hung_up_is_redialled(smtp_server: SmtpSink) -> None:
    mailer = smtp_server.mailer()
    send_message(mailer, message())
    smtp_server.wait_for(1)
    smtp_server.stop()  # a restart: the open connection dies with it
    smtp_server.start()
    send_message(mailer, message())
    assert len(smtp_server.wait_for(2)) == 2
    assert smtp_server.connections == 2
    mailer.close()


def test_an_idle_connection_is_checked_with_noop(
    smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(monkeypatch)
    mailer = smtp_server.mailer()
    send_message(mailer, message())
    clock.now += 5
    send_message(mailer, message())
    assert smtp_server.noops == 0  # recently used: no extra round trip
    clock.now += 60
    send_message(mailer, message())
    assert smtp_server.noops == 1
    assert len(smtp_server.wait_for(3)) == 3 and smtp_server.connections == 1
    mailer.close()


def test_rate_limit_paces_one_message_per_slot(
    smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(monkeypatch)
    mailer = smtp_server.mailer(rate_limit=4)  # a slot every 0.25 s
    for _ in range(3):
        send_message(mailer, message())
    assert clock.sleeps == [0.25, 0.25]
    clock.now += 0.1  # part of a slot passed by itself
    send_message(mailer, message())
    assert clock.sleeps == [0.25, 0.25, 0.15]
    clock.now += 5  # a quiet spell earns no burst: one message at once, then paced again
    send_message(mailer, message())
    send_message(mailer, message())
    assert clock.sleeps == [0.25, 0.25, 0.15, 0.25]
    assert len(smtp_server.wait_for(6)) == 6
    mailer.close()


def test_without_rate_limit_nothing_sleeps(
    smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(monkeypatch)
    mailer = smtp_server.mailer()
    for _ in range(3):
        send_message(mailer, message())
    assert clock.sleeps == []
    mailer.close()


def test_non_ascii_recipient_goes_over_smtputf8(smtp_server: SmtpSink) -> None:
    mailer = smtp_server.mailer()
    send_message(mailer, message("Zoë <zoë@example.org>"))
    mailer.close()
    assert smtp_server.wait_for(1)[0].recipients == ["zoë@example.org"]


def test_file_mailer_writes_one_eml_per_message(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "mail")
    first, second = message(), message("Bob <bob@example.org>")
    send_message(mailer, first)
    send_message(mailer, second)
    mailer.close()
    files = sorted((tmp_path / "mail").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert sorted(f.read_bytes() for f in files) == sorted([first.as_bytes(), second.as_bytes()])


def test_console_mailer_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="papertide.mail"):
        send_message(ConsoleMailer(), message())
    assert "ada@example.org" in caplog.text and "Zoë" in caplog.text


def test_make_mailer_follows_the_settings(smtp_server: SmtpSink, tmp_path: Path) -> None:
    env = {
        "PAPERTIDE_MAIL_BACKEND": "smtp",
        "PAPERTIDE_SMTP_HOST": smtp_server.host,
        "PAPERTIDE_SMTP_PORT": str(smtp_server.port),
        "PAPERTIDE_SMTP_SECURITY": "none",
        "PAPERTIDE_SMTP_TIMEOUT": "7",
        "PAPERTIDE_MAIL_RATE_LIMIT": "50",
    }
    mailer = make_mailer(load_settings(env))
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.security, mailer.timeout, mailer.rate_limit) == ("none", 7.0, 50.0)
    send_message(mailer, message())
    mailer.close()
    assert len(smtp_server.wait_for(1)) == 1

    files = load_settings({"PAPERTIDE_MAIL_BACKEND": "file", "PAPERTIDE_MAIL_DIR": str(tmp_path)})
    assert isinstance(make_mailer(files), FileMailer)
    assert isinstance(make_mailer(load_settings({})), ConsoleMailer)


def test_envelope_addresses() -> None:
    assert envelope_address("Papertide <a@b.org>") == "a@b.org"
    assert envelope_address('"Doe, Jane" <jane@example.org>') == "jane@example.org"
    assert envelope_address("plain@example.org") == "plain@example.org"
    with pytest.raises(ValueError):
        envelope_address("")


def test_error_classes() -> None:
    assert issubclass(TransientMailError, MailError) and issubclass(PermanentMailError, MailError)
    with pytest.raises(ValueError):
        SmtpMailer("localhost", 25, security="ssl")
