"""Who is asking: the session cookie, the viewer of each request, CSRF tokens, API tokens.

``ViewerMiddleware`` resolves the signed session cookie once per request into
``request.state.viewer``; templates see it as ``viewer``. Every form carries a CSRF token:
the session's own token when logged in, otherwise an HMAC of a random per-browser cookie
(``pt_anon``), so sign-up and log-in forms are protected too. Write endpoints of the JSON API
take an ``Authorization: Bearer pt_...`` token instead (no cookie, so no CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from papertide.accounts.sessions import TOUCH_EVERY, CookieSigner, load_session, touch_session
from papertide.accounts.tokens import user_for_token
from papertide.accounts.users import User
from papertide.db.engine import write_transaction
from papertide.errors import DatabaseUnavailable, PermissionDenied

SESSION_COOKIE = "pt_session"
ANON_COOKIE = "pt_anon"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a request: a user with a session, or anonymous."""

    user: User | None
    session_id: str | None  # raw id from the cookie, when logged in
    csrf_token: str

    @property
    def logged_in(self) -> bool:
        return self.user is not None


def _anon_csrf(secret: str, anon_id: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + anon_id.encode(), hashlib.sha256).hexdigest()


class ViewerMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        signer: CookieSigner = request.app.state.signer
        secret: str = request.app.state.secret
        viewer = None
        cookie = request.cookies.get(SESSION_COOKIE)
        raw = signer.unsign(cookie) if cookie else None
        if raw:
            viewer = await run_in_threadpool(_session_viewer, request.app.state.engine, raw)
        new_anon = None
        if viewer is None:
            anon_id = request.cookies.get(ANON_COOKIE) or ""
            if len(anon_id) < 20:
                anon_id = new_anon = secrets.token_urlsafe(24)
            viewer = Viewer(None, None, _anon_csrf(secret, anon_id))
        request.state.viewer = viewer
        response = await call_next(request)
        # Only pages carry forms: feeds, JSON and files stay cookie-free (and cacheable).
        is_page = response.headers.get("content-type", "").startswith("text/html")
        if new_anon is not None and is_page:
            response.set_cookie(
                ANON_COOKIE,
                new_anon,
                httponly=True,
                samesite="lax",
                secure=secure_cookies(request),
                max_age=60 * 60 * 24 * 365,
            )
        return response


def secure_cookies(request: Request) -> bool:
    """Whether cookies get the ``Secure`` flag: ``cookie_secure``, an https ``base_url``, or a
    request that came over HTTPS (directly, or as a trusted proxy's X-Forwarded-Proto says)."""
    settings = request.app.state.settings
    return bool(
        settings.cookie_secure
        or settings.base_url.startswith("https://")
        or request.url.scheme == "https"
    )


def _session_viewer(engine: Engine, raw: str) -> Viewer | None:
    now = datetime.now(UTC)
    with engine.connect() as connection:
        session = load_session(connection, raw, now)
    if session is None:
        return None
    if now - session.last_seen_at > TOUCH_EVERY:
        # Best effort: a read-only, full or busy database still serves its pages.
        with suppress(DatabaseUnavailable), write_transaction(engine) as connection:
            touch_session(connection, session, now)
    return Viewer(session.user, raw, session.csrf_token)


def viewer_of(request: Request) -> Viewer:
    viewer: Viewer = request.state.viewer
    return viewer


def set_session_cookie(request: Request, response: Response, raw_session_id: str) -> None:
    signer: CookieSigner = request.app.state.signer
    response.set_cookie(
        SESSION_COOKIE,
        signer.sign(raw_session_id),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        max_age=60 * 60 * 24 * 30,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=secure_cookies(request)
    )


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form post whose token is not this viewer's."""
    expected = viewer_of(request).csrf_token
    submitted = submitted or request.headers.get(CSRF_HEADER, "")
    if not submitted or not hmac.compare_digest(submitted, expected):
        raise PermissionDenied(
            "this form has expired or did not come from this site; reload the page and try again"
        )


def require_user(request: Request) -> User:
    user = viewer_of(request).user
    if user is None:
        raise PermissionDenied("log in to do this", login_required=True)
    return user


def require_moderator(request: Request) -> User:
    user = require_user(request)
    if not user.can_moderate:
        raise PermissionDenied("only moderators may do this")
    return user


def require_admin(request: Request) -> User:
    user = require_user(request)
    if not user.is_admin:
        raise PermissionDenied("only administrators may do this")
    return user


def bearer_user(request: Request) -> User:
    """The user of the ``Authorization: Bearer`` API token (JSON API writes)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PermissionDenied(
            "send an API token: Authorization: Bearer pt_...", login_required=True
        )
    engine: Engine = request.app.state.engine
    with engine.connect() as connection:
        user = user_for_token(connection, token.strip())
    if user is None:
        raise PermissionDenied("the API token is unknown or revoked", login_required=True)
    return user


def session_or_token_user(request: Request) -> User:
    """An API token's user when an ``Authorization`` header is sent, else the session's (JSON
    read by the site's own pages and by scripts alike)."""
    if request.headers.get("authorization"):
        return bearer_user(request)
    return require_user(request)


CurrentViewer = Annotated[Viewer, Depends(viewer_of)]
LoggedInUser = Annotated[User, Depends(require_user)]
Moderator = Annotated[User, Depends(require_moderator)]
Admin = Annotated[User, Depends(require_admin)]
TokenUser = Annotated[User, Depends(bearer_user)]
SessionOrTokenUser = Annotated[User, Depends(session_or_token_user)]
