"""The digest email: subject, headers, and an HTML and a plain-text part.

The HTML part is built for mail clients, not browsers: a table layout 600 pixels wide, every
style inline (clients drop ``<style>`` blocks and never run scripts), no remote images, and math
as Unicode text (:mod:`.mathtext`). Each paper's block is rendered once per run and reused by
every message that holds it, so a message costs one small template and the MIME encoding.

Headers: ``From``, ``To``, ``Subject`` (RFC 2047-encoded when not ASCII), ``Date``, the
``Message-ID`` fixed when the outbox row was created, ``List-Id``, and ``List-Unsubscribe`` with
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058): mail providers offer an
unsubscribe button that POSTs to the link, which stops mail at once with no login.
"""

from __future__ import annotations

import email.policy
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from papertide.catalog.links import http_url
from papertide.config import Settings
from papertide.digest.edition import DigestPaper
from papertide.digest.mime import multipart_alternative
from papertide.digest.selection import DigestContent
from papertide.digest.subscriptions import Subscription

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates" / "email"
_POLICY = email.policy.SMTP.clone(max_line_length=998)

# Inline styles (see the module docstring); system fonts, colours that read in light mode.
CSS = {
    "body": "margin:0;padding:0;background:#f4f4f5;color:#18181b;"
    "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;",
    "preheader": "display:none;max-height:0;overflow:hidden;mso-hide:all;",
    "outer": "background:#f4f4f5;",
    "card": "width:100%;max-width:600px;background:#ffffff;border:1px solid #e4e4e7;"
    "border-radius:8px;border-collapse:separate;",
    "header": "padding:20px 24px 12px 24px;border-bottom:1px solid #e4e4e7;",
    "brand": "font-size:20px;font-weight:700;color:#18181b;",
    "period": "font-size:14px;color:#52525b;",
    "section": "padding:18px 24px 4px 24px;font-size:13px;font-weight:700;letter-spacing:.06em;"
    "text-transform:uppercase;color:#b45309;",
    "reason": "padding:14px 24px 0 24px;font-size:13px;color:#b45309;",
    "paper": "padding:4px 24px 14px 24px;border-bottom:1px solid #f4f4f5;",
    "title": "font-size:17px;line-height:1.35;font-weight:600;color:#1d4ed8;text-decoration:none;",
    "meta": "padding-top:4px;font-size:13px;color:#52525b;",
    "abstract": "padding-top:6px;font-size:14px;line-height:1.5;color:#27272a;",
    "links": "padding-top:6px;font-size:13px;color:#52525b;",
    "link": "color:#1d4ed8;",
    "footer": "padding:18px 24px 22px 24px;font-size:12px;line-height:1.6;color:#71717a;",
    "footer_link": "color:#52525b;",
}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["http_url"] = http_url  # links from paper data: http(s) only
    return env


def mail_domain(settings: Settings) -> str:
    return parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"


def new_message_id(settings: Settings, period: str, subscription_id: int) -> str:
    """A Message-ID unique to (subscription, period), fixed when the outbox row is made."""
    tag = period.replace(":", ".")
    return f"<digest.{tag}.{subscription_id}.{secrets.token_hex(6)}@{mail_domain(settings)}>"


@dataclass(frozen=True, slots=True)
class Links:
    preferences: str
    preview: str
    unsubscribe: str


def links_of(settings: Settings, subscription: Subscription, period: str) -> Links:
    base = f"{settings.base_url.rstrip('/')}/subscriptions/{subscription.token}"
    return Links(base, f"{base}/preview?period={period}", f"{base}/unsubscribe")


@dataclass(frozen=True, slots=True)
class RenderedItem:
    block: Markup | str
    reason: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class DigestRenderer:
    """Renders digests for one run (paper blocks are cached by paper id)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = _environment()
        self.base = settings.base_url.rstrip("/")
        self._paper_html = self.env.get_template("_paper.html")
        self._paper_text = self.env.get_template("_paper.txt")
        self._html = self.env.get_template("digest.html")
        self._text = self.env.get_template("digest.txt")
        self._blocks: dict[int, tuple[Markup, str]] = {}
        name, address = parseaddr(settings.mail_from)
        self._from = formataddr((name, address))  # encoded by the header writer if need be
        self._list_id = f"{settings.site_name} digest <digest.{mail_domain(settings)}>"

    def _block(self, paper: DigestPaper) -> tuple[Markup, str]:
        found = self._blocks.get(paper.paper_id)
        if found is None:
            found = (
                Markup(self._paper_html.render(p=paper, css=CSS, base=self.base)),
                self._paper_text.render(p=paper, base=self.base).rstrip("\n"),
            )
            self._blocks[paper.paper_id] = found
        return found

    def parts(self, content: DigestContent) -> Rendered:
        sub = content.subscription
        period = content.period
        kind = "weekly" if period.kind == "weekly" else "daily"
        heading = f"Trending papers of {period.label}"
        subject = _subject(self.settings.site_name, kind, content)
        links = links_of(self.settings, sub, period.key)
        values = {
            "site_name": self.settings.site_name,
            "heading": heading,
            "subject": subject,
            "frequency": kind,
            "email": sub.email,
            "links": links,
            "css": CSS,
        }
        html_items = {
            name: [RenderedItem(self._block(i.paper)[0], i.reason) for i in items]
            for name, items in (("trending", content.trending), ("picks", content.picks))
        }
        text_items = {
            name: [RenderedItem(self._block(i.paper)[1], i.reason) for i in items]
            for name, items in (("trending", content.trending), ("picks", content.picks))
        }
        preheader = "; ".join(i.paper.title for i in (*content.trending, *content.picks)[:3])
        html = self._html.render(**values, **html_items, preheader=preheader)
        text = self._text.render(**values, **text_items)
        return Rendered(subject, text, html)

    def message(
        self, content: DigestContent, message_id: str, now: datetime | None = None
    ) -> bytes:
        """The whole message as the bytes to hand to SMTP."""
        rendered = self.parts(content)
        links = links_of(self.settings, content.subscription, content.period.key)
        headers = [
            ("From", self._from),
            ("To", content.subscription.email),
            ("Subject", rendered.subject),
            ("Date", format_datetime(now or datetime.now(UTC))),
            ("Message-ID", message_id),
            ("List-Id", self._list_id),
            ("List-Unsubscribe", f"<{links.unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Papertide-Period", content.period.key),
        ]
        return multipart_alternative(headers, rendered.text, rendered.html)


def _subject(site_name: str, kind: str, content: DigestContent) -> str:
    first = (content.trending or content.picks)[0].paper.title if not content.empty else ""
    count = len(content.trending) + len(content.picks)
    more = f" and {count - 1} more" if count > 1 else ""
    return f"{site_name} {kind}: {first}{more}"


def _plain(settings: Settings, sub: Subscription, subject: str, text: str) -> EmailMessage:
    """A subscription's own mail (confirmation, "already subscribed"): it too can be stopped
    with one click, for an address someone else typed in."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = settings.mail_from
    message["To"] = sub.email
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{secrets.token_hex(12)}@{mail_domain(settings)}>"
    message["List-Unsubscribe"] = f"<{links_of(settings, sub, '').unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    return message


def confirmation_message(settings: Settings, sub: Subscription, confirm_url: str) -> EmailMessage:
    text = (
        _environment()
        .get_template("confirm.txt")
        .render(
            site_name=settings.site_name,
            frequency=sub.frequency,
            email=sub.email,
            confirm_url=confirm_url,
            unsubscribe_url=links_of(settings, sub, "").unsubscribe,
        )
    )
    return _plain(settings, sub, f"Confirm your {settings.site_name} digest", text)


def manage_message(settings: Settings, sub: Subscription) -> EmailMessage:
    text = (
        _environment()
        .get_template("manage.txt")
        .render(
            site_name=settings.site_name,
            email=sub.email,
            preferences_url=links_of(settings, sub, "").preferences,
        )
    )
    return _plain(settings, sub, f"Your {settings.site_name} digest", text)
