"""Security headers on every kind of answer, cookie flags, request size limits (in process and
against a real server: chunked bodies, long heads), and the reverse-proxy settings of
``papertide serve`` (X-Forwarded-For and -Proto believed from trusted peers only)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.cookies import SimpleCookie
from typing import IO

import httpx
import pytest
import uvicorn
from access_table import CASES
from browser import free_port
from factories import listed, make_record, rows, write_records
from fastapi.testclient import TestClient
from people import SECRET, add_user, client_as
from sqlalchemy import Engine
from test_access import World, ask, build_world

from papertide.accounts.tokens import create_token
from papertide.accounts.users import create_user
from papertide.cli import proxy_options
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.errors import ConfigError
from papertide.web.app import create_app
from papertide.web.auth import ANON_COOKIE, SESSION_COOKIE

XFF = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
DAY = date(2025, 5, 2)


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0].lower()] = words[1:]
    return parsed


def check_headers(response: httpx.Response, where: str) -> list[str]:
    """What is wrong with ``response``'s security headers."""
    headers = response.headers
    problems = []
    csp = directives(headers.get("content-security-policy", ""))
    for name in ("script-src", "script-src-elem", "script-src-attr"):
        sources = csp.get(name, csp.get("default-src", []))
        if not sources or {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(sources):
            problems.append(f"{where}: {name} {sources}")
    for name in ("frame-ancestors", "object-src", "base-uri"):
        if csp.get(name) != ["'none'"]:
            problems.append(f"{where}: {name} {csp.get(name)}")
    wanted = {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": None,
        "permissions-policy": None,
        "cross-origin-opener-policy": "same-origin",
    }
    for name, value in wanted.items():
        if name not in headers or (value is not None and headers[name] != value):
            problems.append(f"{where}: {name} {headers.get(name)!r}")
    if "strict-transport-security" in headers:  # plain HTTP, http base_url: never
        problems.append(f"{where}: HSTS over plain HTTP")
    return problems


@pytest.fixture
def world(engine: Engine, settings: Settings) -> World:
    return build_world(engine, settings)


def test_every_answer_carries_the_security_headers(world: World) -> None:
    """Every GET of the access table (every page, feed, JSON answer, redirect, file), as
    anonymous and as a user, plus the error answers: a strict CSP (no inline or eval'd script,
    not framable), nosniff, a referrer policy, a permissions policy."""
    client = TestClient(world.app, follow_redirects=False)
    problems = []
    kinds = set()
    for case in (c for c in CASES if c.method in ("GET", "HEAD")):
        for role in ("anonymous", "user"):
            response = ask(world, client, role, case)
            kinds.add(response.headers.get("content-type", "").split(";")[0])
            problems += check_headers(response, f"{case.url} as {role} ({response.status_code})")
    client.cookies.clear()
    errors = [
        client.get("/papers/date/not-a-day"),  # 400
        client.get("/no/such/page"),  # 404
        client.post("/login", data={"login": "x", "password": "y"}),  # 403: no CSRF token
        client.get("/static/papertide.js"),
        client.get("/search?q=" + "a" * 9000),  # 414
        client.post("/login", content=b"x" * 2_000_000),  # 413
    ]
    statuses = [response.status_code for response in errors]
    assert statuses == [400, 404, 403, 200, 414, 413]
    for response in errors:
        problems += check_headers(response, f"{response.request.url} ({response.status_code})")
    assert not problems, "\n".join(problems)
    assert {"text/html", "application/json", "application/atom+xml", "text/css"} <= kinds


def test_hsts_only_over_tls(settings: Settings) -> None:
    plain = TestClient(create_app(settings))
    assert "strict-transport-security" not in plain.get("/").headers
    over_tls = TestClient(create_app(settings), base_url="https://testserver")
    assert over_tls.get("/").headers["strict-transport-security"] == "max-age=31536000"
    https_site = TestClient(create_app(settings.replace(base_url="https://papers.example.org")))
    for path in ("/", "/api/v1/papers", "/feeds/daily.atom", "/nothing-here"):
        assert https_site.get(path).headers["strict-transport-security"] == "max-age=31536000"


def cookie_flags(response: httpx.Response, name: str) -> dict[str, str | bool]:
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            morsel = jar[name]
            return {k: morsel[k] for k in ("httponly", "samesite", "secure", "path") if morsel[k]}
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


@pytest.mark.parametrize(
    ("changes", "base", "secure"),
    [
        ({}, "http://testserver", False),
        ({"cookie_secure": True}, "http://testserver", True),
        ({"base_url": "https://papers.example.org"}, "http://testserver", True),
        ({}, "https://testserver", True),  # the request came over HTTPS
    ],
)
def test_cookies_are_httponly_lax_and_secure_over_tls(
    engine: Engine, settings: Settings, changes: dict[str, object], base: str, secure: bool
) -> None:
    """The session cookie and the anonymous CSRF cookie (the token itself is in each form, so
    no script needs to read a cookie) are HttpOnly and SameSite=Lax everywhere, and Secure
    whenever the site is on HTTPS."""
    app = create_app(settings.replace(secret_key=SECRET, **changes))
    client = TestClient(app, base_url=base, follow_redirects=False)
    expected: dict[str, str | bool] = {"httponly": True, "samesite": "lax", "path": "/"}
    if secure:
        expected["secure"] = True
    page = client.get("/login")
    assert cookie_flags(page, ANON_COOKIE) == expected
    assert "set-cookie" not in client.get("/api/v1/papers").headers  # no cookie off pages
    assert "set-cookie" not in client.get("/feeds/daily.atom").headers
    ada = add_user(engine, "ada")
    logged_in, token = client_as(app, engine, ada)
    logged_in.base_url = base  # type: ignore[assignment]
    out = logged_in.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert cookie_flags(out, SESSION_COOKIE) == expected  # the deletion, same flags
    assert "max-age=0" in out.headers["set-cookie"].lower()


def test_log_in_sets_the_session_cookie_with_its_flags(engine: Engine, settings: Settings) -> None:
    with write_transaction(engine) as connection:
        create_user(connection, "ada", "ada@example.org", "correct horse battery")
    app = create_app(settings.replace(secret_key=SECRET, cookie_secure=True))
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    token = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(
        "/login", data={"login": "ada", "password": "correct horse battery", "csrf_token": token}
    )
    assert done.status_code == 303
    flags = cookie_flags(done, SESSION_COOKIE)
    assert flags == {"httponly": True, "samesite": "lax", "secure": True, "path": "/"}


# --- request size limits ------------------------------------------------------------------------


def test_bodies_over_the_limit_are_refused_with_413(engine: Engine, settings: Settings) -> None:
    write_records(engine, make_record("2505.00001", listing=listed(DAY, 0)))
    app = create_app(settings.replace(secret_key=SECRET, max_request_body_bytes=4096))
    ada = add_user(engine, "ada")
    client, token = client_as(app, engine, ada)
    url = "/papers/2505.00001/comments"

    small = client.post(url, data={"body": "x" * 1000, "csrf_token": token})
    assert small.status_code == 303
    big = client.post(url, data={"body": "x" * 5000, "csrf_token": token})
    assert big.status_code == 413 and big.headers["connection"] == "close"
    assert "Request too large" in big.text and "4,096 bytes" in big.text
    as_json = client.post(
        url, data={"body": "x" * 5000, "csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 413
    assert as_json.json()["error"]["code"] == "too_large"

    # Without a length (chunked), counted as read: refused once past the limit, whether the
    # route's parameters read the form or the handler reads it itself.
    def chunks(total: int) -> Iterator[bytes]:
        yield f"csrf_token={token}&body=".encode()
        for _ in range(total // 1024):
            yield b"y" * 1024

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for path in (url, "/settings/interests"):
        refused = client.post(path, content=chunks(8192), headers=form)
        assert refused.status_code == 413, (path, refused.text[:300])
        assert "Request too large" in refused.text
    assert client.post(url, content=chunks(2048), headers=form).status_code == 303
    with write_transaction(engine) as connection:
        raw = create_token(connection, ada, "tests")[1]
    api = client.post(
        "/api/v1/papers/2505.00001/comments",
        json={"body": "z" * 5000},
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert api.status_code == 413 and api.json()["error"]["code"] == "too_large"
    assert rows(engine, "SELECT count(*) FROM comments")[0][0] == 2  # the small ones


def test_the_default_limit_takes_the_largest_form(engine: Engine, settings: Settings) -> None:
    """No route takes files: the largest body is a comment of 10,000 characters, which even
    in multi-byte characters, form-encoded, stays far under the default 1 MiB."""
    write_records(engine, make_record("2505.00001", listing=listed(DAY, 0)))
    app = create_app(settings.replace(secret_key=SECRET))
    assert settings.max_request_body_bytes == 1_048_576
    client, token = client_as(app, engine, add_user(engine, "ada"))
    answer = client.post(
        "/papers/2505.00001/comments", data={"body": "é" * 10_000, "csrf_token": token}
    )
    assert answer.status_code == 303


def test_long_addresses_and_headers_are_refused(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    assert client.get("/search?q=" + "a" * 900).status_code != 414
    long_url = client.get("/search?q=" + "a" * 8200)
    assert long_url.status_code == 414 and "Address too long" in long_url.text
    headers = client.get("/", headers={"X-Big": "b" * 17_000})
    assert headers.status_code == 431
    as_json = client.get("/api/v1/papers?q=" + "a" * 8200)
    assert as_json.json()["error"]["code"] == "uri_too_long"


def test_rate_limit_keys_fit_however_long_the_input(engine: Engine, settings: Settings) -> None:
    """A log-in or subscription with a very long name or address is counted and answered like
    any other (its key is hashed to fit the column; PostgreSQL enforces the length)."""
    app = create_app(settings.replace(secret_key=SECRET))
    client, token = client_as(app, engine, None)
    long_name = "x" * 300 + "@example.org"
    login = client.post("/login", data={"login": long_name, "password": "wrong password",
                                        "csrf_token": token})  # fmt: skip
    assert login.status_code == 400 and "wrong username, email or password" in login.text
    subscribe = client.post("/subscribe", data={"email": "y" * 250 + "@example.org",
                                                "csrf_token": token})  # fmt: skip
    assert subscribe.status_code == 400 and "not an email address" in subscribe.text
    keys = {key for (key,) in rows(engine, "SELECT key FROM rate_limits")}
    assert {k.split(":sha256:")[0] for k in keys if ":sha256:" in k} == {
        "login:account",
        "subscribe:email",
    }


# --- a real server: chunked bodies, the HTTP parser's own limits, proxy headers ---------------


@contextmanager
def papertide_serve(db_url: str, *args: str, **env: str) -> Iterator[int]:
    """``papertide serve`` in a subprocess on a free port; yields the port."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    environ.update(
        PAPERTIDE_DATABASE_URL=db_url,
        PAPERTIDE_SCHEDULER="false",
        PAPERTIDE_EMBED_IN_BACKGROUND="false",
        PAPERTIDE_LOG_LEVEL="warning",
        PAPERTIDE_SECRET_KEY=SECRET,
        **env,
    )
    command = [sys.executable, "-m", "papertide", "serve", "--host", "127.0.0.1"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*command, "--port", str(port), *args], env=environ, stdout=log, stderr=log
        )
        yield from _serving(server, port, log)


def _serving(server: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> Iterator[int]:
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"papertide serve did not start: {log.read()[-2000:]!r}")
            time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def in_process_server(settings: Settings) -> Iterator[int]:
    """The app under uvicorn in a thread, with the options ``papertide serve`` gives it."""
    port = free_port()
    app = create_app(settings)
    options = proxy_options(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def raw_exchange(port: int, head: bytes, chunk: bytes = b"", total: int = 0) -> tuple[bytes, int]:
    """Send ``head``, then ``chunk`` as chunked-body frames up to ``total`` bytes, reading as we
    go; stop when the server answers or closes. (answer, body bytes sent)"""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(0.05)
    answer, sent = b"", 0
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)  # refused before it was all sent: read the answer all the same
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sent < total:
                try:
                    sock.sendall(frame)
                    sent += len(chunk)
                except TimeoutError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    break
            elif total and sent == total:
                sock.sendall(b"0\r\n\r\n")
                sent += 1
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
            if b"\r\n\r\n" in answer:
                break
        sock.settimeout(2)
        try:
            while data := sock.recv(65536):
                answer += data
        except OSError:
            pass
    finally:
        sock.close()
    return answer, sent


def test_a_real_server_refuses_chunked_bodies_and_long_heads(db_url: str) -> None:
    """Against ``papertide serve`` (uvicorn, h11): a chunked body is refused as soon as it
    passes the limit, and the server stops reading it; a head past our limits gets our 414 or
    431, one past h11's own buffer (or dribbled in past 16 KiB) h11's bare 400."""
    post = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    with papertide_serve(db_url, PAPERTIDE_MAX_REQUEST_BODY_BYTES="65536") as port:
        chunked = post + b"Transfer-Encoding: chunked\r\n\r\n"
        answer, sent = raw_exchange(port, chunked, b"a" * 16384, total=64 * 1024 * 1024)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert sent < 16 * 1024 * 1024  # it stopped reading long before the end
        answer, _ = raw_exchange(port, chunked, b"login=ada&password=x&", total=21 * 5)
        assert answer.startswith(b"HTTP/1.1 403"), answer[:300]  # read whole; CSRF refuses it
        declared = post + b"Content-Length: 10000000\r\n\r\n"
        assert raw_exchange(port, declared)[0].startswith(b"HTTP/1.1 413")

        get = b"GET /?q=%s HTTP/1.1\r\nHost: x\r\n%s\r\n"
        assert raw_exchange(port, get % (b"a" * 20_000, b""))[0].startswith(b"HTTP/1.1 414")
        big_header = b"X-Big: " + b"b" * 20_000 + b"\r\n"
        assert raw_exchange(port, get % (b"a", big_header))[0].startswith(b"HTTP/1.1 431")
        huge = get % (b"a", b"X-Big: " + b"b" * 200_000 + b"\r\n")
        assert raw_exchange(port, huge)[0].startswith(b"HTTP/1.1 400")
        dribbled = _dribble(port, b"GET / HTTP/1.1\r\nHost: x\r\n", b"X-%d: " + b"c" * 1000)
        assert dribbled.startswith(b"HTTP/1.1 400"), dribbled[:100]
        assert httpx.get(f"http://127.0.0.1:{port}/login").status_code == 200  # still serving


def _dribble(port: int, head: bytes, line: bytes) -> bytes:
    """Send header lines one by one (h11 sees an incomplete head growing); the answer."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(5)
        sock.sendall(head)
        for i in range(40):
            try:
                sock.sendall(line % i + b"\r\n")
            except OSError:
                break
            time.sleep(0.01)
        try:
            return sock.recv(200)
        except OSError:
            return b""


def _as_proxy_would(port: int) -> tuple[httpx.Response, httpx.Response]:
    """A page, then a failed log-in, each with X-Forwarded-For/-Proto headers."""
    base = f"http://127.0.0.1:{port}"
    page = httpx.get(base + "/login", headers=XFF)
    anon = SimpleCookie()
    anon.load(page.headers["set-cookie"])
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    login = httpx.post(
        base + "/login",
        data={"login": "nobody", "password": "wrong password", "csrf_token": token},
        headers={**XFF, "Cookie": f"{ANON_COOKIE}={anon[ANON_COOKIE].value}"},
    )
    assert login.status_code == 400, login.text[-500:]  # wrong password, counted
    return page, login


def _login_addresses(engine: Engine) -> set[str]:
    keys = rows(engine, "SELECT key FROM rate_limits WHERE key LIKE 'login:ip:%'")
    return {key.removeprefix("login:ip:") for (key,) in keys}


def test_forwarded_headers_are_believed_from_trusted_proxies(
    engine: Engine, settings: Settings
) -> None:
    """The default ``trusted_proxies`` (loopback): a local proxy's headers set the client
    address (rate limits) and the scheme (HSTS, Secure cookies)."""
    with in_process_server(settings.replace(secret_key=SECRET)) as port:
        page, _ = _as_proxy_would(port)
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in page.headers["set-cookie"].lower()
    assert _login_addresses(engine) == {"203.0.113.9"}


@pytest.mark.parametrize(
    ("args", "trusted"), [((), ""), (("--workers", "2"), "10.1.2.3,192.168.0.0/16")]
)
def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    engine: Engine, db_url: str, args: tuple[str, ...], trusted: str
) -> None:
    """``papertide serve`` passes ``trusted_proxies`` to uvicorn, single process or with
    workers: here the peer (127.0.0.1) is not trusted, so its X-Forwarded-For and -Proto are
    ignored: the address counted is the peer's, the page is plain HTTP (uvicorn's own default
    would have believed a loopback peer)."""
    with papertide_serve(db_url, *args, PAPERTIDE_TRUSTED_PROXIES=trusted) as port:
        page, _ = _as_proxy_would(port)
    assert "strict-transport-security" not in page.headers
    assert "secure" not in page.headers["set-cookie"].lower()
    assert _login_addresses(engine) == {"127.0.0.1"}


def test_trusted_proxies_must_be_addresses(settings: Settings) -> None:
    for bad in ("localhost", "10.0.0.0/33", "*,10.0.0.1"):
        with pytest.raises(ConfigError, match="trusted_proxies"):
            settings.replace(trusted_proxies=bad)
    assert settings.replace(trusted_proxies="10.0.0.0/8, ::1").trusted_proxies == [
        "10.0.0.0/8",
        "::1",
    ]
    assert settings.replace(trusted_proxies="").trusted_proxies == []
    assert proxy_options(settings.replace(trusted_proxies="")) == {
        "proxy_headers": False,
        "forwarded_allow_ips": None,
    }
