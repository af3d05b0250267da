"""Writing records into the catalog, a batch at a time, idempotently.

For each batch: load the current state of the papers it names (a handful of queries, whatever
the batch size), merge every record in memory (:mod:`papertide.catalog.merge`), then write only
what changed: new papers inserted, changed ones updated with their authors, categories and
versions rewritten, daily-list entries added. The caller owns the transaction, so a batch is
all-or-nothing: a crash never leaves a half-written paper.

Records may come merged ahead as new papers (:class:`papertide.catalog.rows.AsNew`, done by the
ingest runner's parser thread); the writer uses that work when the paper is new. On SQLite the
loads and the big inserts go through the DB-API cursor (:mod:`papertide.catalog.sqlite_bulk`),
storing exactly what Core would; PostgreSQL goes through Core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from papertide.catalog import sqlite_bulk
from papertide.catalog.merge import PaperState, empty_state, merge_record
from papertide.catalog.records import Listing, OrganizationRef, PaperRecord, RecordError
from papertide.catalog.rows import (
    AUTHOR_COLUMNS,
    CATEGORY_COLUMNS,
    INSERT_COLUMNS,
    PYTHON_VALUES,
    SQLITE_VALUES,
    UPDATE_COLUMNS,
    VERSION_COLUMNS,
    AsNew,
    NaiveDatetime,
    child_rows,
    computed_ahead,
    paper_values,
    record_of,
)
from papertide.catalog.sqlite_bulk import insert_rows, next_paper_id
from papertide.db.schema import (
    daily_entries,
    organizations,
    paper_authors,
    paper_categories,
    paper_versions,
    papers,
)

AUTO_FOLLOW_MAX_AGE = timedelta(days=7)


@dataclass
class BatchResult:
    """What a batch did, per record: new, updated or unchanged papers, plus listings."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    listings_added: int = 0
    errors: list[RecordError] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.listings_added += other.listings_added
        self.errors.extend(other.errors)


@dataclass(frozen=True)
class CatalogWriter:
    """Writes batches of records; ``auto_follow`` categories put new papers on today's list."""

    tz: ZoneInfo
    auto_follow: frozenset[str] = frozenset()
    now: datetime | None = None

    def write(self, connection: Connection, records: Sequence[PaperRecord | AsNew]) -> BatchResult:
        """Merge and write ``records`` (some perhaps merged ahead as new papers, see AsNew)."""
        now = self.now or datetime.now(UTC)
        result = BatchResult()
        ids = list(dict.fromkeys(record_of(r).arxiv_id for r in records))
        before = _load_states(connection, ids)
        states: dict[str, PaperState] = dict(before)
        # Content hash of each paper's current state in ``states``, computed once per merge.
        hashes = {arxiv_id: state.fields["_hash"] for arxiv_id, state in before.items()}
        listings: dict[str, list[tuple[Listing, str]]] = {}
        orgs: dict[str, OrganizationRef] = {}
        ahead: dict[str, AsNew] = {}  # records merged ahead whose merge is used
        for item in records:
            record = record_of(item)
            arxiv_id = record.arxiv_id
            old = states.get(arxiv_id)
            if old is None and not record.title:
                result.errors.append(
                    RecordError(record.position or arxiv_id, "new paper has no title")
                )
                continue
            if old is None and isinstance(item, AsNew):
                merged, digest = item.state, item.digest
                ahead[arxiv_id] = item
            else:
                merged = merge_record(old, record)
                digest = merged.content_hash()
            states[arxiv_id] = merged
            if old is None:
                result.new += 1
            elif digest != hashes[arxiv_id]:
                result.updated += 1
            else:
                result.unchanged += 1
            hashes[arxiv_id] = digest
            if record.organization is not None:
                orgs[record.organization.slug] = record.organization
            listing = record.listing or self._auto_listing(old, merged, now)
            if listing is not None:
                source = "auto-follow" if record.listing is None else record.source
                listings.setdefault(arxiv_id, []).append((listing, source))
        org_ids = _ensure_organizations(connection, orgs.values(), now)
        paper_ids = _write_papers(connection, before, states, hashes, org_ids, now, ahead)
        result.listings_added = _write_listings(connection, paper_ids, listings, now)
        return result

    def _auto_listing(
        self, old: PaperState | None, merged: PaperState, now: datetime
    ) -> Listing | None:
        if old is not None or not self.auto_follow:
            return None
        if not self.auto_follow.intersection(merged.categories):
            return None
        published = merged.fields.get("published_at")
        if published is None or now - published > AUTO_FOLLOW_MAX_AGE:
            return None
        return Listing(day=now.astimezone(self.tz).date())


_CHUNK = 900  # ids per IN (...) list


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load_states(connection: Connection, arxiv_ids: Sequence[str]) -> dict[str, PaperState]:
    """Current state of the named papers (absent ones are simply missing), keyed by arXiv id."""
    if connection.dialect.name == "sqlite":
        states = sqlite_bulk.load_states(connection, arxiv_ids, _CHUNK)
        for state in states.values():
            state.fields["_hash"] = state.content_hash()
        return states
    states = {}
    by_pk: dict[int, PaperState] = {}
    for chunk in _chunks(arxiv_ids):
        rows = connection.execute(
            select(papers, organizations.c.slug.label("organization_slug"))
            .outerjoin(organizations, papers.c.organization_id == organizations.c.id)
            .where(papers.c.arxiv_id.in_(chunk))
        ).mappings()
        for row in rows:
            state = empty_state(row["arxiv_id"])
            for name in state.fields:
                state.fields[name] = row[name]
            state.sources = dict(row["field_sources"] or {})
            state.fields["_id"] = row["id"]
            states[row["arxiv_id"]] = state
            by_pk[row["id"]] = state
    if not by_pk:
        return states
    pks = list(by_pk)
    for chunk in _chunks(pks):
        for pid, name, affiliation in connection.execute(
            select(paper_authors.c.paper_id, paper_authors.c.name, paper_authors.c.affiliation)
            .where(paper_authors.c.paper_id.in_(chunk))
            .order_by(paper_authors.c.paper_id, paper_authors.c.position)
        ):
            by_pk[pid].authors.append((name, affiliation))
        for pid, category in connection.execute(
            select(paper_categories.c.paper_id, paper_categories.c.category)
            .where(paper_categories.c.paper_id.in_(chunk))
            .order_by(paper_categories.c.paper_id, paper_categories.c.position)
        ):
            by_pk[pid].categories.append(category)
        for pid, number, at, size in connection.execute(
            select(paper_versions).where(paper_versions.c.paper_id.in_(chunk))
        ):
            by_pk[pid].versions[number] = (at, size)
    for state in states.values():
        state.fields["_hash"] = state.content_hash()
    return states


def _ensure_organizations(
    connection: Connection, refs: Iterable[OrganizationRef], now: datetime
) -> dict[str, int]:
    wanted = {ref.slug: ref for ref in refs}
    if not wanted:
        return {}
    found = dict(
        connection.execute(
            select(organizations.c.slug, organizations.c.id).where(
                organizations.c.slug.in_(list(wanted))
            )
        ).all()
    )
    missing = [
        {"slug": ref.slug, "name": ref.name, "avatar_url": ref.avatar_url, "created_at": now}
        for slug, ref in wanted.items()
        if slug not in found
    ]
    if missing:
        connection.execute(insert(organizations), missing)
        found.update(
            connection.execute(
                select(organizations.c.slug, organizations.c.id).where(
                    organizations.c.slug.in_([m["slug"] for m in missing])
                )
            ).all()
        )
    return found


def _write_papers(
    connection: Connection,
    before: dict[str, PaperState],
    states: dict[str, PaperState],
    hashes: dict[str, str],
    org_ids: dict[str, int],
    now: datetime,
    ahead: dict[str, AsNew],
) -> dict[str, int]:
    """Insert new papers, update changed ones; return arXiv id -> paper pk for the batch."""
    paper_ids: dict[str, int] = {
        arxiv_id: state.fields["_id"] for arxiv_id, state in before.items()
    }
    fresh: list[PaperState] = []
    changed: list[PaperState] = []
    for arxiv_id, state in states.items():
        if arxiv_id not in before:
            fresh.append(state)
        elif hashes[arxiv_id] != before[arxiv_id].fields["_hash"]:
            changed.append(state)
    if connection.dialect.name == "sqlite":
        try:
            _write_papers_sqlite(
                connection, fresh, changed, before, hashes, org_ids, now, ahead, paper_ids
            )
            return paper_ids
        except NaiveDatetime:
            pass  # nothing written yet: Core raises the error users see for these values
    if fresh:
        # A plain executemany, then one lookup: INSERT .. RETURNING in parameter order makes
        # SQLite run one statement per row.
        stamps = (now, now)
        new = [paper_values(s, hashes[s.arxiv_id], org_ids, PYTHON_VALUES) + stamps for s in fresh]
        connection.execute(insert(papers), [dict(zip(INSERT_COLUMNS, r, strict=True)) for r in new])
        for chunk in _chunks([state.arxiv_id for state in fresh]):
            found = connection.execute(
                select(papers.c.arxiv_id, papers.c.id).where(papers.c.arxiv_id.in_(chunk))
            )
            paper_ids.update({arxiv_id: pk for arxiv_id, pk in found})
    if changed:
        _update_papers(connection, changed, before, hashes, org_ids, now)
    _delete_children(connection, [s.fields["_id"] for s in changed])
    authors, categories, versions = child_rows(fresh + changed, paper_ids, PYTHON_VALUES)
    for table, columns, rows in (
        (paper_authors, AUTHOR_COLUMNS, authors),
        (paper_categories, CATEGORY_COLUMNS, categories),
        (paper_versions, VERSION_COLUMNS, versions),
    ):
        if rows:
            connection.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
    return paper_ids


def _write_papers_sqlite(
    connection: Connection,
    fresh: list[PaperState],
    changed: list[PaperState],
    before: dict[str, PaperState],
    hashes: dict[str, str],
    org_ids: dict[str, int],
    now: datetime,
    ahead: dict[str, AsNew],
    paper_ids: dict[str, int],
) -> None:
    """The same writes through the DB-API cursor; every row is built before the first write."""
    values = SQLITE_VALUES
    stamps = (values.timestamp(now),) * 2
    first = next_paper_id(connection) if fresh else 0
    new_ids: dict[str, int] = {}
    rows = []
    for pk, state in enumerate(fresh, first):
        new_ids[state.arxiv_id] = pk
        found = computed_ahead(ahead, state, values)
        row = found.row if found is not None else None
        if row is None:
            row = paper_values(state, hashes[state.arxiv_id], org_ids, values)
        rows.append((pk, *row, *stamps))
    authors, categories, versions = child_rows(fresh + changed, paper_ids | new_ids, values, ahead)
    paper_ids.update(new_ids)
    insert_rows(connection, "papers", ("id", *INSERT_COLUMNS), rows)
    if changed:
        _update_papers(connection, changed, before, hashes, org_ids, now)
    _delete_children(connection, [s.fields["_id"] for s in changed])
    insert_rows(connection, "paper_authors", AUTHOR_COLUMNS, authors)
    insert_rows(connection, "paper_categories", CATEGORY_COLUMNS, categories)
    insert_rows(connection, "paper_versions", VERSION_COLUMNS, versions)


def _update_papers(
    connection: Connection,
    changed: list[PaperState],
    before: dict[str, PaperState],
    hashes: dict[str, str],
    org_ids: dict[str, int],
    now: datetime,
) -> None:
    rows = []
    for state in changed:
        new = paper_values(state, hashes[state.arxiv_id], org_ids, PYTHON_VALUES)
        row = dict(zip(INSERT_COLUMNS, (*new, now, now), strict=True))
        old_imported = before[state.arxiv_id].fields.get("imported_upvotes") or 0
        params = {f"v_{name}": row[name] for name in UPDATE_COLUMNS}
        params["v_upvote_delta"] = row["imported_upvotes"] - old_imported
        params["v_pk"] = state.fields["_id"]
        rows.append(params)
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in UPDATE_COLUMNS}
    values["upvotes"] = papers.c.upvotes + bindparam("v_upvote_delta")
    statement = update(papers).where(papers.c.id == bindparam("v_pk")).values(values)
    connection.execute(statement, rows)


def _delete_children(connection: Connection, replace: list[int]) -> None:
    for chunk in _chunks(replace):
        for table in (paper_authors, paper_categories, paper_versions):
            connection.execute(delete(table).where(table.c.paper_id.in_(chunk)))


def _write_listings(
    connection: Connection,
    paper_ids: dict[str, int],
    listings: dict[str, list[tuple[Listing, str]]],
    now: datetime,
) -> int:
    """Add daily-list entries not there yet; a later import of the same day updates the order."""
    if not listings:
        return 0
    wanted: dict[tuple[int, date], dict[str, Any]] = {}
    for arxiv_id, items in listings.items():
        for listing, source in items:
            wanted[(paper_ids[arxiv_id], listing.day)] = {
                "paper_id": paper_ids[arxiv_id],
                "day": listing.day,
                "position": listing.position,
                "source": source,
                "submitter_name": listing.submitter_name,
                "comment": listing.comment,
                "created_at": now,
            }
    existing: dict[tuple[int, date], int | None] = {}
    pks = list({pk for pk, _ in wanted})
    for chunk in _chunks(pks):
        for pid, day, position in connection.execute(
            select(daily_entries.c.paper_id, daily_entries.c.day, daily_entries.c.position).where(
                daily_entries.c.paper_id.in_(chunk)
            )
        ):
            existing[(pid, day)] = position
    fresh = [row for key, row in wanted.items() if key not in existing]
    moved = [
        {"v_pid": row["paper_id"], "v_day": row["day"], "v_position": row["position"]}
        for key, row in wanted.items()
        if key in existing and row["position"] is not None and existing[key] != row["position"]
    ]
    if fresh:
        connection.execute(insert(daily_entries), fresh)
    if moved:
        connection.execute(
            update(daily_entries)
            .where(daily_entries.c.paper_id == bindparam("v_pid"))
            .where(daily_entries.c.day == bindparam("v_day"))
            .values(position=bindparam("v_position")),
            moved,
        )
    return len(fresh)
