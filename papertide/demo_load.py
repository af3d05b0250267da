"""Loading the bundled demo data set (once) so a fresh install has something to browse."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import func, select

from papertide.config import Settings
from papertide.daily import compute_trending
from papertide.db.engine import make_engine
from papertide.db.migrate import migrate
from papertide.db.schema import daily_entries
from papertide.demo import DEMO_PATH
from papertide.ingest.runner import IngestRun


def load_demo(settings: Settings, *, progress: bool = True, console: Console | None = None) -> str:
    """Migrate, ingest the demo lists unless the database already has some, rank trending."""
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            listed = connection.execute(select(func.count()).select_from(daily_entries)).scalar()
        if listed:
            return f"database already has {listed} daily-list entries; demo data not loaded again"
        run = IngestRun(engine=engine, tz=ZoneInfo(settings.timezone))
        if progress:
            from papertide.ingest.progress import RichProgress

            run.progress = RichProgress(console)
        report = run.run([DEMO_PATH])
        ranked = compute_trending(engine, settings)
        return (
            f"demo data loaded: {report.totals.new} papers, "
            f"{report.totals.listings_added} daily-list entries in {report.seconds:.1f} s; "
            f"{ranked} trending"
        )
    finally:
        engine.dispose()
