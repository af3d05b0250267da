"""Health probes and Prometheus metrics, in one process and across `serve --workers 2`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import observing
import orjson
import pytest
import smtp
from digests import add_subscriber
from factories import make_record, write_records
from fastapi import FastAPI
from fastapi.testclient import TestClient
from observing import (
    LOCAL,
    SECRET_KEY,
    SMTP_PASSWORD,
    requests_of,
    scrape,
    unreachable_url,
)
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert, text
from sqlalchemy.engine import make_url

from papertide.config import Settings
from papertide.db.engine import make_engine, write_transaction
from papertide.db.migrate import downgrade
from papertide.db.schema import outbox
from papertide.ingest.live import save_cursor
from papertide.jobs import record_run
from papertide.observability.health import READY_TIMEOUT_S, schema_head
from papertide.web.app import create_app

app = observing.app
client = observing.client


# --- probes ------------------------------------------------------------------------------------


def test_healthz_answers_without_the_database(app: FastAPI, client: TestClient) -> None:
    app.state.engine = make_engine(unreachable_url())  # any database access would fail
    client.cookies.set("pt_session", "x.y.z")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert client.head("/healthz").status_code == 200
    refused = client.post("/healthz")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert refused.json()["error"]["code"] == "method_not_allowed"


def test_readyz_when_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"] == {"status": "ok", "revision": schema_head()}
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers


def test_readyz_with_a_pending_migration(app: FastAPI, client: TestClient, engine: Engine) -> None:
    downgrade(engine, "-1")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready" and body["failed"] == ["migrations"]
    migrations = body["checks"]["migrations"]
    assert migrations["pending"] == [schema_head()] and migrations["head"] == schema_head()
    assert "papertide db migrate" in migrations["message"]
    assert body["checks"]["database"]["status"] == "ok"


def test_readyz_with_an_unreachable_database(app: FastAPI, client: TestClient) -> None:
    app.state.engine = make_engine(unreachable_url())
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < READY_TIMEOUT_S + 1
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["migrations"]["status"] == "unknown"
    assert response.headers["cache-control"] == "no-store"


def _hold_the_database(engine_name: str, db_url: str) -> tuple[object, object]:
    """Another connection that blocks every read of alembic_version."""
    if engine_name == "sqlite":
        path = make_url(db_url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE alembic_version SET version_num = version_num")
        return holder, holder.close
    engine = make_engine(db_url)
    connection = engine.connect()
    connection.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))

    def release() -> None:
        connection.rollback()
        connection.close()
        engine.dispose()

    return connection, release


def test_readyz_answers_503_in_time_when_the_database_hangs(
    app: FastAPI, client: TestClient, engine_name: str, db_url: str
) -> None:
    app.state.engine.dispose()  # SQLite: an exclusive lock needs the other connections closed
    _, release = _hold_the_database(engine_name, db_url)
    try:
        started = time.monotonic()
        first = client.get("/readyz")
        second = client.get("/readyz")
        took = time.monotonic() - started
        checks = [t for t in threading.enumerate() if t.name == "readiness"]
    finally:
        release()  # type: ignore[operator]
    assert first.status_code == second.status_code == 503
    assert "did not answer within" in first.json()["checks"]["database"]["message"]
    assert took < 2 * READY_TIMEOUT_S + 2
    assert len(checks) == 1  # the second probe waited on the first one's check
    deadline = time.monotonic() + 15
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.2)


# --- metrics -----------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    before = scrape(client)
    for token in ("tok-aaaa-1111", "tok-bbbb-2222"):
        assert client.get(f"/subscriptions/{token}").status_code == 404
    assert client.get("/no/such/page/secret-xyz").status_code == 404
    assert client.get("/api/v1/papers?limit=1").status_code == 200
    response = client.get("/metrics")
    values = scrape(client)
    assert (
        requests_of(values, "/subscriptions/{token}")
        - requests_of(before, "/subscriptions/{token}")
        == 2
    )
    assert requests_of(values, "<unmatched>") - requests_of(before, "<unmatched>") == 1
    assert requests_of(values, "/api/v1/papers") - requests_of(before, "/api/v1/papers") == 1
    key = (
        "papertide_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/api/v1/papers")),
    )
    assert values[key] >= 1
    for raw in ("tok-aaaa-1111", "secret-xyz", "limit=1"):
        assert raw not in response.text


def test_database_metrics(client: TestClient, engine: Engine, settings: Settings) -> None:
    now = datetime.now(UTC)
    write_records(engine, make_record("2505.00001"), make_record("2505.00002"))
    record_run(engine, "digest", "daily:2026-11-30", "done")
    record_run(engine, "digest", "daily:2026-12-01", "failed", "smtp down")
    record_run(engine, "trending", "2026-12-01T10:00:00+00:00", "running")
    sub = add_subscriber(engine, "ada@example.org")
    with write_transaction(engine) as connection:
        for n, status in enumerate(("pending", "pending", "failed", "sent", "skipped")):
            connection.execute(
                insert(outbox).values(
                    subscription_id=sub.id,
                    period=f"daily:2026-11-{10 + n}",
                    status=status,
                    message_id=f"<m{n}@example.org>",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        save_cursor(connection, "oai-pmh https://example.org/oai set=cs", "token-1", {})
    values = scrape(client)

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    assert value("papertide_job_runs", job="digest", status="done") == 1
    assert value("papertide_job_runs", job="digest", status="failed") == 1
    assert value("papertide_job_runs", job="trending", status="running") == 1
    last = value("papertide_job_last_success_timestamp_seconds", job="digest")
    assert abs(last - now.timestamp()) < 60
    assert value("papertide_outbox_messages", status="pending") == 2
    assert value("papertide_outbox_messages", status="failed") == 1
    assert value("papertide_outbox_messages", status="sending") == 0
    assert ("papertide_outbox_messages", (("status", "sent"),)) not in values
    assert value("papertide_papers") == 2
    assert value("papertide_papers_added_last_day") == 2
    source = "oai-pmh https://example.org/oai set=cs"
    assert value("papertide_ingest_resumption_pending", source=source) == 1
    assert (
        abs(value("papertide_ingest_last_run_timestamp_seconds", source=source) - now.timestamp())
        < 60
    )
    assert value("papertide_scheduler_leader") == 0  # the scheduler was not started
    assert value("papertide_database_metrics_up") == 1


def test_papers_added_in_the_last_day_by_insertion_order(
    engine: Engine, client: TestClient
) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    write_records(engine, make_record("2505.00010"), make_record("2505.00011"), now=old)
    write_records(engine, make_record("2505.00012"))
    values = scrape(client)
    assert values[("papertide_papers", ())] == 3
    assert values[("papertide_papers_added_last_day", ())] == 1


def test_metrics_only_for_allowed_addresses(app: FastAPI, settings: Settings) -> None:
    outsider = TestClient(app, client=("203.0.113.9", 40000))
    response = outsider.get("/metrics")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "metrics_allow" in response.json()["error"]["message"]
    assert TestClient(app, client=("::1", 40000)).get("/metrics").status_code == 200
    assert TestClient(app, client=("::ffff:127.0.0.1", 1)).get("/metrics").status_code == 200
    opened = create_app(settings.replace(metrics_allow="203.0.113.0/24", embed_in_background=False))
    assert TestClient(opened, client=("203.0.113.9", 1)).get("/metrics").status_code == 200
    assert TestClient(opened, client=LOCAL).get("/metrics").status_code == 403


# --- papertide serve --workers 2 ---------------------------------------------------------------


def _get(port: int, path: str) -> httpx.Response:
    # A new connection each time, so the kernel hands requests to either worker.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        return http.get(path, headers={"Connection": "close"})


def _worker_counts(folder: Path, scratch: Path) -> dict[int, float]:
    """Each worker's own count of favicon requests, read from its metrics file."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        single = scratch / path.stem
        single.mkdir(exist_ok=True)
        shutil.copy(path, single / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(single))
        value = registry.get_sample_value(
            "papertide_http_requests_total",
            {"method": "GET", "route": "/favicon.ico", "status": "200"},
        )
        counts[int(path.stem.split("_")[1])] = value or 0.0
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_two_workers_share_their_metrics(db_url: str, tmp_path: Path) -> None:
    port = smtp.free_port()
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by an earlier run")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env.update(
        PAPERTIDE_DATABASE_URL=db_url,
        PAPERTIDE_LOG_FORMAT="json",
        PAPERTIDE_SECRET_KEY=SECRET_KEY,
        PAPERTIDE_SMTP_PASSWORD=SMTP_PASSWORD,
        PAPERTIDE_EMBED_IN_BACKGROUND="false",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "papertide", "serve", "--workers", "2", "--port", str(port)]
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if _get(port, "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        assert not (folder / "counter_1.db").exists()  # serve emptied the folder
        sent = 0
        # a worker's file may exist before it served a favicon (its /healthz or jobs count too)
        while sum(count > 0 for count in _worker_counts(folder, tmp_path).values()) < 2:
            assert sent < 400, "every request went to one worker"
            with ThreadPoolExecutor(8) as pool:
                statuses = list(
                    pool.map(lambda _: _get(port, "/favicon.ico").status_code, range(16))
                )
            assert statuses == [200] * 16
            sent += 16
        per_worker = _worker_counts(folder, tmp_path)
        assert sum(per_worker.values()) == sent
        for _ in range(4):  # each scrape may land on either worker: each sees the sum
            scraped = {}
            for family in text_string_to_metric_families(_get(port, "/metrics").text):
                for sample in family.samples:
                    scraped[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            key = (
                "papertide_http_requests_total",
                (("method", "GET"), ("route", "/favicon.ico"), ("status", "200")),
            )
            assert scraped[key] == sent
        leaders: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while len(leaders) != 2 or sum(leaders.values()) != 1:
            assert time.monotonic() < deadline, f"leader gauges: {leaders}"
            time.sleep(1)
            leaders = {}
            for family in text_string_to_metric_families(_get(port, "/metrics").text):
                for sample in family.samples:
                    if sample.name == "papertide_scheduler_leader":
                        leaders[sample.labels["pid"]] = sample.value
        assert set(map(int, leaders)) == set(per_worker)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    output = log_path.read_text()
    records = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    others = [line for line in output.splitlines() if line and not line.startswith("{")]
    assert all(line.startswith("Papertide serving on") for line in others), others
    access = [r for r in records if r["logger"] == "papertide.access"]
    assert len(access) >= sent and all(r["request_id"] for r in access)
    assert {r["logger"] for r in records} >= {"uvicorn.error", "papertide.access"}
    assert '"GET /favicon.ico HTTP/1.1" 200' not in output  # uvicorn's own access log is off
    for secret in (SECRET_KEY, SMTP_PASSWORD):
        assert secret not in output
