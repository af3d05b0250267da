"""Subscribing to the email digest, confirming, preferences, unsubscribing, previews.

The links in every digest carry the subscription's secret token, so the preferences page, the
preview and unsubscribing need no login. ``POST /subscriptions/{token}/unsubscribe`` is the
RFC 8058 one-click target that mail providers call; it takes no CSRF token (the secret link is
the authority) and stops mail at once.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy import Connection

from papertide.accounts.ratelimit import Limit, enforce
from papertide.config import Settings
from papertide.daily import latest_list_day, today
from papertide.db.engine import write_transaction
from papertide.digest import subscriptions as subs
from papertide.digest.periods import Period, latest_due, parse_period, period_covering
from papertide.digest.render import confirmation_message, manage_message
from papertide.digest.service import Preview, preview
from papertide.digest.subscriptions import Reply, Subscription
from papertide.errors import InvalidInput, NotReady
from papertide.mail import MailError, make_mailer, send_message
from papertide.personal.interests import FIELDS, split_list
from papertide.search.embedder import Embedder
from papertide.web.auth import check_csrf, viewer_of
from papertide.web.deps import AppSettings, DbConnection, engine_of, safe_next
from papertide.web.rendering import render
from papertide.web.routes_accounts import limit_key

router = APIRouter()
log = logging.getLogger("papertide.digest")

SUBSCRIBE_PER_IP = Limit(10, 3600, "subscribe requests from your address")
SUBSCRIBE_PER_EMAIL = Limit(3, 3600, "subscribe requests for this address")
FormText = Annotated[str, Form()]
CsrfField = Annotated[str, Form(alias="csrf_token")]


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/subscribe")
def subscribe_page(request: Request, connection: DbConnection) -> Response:
    user = viewer_of(request).user
    mine = subs.for_user(connection, user.id) if user else None
    return render(
        request, "subscribe.html", {"title": "Get trending papers by email", "mine": mine}
    )


@router.post("/subscribe")
def subscribe(
    request: Request,
    settings: AppSettings,
    email: FormText,
    csrf_token: CsrfField = "",
    frequency: Annotated[str, Form()] = "daily",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_csrf(request, csrf_token)
    address = " ".join(email.split()).lower()
    enforce(
        engine_of(request),
        [
            (f"subscribe:ip:{_ip(request)}", SUBSCRIBE_PER_IP),
            (limit_key("subscribe:email", address), SUBSCRIBE_PER_EMAIL),
        ],
    )
    user = viewer_of(request).user
    own = user is not None and user.email == address
    with write_transaction(engine_of(request)) as connection:
        subscription, reply = subs.subscribe(
            connection,
            email,
            size=settings.digest_size,
            frequency=frequency,
            user_id=user.id if own and user is not None else None,
        )
        signed = subs.confirmation_token(request.app.state.secret, subscription)
    confirm_url = f"{settings.base_url.rstrip('/')}/subscriptions/confirm/{signed}"
    try:
        with closing(make_mailer(settings)) as mailer:
            if reply is Reply.CONFIRM:
                send_message(mailer, confirmation_message(settings, subscription, confirm_url))
            elif reply is Reply.MANAGE:
                send_message(mailer, manage_message(settings, subscription))
    except MailError as error:
        log.warning("subscription email to %s failed: %s", subscription.email, error)
        raise NotReady(
            "we could not send the confirmation email just now; please try again in a few minutes"
        ) from None
    # The same answer whatever the address's state: the page reveals nothing about it.
    return render(
        request,
        "subscribed.html",
        {"title": "Check your inbox", "email": subscription.email, "next": safe_next(next)},
    )


@router.get("/subscriptions/confirm/{signed}")
def confirm_page(request: Request, signed: str, connection: DbConnection) -> Response:
    _, email = subs.read_confirmation(request.app.state.secret, signed)
    found = subs.by_email(connection, email)
    return render(
        request,
        "subscription_confirm.html",
        {"title": "Confirm your subscription", "email": email, "signed": signed, "found": found},
    )


@router.post("/subscriptions/confirm/{signed}")
def confirm(request: Request, signed: str, csrf_token: CsrfField = "") -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        confirmed = subs.confirm(connection, request.app.state.secret, signed)
    return RedirectResponse(f"/subscriptions/{confirmed.token}?confirmed=1", status_code=303)


def _page(request: Request, sub: Subscription, **extra: object) -> Response:
    return render(
        request,
        "subscription.html",
        {
            "title": "Your email digest",
            "sub": sub,
            "fields": FIELDS,
            "min_size": subs.MIN_SIZE,
            "max_size": subs.MAX_SIZE,
            "send_time": request.app.state.settings.digest_send_time,
            "timezone": request.app.state.settings.timezone,
            "confirmed": False,
            "saved": False,
            "empty_period": None,
            "suggestion": None,
            **extra,
        },
        headers={"X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"},
    )


@router.get("/subscriptions/{token}")
def preferences_page(
    request: Request, token: str, connection: DbConnection, confirmed: int = 0, saved: int = 0
) -> Response:
    sub = subs.by_token(connection, token)
    return _page(request, sub, confirmed=bool(confirmed), saved=bool(saved))


@router.post("/subscriptions/{token}")
async def save_preferences(request: Request, token: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf_token", "")))

    def text(name: str) -> str:
        return str(form.get(name, ""))

    size = text("size").strip()
    if not size.isdigit():
        raise InvalidInput(f"papers per section must be a whole number, not {size[:20]!r}")
    with write_transaction(engine_of(request)) as connection:
        sub = subs.by_token(connection, token)
        subs.update_preferences(
            connection,
            sub,
            frequency=text("frequency"),
            size=int(size),
            personal=text("personal") == "1",
            include={f: split_list(text(f"include_{f}")) for f in FIELDS},
            exclude={f: split_list(text(f"exclude_{f}")) for f in FIELDS},
        )
    return RedirectResponse(f"/subscriptions/{token}?saved=1", status_code=303)


@router.get("/subscriptions/{token}/unsubscribe")
def unsubscribe_page(request: Request, token: str, connection: DbConnection) -> Response:
    sub = subs.by_token(connection, token)
    return render(
        request,
        "unsubscribe.html",
        {"title": "Unsubscribe", "sub": sub, "done": False},
        headers={"X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"},
    )


@router.post("/subscriptions/{token}/unsubscribe")
def unsubscribe(request: Request, token: str) -> Response:
    """One click, no login, no CSRF token (RFC 8058): the secret link is enough."""
    with write_transaction(engine_of(request)) as connection:
        sub = subs.unsubscribe(connection, token, datetime.now(UTC))
    return render(
        request,
        "unsubscribe.html",
        {"title": "Unsubscribed", "sub": sub, "done": True},
        headers={"X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"},
    )


@router.post("/subscriptions/{token}/resubscribe")
def resubscribe(
    request: Request, token: str, settings: AppSettings, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with request.app.state.engine.connect() as connection:
        sub = subs.by_token(connection, token)
    return subscribe(request, settings, sub.email, csrf_token, sub.frequency)


def _embedder(request: Request) -> Embedder:
    model = request.app.state.search.embedder(wait=True)
    assert model is not None
    return model  # type: ignore[no-any-return]


@router.get("/subscriptions/{token}/preview")
def preview_page(
    request: Request,
    token: str,
    settings: AppSettings,
    connection: DbConnection,
    period: str | None = None,
    format: str = "html",
) -> Response:
    if format not in ("html", "text"):
        raise InvalidInput(f"format {format!r} is not html or text")
    sub = subs.by_token(connection, token)
    chosen = (
        parse_period(period) if period else latest_due(sub.frequency, datetime.now(UTC), settings)
    )
    shown = preview(connection, settings, sub, chosen, lambda: _embedder(request))
    if shown.rendered is None:
        return _nothing_to_send(request, connection, settings, sub, shown)
    headers = {"X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
    if format == "text":
        return PlainTextResponse(shown.rendered.text, headers=headers)
    return HTMLResponse(shown.rendered.html, headers=headers)


def _nothing_to_send(
    request: Request, connection: Connection, settings: Settings, sub: Subscription, shown: Preview
) -> Response:
    """Nothing would be sent for this period: say so, and offer the latest one with papers."""
    newest = latest_list_day(connection, today(settings))
    suggestion: Period | None = None
    if newest is not None:
        candidate = period_covering(sub.frequency, newest)
        if candidate.key != shown.period.key:
            suggestion = candidate
    return _page(request, sub, empty_period=shown.period, suggestion=suggestion)
