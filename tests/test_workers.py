"""Two web workers on one database share nothing else: sessions, the signing key, CSRF tokens,
rate limits and the scheduler's leadership all hold across them.

Each "worker" is a separate app built by create_app from the same settings (as each uvicorn
worker process builds its own), with no secret_key set, so the key generated on first start
must come from the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from papertide.accounts.users import create_user
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.jobs import Scheduler
from papertide.web.app import create_app
from papertide.web.auth import SESSION_COOKIE

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def workers(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    shared = settings.replace(secret_key="", api_ip_rate_limit=4)
    first, second = create_app(shared), create_app(shared)
    yield (
        TestClient(first, follow_redirects=False),
        TestClient(second, follow_redirects=False),
    )
    first.state.engine.dispose()
    second.state.engine.dispose()


def csrf(client: TestClient, path: str) -> str:
    match = CSRF.search(client.get(path).text)
    assert match, path
    return match.group(1)


def log_in(client: TestClient, password: str = PASSWORD) -> int:
    token = csrf(client, "/login")
    data = {"login": "ada", "password": password, "csrf_token": token}
    return client.post("/login", data=data).status_code


def test_a_session_made_by_one_worker_works_on_the_other(
    engine: Engine, workers: tuple[TestClient, TestClient]
) -> None:
    first, second = workers
    with write_transaction(engine) as connection:
        create_user(connection, "ada", "ada@example.org", PASSWORD)
    assert log_in(first) == 303
    cookie = first.cookies[SESSION_COOKIE]
    second.cookies.set(SESSION_COOKIE, cookie)
    assert second.get("/settings").status_code == 200  # signed with the shared key
    token = csrf(first, "/settings")  # a form of the first worker, posted to the second
    assert second.post("/logout", data={"csrf_token": token}).status_code == 303
    assert first.get("/settings").status_code == 303  # revoked for every worker


def test_log_in_limits_count_the_attempts_of_every_worker(
    engine: Engine, workers: tuple[TestClient, TestClient]
) -> None:
    with write_transaction(engine) as connection:
        create_user(connection, "ada", "ada@example.org", PASSWORD)
    codes = [log_in(workers[n % 2], f"wrong {n}") for n in range(11)]
    assert codes == [400] * 10 + [429]  # 10 per account, whichever worker was asked
    assert log_in(workers[0]) == 429


@pytest.mark.usefixtures("one_minute_window")
def test_anonymous_api_limits_hold_across_workers(
    workers: tuple[TestClient, TestClient],
) -> None:
    first, second = workers
    assert [first.get("/api/v1/trending").status_code for _ in range(3)] == [200] * 3
    first.app.state.api_address_limiter.flush()  # type: ignore[attr-defined]
    assert second.get("/api/v1/trending").status_code == 200  # the 4th: at the limit
    second.app.state.api_address_limiter.flush()  # type: ignore[attr-defined]
    refused = second.get("/api/v1/trending")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"


def test_one_scheduler_leads_among_the_workers(
    engine: Engine, settings: Settings, workers: tuple[TestClient, TestClient]
) -> None:
    schedulers = [client.app.state.scheduler for client in workers]  # type: ignore[attr-defined]
    assert all(isinstance(s, Scheduler) for s in schedulers)
    assert [s.lock.acquire() for s in schedulers] == [True, False]
    schedulers[0].stop()  # a clean stop hands over at once
    assert schedulers[1].lock.acquire()
    schedulers[1].stop()
