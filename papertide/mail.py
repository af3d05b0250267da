"""Sending email through a Mailer chosen by the ``mail_backend`` setting.

Backends: ``console`` (the message is logged) and ``file`` (one ``.eml`` file per message in
``mail_dir``, handy for development and tests). Messages are standard ``EmailMessage`` objects
with a ``Message-ID`` and ``Date``.
"""

from __future__ import annotations

import logging
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from papertide.config import Settings

log = logging.getLogger("papertide.mail")


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class ConsoleMailer:
    def send(self, message: EmailMessage) -> None:
        log.warning("email (console backend):\n%s", message.as_string())


class FileMailer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(message.as_bytes())
        temporary.rename(self.folder / name)  # readers never see half a message


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend == "file":
        return FileMailer(Path(settings.mail_dir))
    return ConsoleMailer()


def compose(settings: Settings, to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="papertide.local")
    message.set_content(text)
    return message
