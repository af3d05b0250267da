"""Sign-up, log-in, log-out, password reset and the account settings page."""

from __future__ import annotations

import hashlib
import logging
from contextlib import closing
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from papertide.accounts import resets, sessions, tokens, users
from papertide.accounts.ratelimit import Limit, enforce
from papertide.db.engine import write_transaction
from papertide.digest.subscriptions import for_user
from papertide.errors import Conflict, InvalidInput
from papertide.mail import MailError, compose, make_mailer, send_message
from papertide.web.auth import (
    LoggedInUser,
    check_csrf,
    clear_session_cookie,
    set_session_cookie,
    viewer_of,
)
from papertide.web.deps import AppSettings, DbConnection, engine_of, safe_next
from papertide.web.rendering import render

router = APIRouter()
log = logging.getLogger("papertide.accounts")

SIGNUP_PER_IP = Limit(5, 3600, "sign-ups from your address")
LOGIN_PER_IP = Limit(20, 900, "log-in attempts from your address")
LOGIN_PER_ACCOUNT = Limit(10, 900, "log-in attempts for this account")
RESET_PER_IP = Limit(5, 3600, "password-reset requests from your address")
FormText = Annotated[str, Form()]
CsrfField = Annotated[str, Form(alias="csrf_token")]


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def limit_key(kind: str, typed: str) -> str:
    """The rate-limit key for an account name or address as typed: a long one is hashed, so
    the key fits its column (200 characters) on PostgreSQL however long the input."""
    value = typed.strip().lower()
    if len(value) > 120:
        value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return f"{kind}:{value}"


def _start_session(request: Request, user: users.User, target: str) -> Response:
    """Log ``user`` in with a brand-new session (no fixation) and go to ``target``."""
    old = viewer_of(request).session_id
    now = datetime.now(UTC)
    with write_transaction(engine_of(request)) as connection:
        if old:
            sessions.revoke_session(connection, old, now)
        raw = sessions.create_session(
            connection,
            user,
            ip=_ip(request),
            user_agent=request.headers.get("user-agent"),
            now=now,
        )
        users.record_login(connection, user, now)
    response = RedirectResponse(safe_next(target), status_code=303)
    set_session_cookie(request, response, raw)
    return response


@router.get("/signup")
def signup_page(request: Request, next: str = "/") -> Response:
    return render(request, "signup.html", {"title": "Sign up", "next": safe_next(next)})


@router.post("/signup")
def signup(
    request: Request,
    username: FormText,
    email: FormText,
    password: FormText,
    csrf_token: CsrfField = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_csrf(request, csrf_token)
    enforce(engine_of(request), [(f"signup:ip:{_ip(request)}", SIGNUP_PER_IP)])
    context = {"title": "Sign up", "next": safe_next(next), "username": username, "email": email}
    try:
        with write_transaction(engine_of(request)) as connection:
            user = users.create_user(connection, username, email, password)
    except (InvalidInput, Conflict) as exc:
        return render(request, "signup.html", {**context, "error": exc.message}, exc.status)
    return _start_session(request, user, next)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"title": "Log in", "next": safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    login: FormText,
    password: FormText,
    csrf_token: CsrfField = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_csrf(request, csrf_token)
    enforce(
        engine_of(request),
        [
            (f"login:ip:{_ip(request)}", LOGIN_PER_IP),
            (limit_key("login:account", login), LOGIN_PER_ACCOUNT),
        ],
    )
    with write_transaction(engine_of(request)) as connection:
        user = users.authenticate(connection, login, password)
    if user is None or not user.active:
        message = (
            "this account is suspended" if user is not None else "wrong username, email or password"
        )
        context = {"title": "Log in", "next": safe_next(next), "login": login, "error": message}
        return render(request, "login.html", context, 400 if user is None else 403)
    return _start_session(request, user, next)


@router.post("/logout")
def logout(request: Request, csrf_token: CsrfField = "") -> Response:
    check_csrf(request, csrf_token)
    raw = viewer_of(request).session_id
    if raw:
        with write_transaction(engine_of(request)) as connection:
            sessions.revoke_session(connection, raw)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(request, response)
    return response


@router.get("/settings")
def settings_page(request: Request, user: LoggedInUser, connection: DbConnection) -> Response:
    context = {
        "title": "Settings",
        "tokens": tokens.list_tokens(connection, user),
        "message": request.query_params.get("done"),
        "digest": for_user(connection, user.id),
    }
    return render(request, "settings.html", context)


@router.post("/settings/password")
def change_password(
    request: Request,
    user: LoggedInUser,
    current_password: FormText,
    new_password: FormText,
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(request, csrf_token)
    enforce(engine_of(request), [(limit_key("login:account", user.username), LOGIN_PER_ACCOUNT)])
    with write_transaction(engine_of(request)) as connection:
        if users.authenticate(connection, user.username, current_password) is None:
            raise InvalidInput("the current password is wrong")
        users.set_password(connection, user, new_password)
        sessions.revoke_user_sessions(connection, user, keep=viewer_of(request).session_id)
    return RedirectResponse("/settings?done=password", status_code=303)


@router.post("/settings/tokens")
def create_token(
    request: Request, user: LoggedInUser, name: FormText, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        token, raw = tokens.create_token(connection, user, name)
        listed = tokens.list_tokens(connection, user)
        digest = for_user(connection, user.id)
    context = {
        "title": "Settings",
        "tokens": listed,
        "digest": digest,
        "message": None,
        "new_token": raw,
        "new_token_name": token.name,
    }
    return render(request, "settings.html", context)


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, token_id: int, user: LoggedInUser, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    with write_transaction(engine_of(request)) as connection:
        tokens.revoke_token(connection, user, token_id)
    return RedirectResponse("/settings?done=token-revoked", status_code=303)


@router.get("/reset-password")
def reset_request_page(request: Request) -> Response:
    return render(request, "reset_request.html", {"title": "Reset your password"})


@router.post("/reset-password")
def reset_request(
    request: Request, settings: AppSettings, email: FormText, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    enforce(engine_of(request), [(f"reset:ip:{_ip(request)}", RESET_PER_IP)])
    with write_transaction(engine_of(request)) as connection:
        started = resets.start_reset(connection, email)
    if started is not None:
        user, raw = started
        link = f"{settings.base_url.rstrip('/')}/reset-password/{raw}"
        text = (
            f"Hello {user.username},\n\nsomeone (hopefully you) asked to reset your "
            f"{settings.site_name} password. Choose a new one here within the hour:\n\n{link}\n\n"
            "If you did not ask, ignore this email: your password stays as it is.\n"
        )
        message = compose(settings, user.email, f"Reset your {settings.site_name} password", text)
        try:
            with closing(make_mailer(settings)) as mailer:
                send_message(mailer, message)
        except MailError as error:
            # The page stays the same (it must not tell which addresses have accounts); the
            # operator sees the failure in the log.
            log.error("password-reset email for user %s failed: %s", user.id, error)
    context = {"title": "Check your email", "sent_to": email}
    return render(request, "reset_request.html", context)


@router.get("/reset-password/{token}")
def reset_form(request: Request, token: str) -> Response:
    return render(request, "reset_form.html", {"title": "Choose a new password", "token": token})


@router.post("/reset-password/{token}")
def reset_password(
    request: Request, token: str, new_password: FormText, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(request, csrf_token)
    try:
        with write_transaction(engine_of(request)) as connection:
            user = resets.finish_reset(connection, token, new_password)
    except InvalidInput as exc:
        context = {"title": "Choose a new password", "token": token, "error": exc.message}
        return render(request, "reset_form.html", context, 400)
    return _start_session(request, user, "/settings?done=password")
