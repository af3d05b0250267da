"""A real SMTP server on loopback for tests: aiosmtpd in a thread, recording what it receives.

``SmtpSink`` can refuse chosen recipients at RCPT TO, offer STARTTLS (``tls_context=``), speak
TLS from the first byte (``implicit_tls_context=``) and demand AUTH (``auth={"user": "pw"}``).
``tls_certificate()`` makes a throwaway self-signed certificate for 127.0.0.1/localhost with the
``openssl`` command (tests that need it skip where it is missing).
"""

from __future__ import annotations

import atexit
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from papertide.mail import SmtpMailer

HOST = "127.0.0.1"


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    raw: bytes
    message: EmailMessage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@cache
def tls_certificate() -> tuple[Path, Path]:
    """(certificate, key) PEM files of a self-signed certificate for 127.0.0.1 and localhost."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = Path(mkdtemp(prefix="papertide-smtp-tls-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
    extensions = (
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,digitalSignature,keyCertSign",
    )
    subprocess.run(
        [*command.split(), "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)]
        + [argument for extension in extensions for argument in ("-addext", extension)],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls_context() -> ssl.SSLContext:
    cert, key = tls_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def client_tls_context() -> ssl.SSLContext:
    """Verifies the server like the real default context, trusting only the test certificate."""
    return ssl.create_default_context(cafile=str(tls_certificate()[0]))


class SmtpSink:
    """aiosmtpd Controller on 127.0.0.1 at a free port; restartable on the same port."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls_context: ssl.SSLContext | None = None,
        auth: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        # recipient -> reply line to the end of DATA instead of accepting; "" hangs up unanswered
        self.refuse_data: dict[str, str] = {}
        self.data_attempts = 0
        self.noops = 0
        self.auth_failures = 0
        self._tls_context = tls_context
        self._implicit_tls_context = implicit_tls_context
        self._auth = auth
        self._lock = threading.Lock()
        self._servers: list[SMTP] = []  # one per connection that said EHLO/HELO
        self._controller: Controller | None = None

    @property
    def connections(self) -> int:
        """How many SMTP connections have greeted the sink (EHLO/HELO) so far."""
        with self._lock:
            return len(self._servers)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self._tls_context is not None:
            kwargs["tls_context"] = self._tls_context
        if self._auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            ssl_context=self._implicit_tls_context,
            **kwargs,
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop listening and hang up on every open connection, as a restarting server would."""
        controller, self._controller = self._controller, None
        if controller is None:
            return

        def hang_up() -> None:
            for server in self._servers:
                if server.transport is not None:
                    server.transport.close()

        controller.loop.call_soon_threadsafe(hang_up)
        controller.stop()

    def for_recipient(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if address in m.recipients]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} messages arrived, not {count}")
            time.sleep(0.01)

    def mailer(self, **kwargs: Any) -> SmtpMailer:
        kwargs.setdefault("security", "none")
        return SmtpMailer(self.host, self.port, **kwargs)

    # aiosmtpd handler hooks

    def _greeted(self, server: SMTP) -> None:
        with self._lock:
            if not any(known is server for known in self._servers):
                self._servers.append(server)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._greeted(server)
        session.host_name = hostname
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._greeted(server)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        with self._lock:
            self.noops += 1
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.refuse.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.data_attempts += 1
        for recipient in envelope.rcpt_tos:
            reply = self.refuse_data.get(recipient)
            if reply == "" and server.transport is not None:
                server.transport.close()  # took the whole message, then vanished before "250"
                return "421 gone"  # never reaches the client
            if reply:
                return reply
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=email.policy.default)
        received = Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw, message)
        with self._lock:
            self.messages.append(received)
        return "250 OK queued"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self._auth is not None:
            user, password = data.login.decode(), data.password.decode()
            if user in self._auth and self._auth[user] == password:
                return AuthResult(success=True)
        with self._lock:
            self.auth_failures += 1
        return AuthResult(success=False, handled=False)


@contextmanager
def running_sink(**kwargs: Any) -> Iterator[SmtpSink]:
    sink = SmtpSink(**kwargs)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """A started plain SMTP sink on loopback, stopped after the test."""
    with running_sink() as sink:
        yield sink
