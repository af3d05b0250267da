"""Live fetches from arXiv into the catalog: API queries, OAI-PMH harvests, listing feeds.

Each page of results is written in one transaction together with the source's cursor in
``ingest_state``, so a harvest killed at any moment resumes from the last committed page and
never skips or half-writes one. All three share one polite HTTP client: our User-Agent, at least
``arxiv_request_interval`` seconds between requests, Retry-After honoured, backoff on failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from papertide.catalog.records import Listing, PaperRecord, RecordError
from papertide.catalog.store import BatchResult, CatalogWriter
from papertide.config import Settings
from papertide.db.engine import write_transaction
from papertide.db.schema import ingest_state
from papertide.ingest import arxiv_atom, arxiv_rss, oai_pmh
from papertide.ingest.polite_http import build_client
from papertide.ingest.runner import IngestReport

Sleep = Callable[[float], None]
Item = PaperRecord | RecordError


@dataclass
class LiveFetch:
    """Shared set-up of the live fetchers; ``transport`` and ``sleep`` are replaced in tests."""

    engine: Engine
    settings: Settings
    transport: httpx.BaseTransport | None = None
    sleep: Sleep = time.sleep
    on_page: Callable[[BatchResult], None] = field(default=lambda result: None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def client(self) -> httpx.Client:
        return build_client(self.settings.http_user_agent, transport=self.transport)

    def writer(self) -> CatalogWriter:
        return CatalogWriter(
            tz=self.tz, auto_follow=frozenset(self.settings.auto_follow_categories)
        )

    def _commit_page(
        self,
        items: Iterable[Item],
        report: IngestReport,
        cursor: tuple[str, str | None, dict[str, Any]] | None = None,
    ) -> None:
        records = [item for item in items if isinstance(item, PaperRecord)]
        report.totals.errors.extend(item for item in items if isinstance(item, RecordError))
        with write_transaction(self.engine) as connection:
            result = self.writer().write(connection, records) if records else BatchResult()
            if cursor is not None:
                save_cursor(connection, *cursor)
        report.totals.add(result)
        self.on_page(result)

    def query_arxiv(self, search_query: str, max_results: int) -> IngestReport:
        """Run an arXiv API query (``cat:cs.CL AND ti:diffusion``), page by page."""
        report, started = IngestReport(), time.perf_counter()
        with self.client() as client:
            for page in arxiv_atom.fetch_query(
                client,
                self.settings.arxiv_api_url,
                search_query,
                max_results_total=max_results,
                interval=self.settings.arxiv_request_interval,
                sleep=self.sleep,
                sort_by="submittedDate",
                sort_order="descending",
            ):
                self._commit_page(page.records, report)
        report.seconds = time.perf_counter() - started
        return report

    def harvest_oai(
        self, set_spec: str | None, from_date: date | None, until_date: date | None
    ) -> IngestReport:
        """Harvest ListRecords (metadataPrefix arXiv), resuming from the stored token if any."""
        url = self.settings.arxiv_oai_url
        key = f"oai-pmh {url} set={set_spec or '*'}"
        report, started = IngestReport(), time.perf_counter()
        with self.engine.connect() as connection:
            token, details = load_cursor(connection, key)
        if from_date is None and token is None and details.get("next_from"):
            from_date = date.fromisoformat(details["next_from"])
        with self.client() as client:
            for page in oai_pmh.fetch_list_records(
                client,
                url,
                set_spec=set_spec,
                from_date=from_date,
                until_date=until_date,
                resumption_token=token,
                interval=self.settings.arxiv_request_interval,
                sleep=self.sleep,
            ):
                if page.resumption_token is None and page.response_date is not None:
                    details = {**details, "next_from": page.response_date.date().isoformat()}
                self._commit_page(page.records, report, (key, page.resumption_token, details))
        report.seconds = time.perf_counter() - started
        return report

    def fetch_listing(self, categories: list[str]) -> IngestReport:
        """Today's announcements for ``categories``; auto-followed ones go on today's list."""
        report, started = IngestReport(), time.perf_counter()
        with self.client() as client:
            items, info = arxiv_rss.fetch_listing(
                client,
                categories,
                interval=self.settings.arxiv_request_interval,
                sleep=self.sleep,
            )
        follow = set(self.settings.auto_follow_categories)
        day = (info.announced_at or datetime.now(UTC)).astimezone(self.tz).date()
        for item in items:
            if not isinstance(item, PaperRecord):
                continue
            kind = info.announce_types.get(item.arxiv_id)
            if kind in {"new", "cross"} and follow.intersection(item.categories):
                item.listing = Listing(day=day)
        self._commit_page(items, report)
        report.seconds = time.perf_counter() - started
        return report


def load_cursor(connection: Connection, source: str) -> tuple[str | None, dict[str, Any]]:
    row = connection.execute(
        select(ingest_state.c.cursor, ingest_state.c.details).where(ingest_state.c.source == source)
    ).first()
    if row is None:
        return None, {}
    return row.cursor, dict(row.details or {})


def save_cursor(
    connection: Connection, source: str, cursor: str | None, details: dict[str, Any]
) -> None:
    values = {
        "source": source,
        "cursor": cursor,
        "last_run_at": datetime.now(UTC),
        "details": details,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ingest_state).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[ingest_state.c.source],
        set_={k: statement.excluded[k] for k in ("cursor", "last_run_at", "details")},
    )
    connection.execute(statement)
