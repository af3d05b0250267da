"""Query plans of Papertide's hot queries on one database: SQLite or PostgreSQL.

Each hot query is run through the product's own function (the day list, week and month lists,
trending, the HF daily-papers API, search in its modes, similar papers, the "for you"
candidates, the digest outbox's ``due()`` and claim, the paper page), with real parameters
taken from the database itself (its newest list day, a paper listed that day, words of that
paper's title, its category). Every SQL statement the function sends is captured as the driver
received it (SQLAlchemy's ``before_cursor_execute``, parameters bound), then replayed in a
transaction that is rolled back:

- PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)`` of each statement (``SET LOCAL`` statements, such
  as pgvector's ``hnsw.ef_search``, are executed first, as the product does); the time is the
  plan's execution time.
- SQLite: ``EXPLAIN QUERY PLAN``; the time is the statement run for real, best of three.

So the plans are of the real statements, not retyped copies. Flagged: on SQLite a ``SCAN``
without ``SEARCH`` of a big table; on PostgreSQL a scan (sequential, or an unbounded index scan)
that reads or filters out MANY_ROWS rows of one, since its planner rightly reads a table that
holds few rows (the benchmark's ``comments``) whole; and any statement slower than SLOW_MS. A
scan of a table the benchmark leaves small is checked by filling it in a rolled-back
transaction (docs/database.md, "Query plans"). On SQLite, keyword search runs in
tantivy and vector search in faiss, outside SQL: only the SQL around them (filters, pins) has
plans there. ``--sqlite-stats`` shows SQLite's plans as they would be with statistics: an
``ANALYZE`` (sampling STATS_ROWS rows per index) inside the replay's rolled-back transaction,
the database left as it was (Papertide never runs ``ANALYZE`` on SQLite itself).

Usage: python bench/explain.py DATABASE_URL [--no-analyze] [--only LABEL] [--json FILE]
       [--sqlite-stats]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout this script is in

# Tables that grow with the catalog or the audience: reading one whole is a finding (trending
# holds one window's papers, a few thousand, and is left out).
BIG = frozenset(
    {
        "papers",
        "daily_entries",
        "paper_embeddings",
        "paper_authors",
        "paper_categories",
        "paper_versions",
        "outbox",
        "subscriptions",
        "votes",
        "comments",
        "paper_marks",
        "saved_papers",
    }
)
_SKIP = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|SELECT 1\b)", re.I)
_PG_NODE = re.compile(
    r"(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: Backward)?(?: using \S+)? on "
    r"(\w+).*actual time=\S+ rows=([\d.]+) loops=(\d+)"
)
_PG_REMOVED = re.compile(r"Rows Removed by (?:Filter|Index Recheck): (\d+)")
_SQLITE_SCAN = re.compile(r"^SCAN (\w+)")
_PG_TIME = re.compile(r"(Planning|Execution) Time: ([\d.]+) ms")
MANY_ROWS = 100_000  # a scan of a big table that reads (or throws away) this many rows is flagged
SLOW_MS = 100.0  # and so is a statement slower than this
STATS_ROWS = 1000  # --sqlite-stats: ANALYZE samples this many rows per index (analysis_limit)


@dataclass
class Statement:
    sql: str
    params: Any


@dataclass
class Explained:
    sql: str
    plan: list[str]
    ms: float
    flags: list[str]


@dataclass
class HotQuery:
    label: str
    statements: list[Explained] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return sum(s.ms for s in self.statements)

    @property
    def flags(self) -> list[str]:
        return [flag for s in self.statements for flag in s.flags]


@contextmanager
def capture(engine: Any) -> Iterator[list[Statement]]:
    """Every statement ``engine`` sends meanwhile (executemany ones left out)."""
    from sqlalchemy import event

    found: list[Statement] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if not many and not _SKIP.match(sql):
            found.append(Statement(sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --- the hot queries, with real parameters ------------------------------------------------------


@dataclass
class Context:
    day: date
    arxiv_id: str
    paper_id: int
    words: str
    category: str
    model: str
    timezone: str


def context(engine: Any, settings: Any) -> Context:
    from sqlalchemy import select

    from papertide import daily
    from papertide.db.schema import paper_categories, paper_embeddings

    with engine.connect() as connection:
        day = daily.latest_list_day(connection, daily.today(settings))
        if day is None:
            raise SystemExit("the database has no daily list: nothing to explain")
        card = daily.day_list(connection, day)[0]
        category = connection.execute(
            select(paper_categories.c.category).where(paper_categories.c.paper_id == card.paper_id)
        ).scalar()
        model = connection.execute(select(paper_embeddings.c.model).limit(1)).scalar()
    words = [w for w in re.findall(r"[A-Za-z]{4,}", card.title) if w.lower() != "variant"][:3]
    return Context(
        day=day,
        arxiv_id=card.arxiv_id,
        paper_id=card.paper_id,
        words=" ".join(words).lower() or "learning",
        category=category or "cs.LG",
        model=model or settings.embedding_model,
        timezone=settings.timezone,
    )


def hot_queries(ctx: Context, service: Any) -> list[tuple[str, Callable[[Any], object]]]:
    """(label, function of a connection) for every hot query, as the product calls it."""
    from papertide import cards, daily
    from papertide.community.paper_view import paper_community
    from papertide.digest import outbox
    from papertide.hf_daily import DailyScope, daily_page
    from papertide.personal import feed
    from papertide.search.filters import Sort
    from papertide.search.results import similar_cards
    from papertide.search.service import Mode, SearchRequest

    year, week, _ = ctx.day.isocalendar()
    words, tz = ctx.words, ctx.timezone
    end_of_day = datetime.combine(ctx.day + timedelta(days=1), datetime.min.time(), UTC)
    since = feed.window_start(end_of_day, 7)

    def claim(connection: Any) -> None:
        rows = outbox.due(connection, datetime.now(UTC), 100)
        if rows:
            outbox.start_sending(connection, rows[0])

    def search(text: str, **kwargs: Any) -> Callable[[Any], object]:
        return lambda _c: service.search(SearchRequest(text, **kwargs))

    def paper(connection: Any) -> None:
        cards.paper_page(connection, ctx.arxiv_id)
        paper_community(connection, None, ctx.arxiv_id, 15)

    def front(connection: Any) -> None:
        daily.day_view(connection, date.today(), fallback=True)

    def candidates(connection: Any) -> None:
        feed.load_candidates(connection, ctx.model, since)

    day = ctx.day
    return [
        ("front page (day_view of today, or the latest list)", front),
        (f"day list (day_view {day})", lambda c: daily.day_view(c, day)),
        (f"week list ({year}-W{week:02d})", lambda c: daily.week_list(c, year, week)),
        (f"month list ({day:%Y-%m})", lambda c: daily.month_list(c, day.year, day.month)),
        ("trending list", daily.trending_list),
        ("API daily_papers, one day", lambda c: daily_page(c, DailyScope(day, day), tz, 0, 50)),
        ("API daily_papers, all days", lambda c: daily_page(c, DailyScope(), tz, 0, 50)),
        (f"keyword search '{words}'", search(words, mode=Mode.KEYWORD)),
        (f"keyword search '{words}', newest first", search(words, sort=Sort.DATE)),
        (f"vector search '{words}'", search(words, mode=Mode.VECTOR)),
        (f"hybrid search '{words} cat:{ctx.category}'", search(f"{words} cat:{ctx.category}")),
        ("similar papers (paper page)", lambda c: similar_cards(service, c, ctx.arxiv_id, 8)),
        (f"for-you candidates (since {since:%Y-%m-%d})", candidates),
        ("digest outbox: due() and claim", claim),
        (f"paper page {ctx.arxiv_id}", paper),
    ]  # fmt: skip


# --- explaining ---------------------------------------------------------------------------------


def _flags(plan: list[str], postgres: bool, ms: float) -> list[str]:
    """Whole scans of big tables; on PostgreSQL also scans that read or filter out MANY_ROWS
    rows (an index scan with no bound reads everything too); statements over SLOW_MS."""
    found = []
    table = ""
    for line in plan:
        match = None if postgres else _SQLITE_SCAN.match(line.strip())
        if match and match.group(1) in BIG:
            found.append(f"SCAN {match.group(1)}")
        node = _PG_NODE.search(line) if postgres else None
        if node:
            table = node.group(1)
            rows = float(node.group(2)) * int(node.group(3))
            if table in BIG and rows >= MANY_ROWS:
                found.append(f"reads {rows:,.0f} rows of {table}")
        removed = _PG_REMOVED.search(line) if postgres else None
        if removed and table in BIG and int(removed.group(1)) >= MANY_ROWS:
            found.append(f"filters out {int(removed.group(1)):,} rows of {table}")
    if ms >= SLOW_MS:
        found.append(f"slow ({ms:,.0f} ms)")
    return found


def _explain_pg(cursor: Any, statement: Statement, analyze: bool) -> tuple[list[str], float]:
    options = "ANALYZE, BUFFERS" if analyze else "COSTS"
    cursor.execute(f"EXPLAIN ({options}) {statement.sql}", statement.params)
    plan = [row[0] for row in cursor.fetchall()]
    times = {m.group(1): float(m.group(2)) for line in plan for m in _PG_TIME.finditer(line)}
    return plan, times.get("Execution", 0.0) + times.get("Planning", 0.0)


def _explain_sqlite(cursor: Any, statement: Statement) -> tuple[list[str], float]:
    cursor.execute(f"EXPLAIN QUERY PLAN {statement.sql}", statement.params)
    depth: dict[int, int] = {0: 0}
    plan = []
    for node, parent, _unused, detail in cursor.fetchall():
        depth[node] = depth.get(parent, 0) + 1
        plan.append("  " * (depth[node] - 1) + detail)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        cursor.execute(statement.sql, statement.params)
        cursor.fetchall()
        runs.append((time.perf_counter() - started) * 1000)
    return plan, min(runs)


def explain_one(
    engine: Any, label: str, run: Callable[[Any], object], analyze: bool, stats: bool = False
) -> HotQuery:
    """Run ``run`` for real (rolled back), then explain every statement it sent; with
    ``stats``, SQLite's plans after an ``ANALYZE`` in the same rolled-back transaction."""
    postgres = engine.dialect.name == "postgresql"
    with (
        capture(engine) as statements,
        engine.connect() as connection,
        connection.begin() as transaction,
    ):
        run(connection)
        transaction.rollback()
    hot = HotQuery(label)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgres:
            cursor.execute("BEGIN")
            if stats:
                cursor.execute(f"PRAGMA analysis_limit={STATS_ROWS}")
                cursor.execute("ANALYZE")
        for statement in statements:
            head = statement.sql.lstrip().upper()
            if head.startswith("EXPLAIN ") or head.startswith("SELECT GREATEST(RELTUPLES"):
                continue  # keyword search asking the planner for its row estimate
            if postgres and head.startswith("SET "):
                cursor.execute(statement.sql, statement.params)
                continue
            if postgres:
                plan, ms = _explain_pg(cursor, statement, analyze)
            else:
                plan, ms = _explain_sqlite(cursor, statement)
            hot.statements.append(Explained(statement.sql, plan, ms, _flags(plan, postgres, ms)))
        raw.rollback()
    finally:
        raw.close()
    return hot


def _one_line(sql: str, limit: int = 240) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def explain(
    url: str, analyze: bool = True, only: str | None = None, stats: bool = False
) -> list[HotQuery]:
    """Explain every hot query on the database at ``url``, printing the plans."""
    from papertide.config import load_settings
    from papertide.db.engine import make_engine
    from papertide.search.service import SearchService

    settings = load_settings(
        env={"PAPERTIDE_DATABASE_URL": url, "PAPERTIDE_EMBED_IN_BACKGROUND": "false"}
    )
    engine = make_engine(settings.database_url)
    postgres = engine.dialect.name == "postgresql"
    service = SearchService(engine, settings)
    service.embedder(wait=True)
    service.catch_up(inline=False)  # SQLite: load the saved faiss index before anything is timed
    ctx = context(engine, settings)
    how = "EXPLAIN QUERY PLAN" + (" after ANALYZE, rolled back" if stats else "")
    if postgres:
        how = "EXPLAIN (ANALYZE, BUFFERS)" if analyze else "EXPLAIN"
    print(
        f"plans on {engine.dialect.name} ({how}); parameters: list day {ctx.day}, paper "
        f"{ctx.arxiv_id}, words '{ctx.words}', category {ctx.category}",
        flush=True,
    )
    results = []
    for label, run in hot_queries(ctx, service):
        if only and only not in label:
            continue
        explain_one(engine, label, run, analyze)  # once to warm the caches, as a server is
        hot = explain_one(engine, label, run, analyze, stats)
        results.append(hot)
        flags = ", ".join(sorted(set(hot.flags))) or "none"
        print(f"\n=== {label}: {len(hot.statements)} statement(s), {hot.ms:.2f} ms; flags: {flags}")
        for n, s in enumerate(hot.statements, 1):
            print(f"--- {n}. {s.ms:.2f} ms: {_one_line(s.sql)}")
            for line in s.plan:
                print(f"    {line}")
    print(f"\nsummary ({engine.dialect.name}):")
    for hot in results:
        flags = ", ".join(sorted(set(hot.flags))) or "-"
        print(f"  {hot.label:<60} {len(hot.statements):>3} stmt {hot.ms:>9.2f} ms  {flags}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="database URL (sqlite:///path or postgresql://...)")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false")
    parser.add_argument("--only", help="only the hot queries whose label contains this")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument(
        "--sqlite-stats",
        action="store_true",
        help="SQLite: plans with statistics (ANALYZE in the replay's transaction, rolled back)",
    )
    args = parser.parse_args()
    results = explain(args.url, args.analyze, args.only, args.sqlite_stats)
    if args.json:
        summary = [
            {"label": h.label, "ms": h.ms, "statements": len(h.statements), "flags": h.flags}
            for h in results
        ]
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
