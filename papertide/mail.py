"""Sending email through a Mailer chosen by the ``mail_backend`` setting.

Backends: ``smtp`` (a real server, see :class:`SmtpMailer`), ``console`` (the message is logged)
and ``file`` (one ``.eml`` file per message in ``mail_dir``, handy for development and tests).
A mailer delivers one raw message to one envelope recipient at a time; messages are standard
``EmailMessage`` objects (with a ``Message-ID`` and ``Date``) turned into bytes by
:func:`send_message`.

``deliver`` raises only :class:`MailError` subclasses:

* :class:`PermanentMailError`: the server refused *this* message or recipient with a 5xx reply
  (to MAIL FROM, RCPT TO or DATA). Do not retry; count a bounce.
* :class:`TransientMailError`: try again later. ``connection`` tells why. ``False``: a 4xx reply
  to this message (RCPT TO, DATA: greylisting, a full mailbox). ``True``: the fault lies with the
  server or our configuration, not the message (unreachable, dropped connection, timeout, TLS,
  HELO or AUTH failure, 421 "closing"), so a bulk sender should stop its run rather than burn
  every message's attempts.

``code`` holds the SMTP reply code when there was one.

No automatic resend: a message is handed to the server at most once per ``deliver`` call. The
mailer may silently reconnect *before* sending (a pooled connection that went stale), but a
failure during or after DATA could mean the server already took the message, so it is raised,
never retried here, and the connection is dropped so the next ``deliver`` starts afresh.
"""

from __future__ import annotations

import contextlib
import logging
import re
import select
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from papertide.config import Settings

log = logging.getLogger("papertide.mail")

IDLE_CHECK_S = 10.0  # a connection idle longer than this is checked with NOOP before reuse
_EOL = re.compile(rb"\r\n|\n|\r(?!\n)")


def _crlf_only(raw: bytes) -> bool:
    """Whether every line already ends in CRLF (counting is far cheaper than a rewrite)."""
    pairs = raw.count(b"\r\n")
    return raw.count(b"\n") == pairs and raw.count(b"\r") == pairs


class MailError(Exception):
    """A message could not be delivered; see the module docstring for the subclasses."""

    def __init__(self, message: str, *, code: int | None = None, connection: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.connection = connection


class TransientMailError(MailError):
    """Retry later; ``connection`` is True when the server or the configuration is at fault."""


class PermanentMailError(MailError):
    """The server refused this message or recipient for good (5xx): do not retry."""


class Mailer(Protocol):
    def deliver(self, sender: str, recipient: str, raw: bytes) -> None: ...

    def close(self) -> None: ...


class ConsoleMailer:
    def deliver(self, sender: str, recipient: str, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        log.warning("email (console backend) from %s to %s:\n%s", sender, recipient, text)

    def close(self) -> None:
        pass


class FileMailer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, sender: str, recipient: str, raw: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
            temporary = self.folder / f".{name}.tmp"
            temporary.write_bytes(raw)
            temporary.rename(self.folder / name)  # readers never see half a message
        except OSError as error:
            raise TransientMailError(f"cannot write mail to {self.folder}: {error}") from error

    def close(self) -> None:
        pass


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


class SmtpMailer:
    """Delivers through one SMTP connection, opened on first use and kept across messages.

    Not thread-safe: use one mailer per thread. ``rate_limit`` > 0 caps messages per second.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        rate_limit: float = 0.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"smtp security must be starttls, tls or none, not {security!r}")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password  # never logged nor put in an error message
        self.timeout = timeout
        self.rate_limit = rate_limit
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0
        self._next_slot = 0.0

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host}:{self.port}, security={self.security})"

    def deliver(self, sender: str, recipient: str, raw: bytes) -> None:
        self._pace()
        where = f"smtp {self.host}:{self.port}"
        try:
            smtp = self._connection()
        except (smtplib.SMTPException, OSError) as error:
            code = None
            detail = str(error)
            if isinstance(error, smtplib.SMTPResponseException):  # AUTH 535, HELO 5xx, greeting
                code, detail = error.smtp_code, f"{error.smtp_code} {_text(error.smtp_error)}"
            message = f"{where} failed for {recipient}: cannot open a session: {detail}"
            raise TransientMailError(message, code=code, connection=True) from error
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if not smtp.has_extn("smtputf8"):
                raise PermanentMailError(f"{where} refused {recipient}: no SMTPUTF8 support")
            options.append("SMTPUTF8")
        wire = raw if _crlf_only(raw) else _EOL.sub(b"\r\n", raw)  # SMTP wants CRLF lines
        if not wire.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            smtp.sendmail(sender, [recipient], wire, mail_options=options)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
            # Refused before DATA; smtplib sent RSET (or closed on 421), so the connection stays.
            if isinstance(error, smtplib.SMTPRecipientsRefused):
                code, reply = error.recipients.get(recipient, (0, b"no reply"))
            else:
                code, reply = error.smtp_code, error.smtp_error
            raise self._refusal(where, recipient, code, _text(reply)) from error
        except (smtplib.SMTPException, OSError) as error:
            self._drop()  # the message may or may not have been taken: never resend it here
            if isinstance(error, smtplib.SMTPResponseException) and not isinstance(
                error, smtplib.SMTPHeloError
            ):
                text = _text(error.smtp_error)
                raise self._refusal(where, recipient, error.smtp_code, text) from error
            raise TransientMailError(
                f"{where} failed for {recipient}: {error}", connection=True
            ) from error
        finally:
            self._last_used = time.monotonic()

    @staticmethod
    def _refusal(where: str, recipient: str, code: int, reply: str) -> MailError:
        if code >= 500:
            return PermanentMailError(f"{where} refused {recipient}: {code} {reply}", code=code)
        message = f"{where} deferred {recipient}: {code} {reply}"
        return TransientMailError(message, code=code, connection=code == 421 or code < 400)

    def _pace(self) -> None:
        if self.rate_limit <= 0:
            return
        now = time.monotonic()
        if self._next_slot > now:
            time.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.rate_limit

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and not self._usable(self._smtp):
            log.info("smtp %s:%s: connection went stale, reconnecting", self.host, self.port)
            self._drop()
        if self._smtp is None:
            self._smtp = self._connect()
            self._last_used = time.monotonic()
        return self._smtp

    def _usable(self, smtp: smtplib.SMTP) -> bool:
        if smtp.sock is None:
            return False
        try:
            if select.select([smtp.sock], [], [], 0)[0]:
                return False  # the server spoke unasked (421) or hung up
            if time.monotonic() - self._last_used > IDLE_CHECK_S:
                return smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError, ValueError):
            return False
        return True

    def _connect(self) -> smtplib.SMTP:
        if self.security != "none" and self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                self.local_hostname,
                timeout=self.timeout,
                context=self._ssl_context,
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, self.local_hostname, timeout=self.timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo_or_helo_if_needed()
            if self.username:
                smtp.login(self.username, self._password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def close(self) -> None:
        smtp = self._smtp
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()  # polite QUIT; a server that already hung up is fine too
        self._drop()


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
            rate_limit=settings.mail_rate_limit,
        )
    if settings.mail_backend == "file":
        return FileMailer(Path(settings.mail_dir))
    return ConsoleMailer()


def envelope_address(mailbox: str) -> str:
    """The bare address of a ``Name <address>`` mailbox, as used in MAIL FROM / RCPT TO."""
    address = parseaddr(mailbox)[1]
    if not address:
        raise ValueError(f"{mailbox!r} has no email address")
    return address


def send_message(mailer: Mailer, message: EmailMessage) -> None:
    """Deliver ``message`` from its From address to its (single) To address."""
    sender = envelope_address(str(message["From"] or ""))
    mailer.deliver(sender, envelope_address(str(message["To"] or "")), message.as_bytes())


def compose(settings: Settings, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="papertide.local")
    message.set_content(text)
    return message
