"""Migrations: apply them, report their state, refuse to serve an outdated schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from papertide.errors import NotReady

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    head: str
    pending: list[str]  # "0002 add votes" lines, oldest first

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine, revision: str = "head") -> MigrationStatus:
    """Apply every pending migration (each in its own transaction); return the new state."""
    config = _config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    return migration_status(engine)


def downgrade(engine: Engine, revision: str) -> MigrationStatus:
    config = _config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()
    return migration_status(engine)


def migration_status(engine: Engine) -> MigrationStatus:
    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    assert head is not None, "no migrations found"
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise NotReady(f"cannot read the database: {exc.orig}") from exc
    pending = []
    for rev in script.iterate_revisions(head, current):
        doc = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        pending.append(f"{rev.revision} {doc}".strip())
    pending.reverse()
    return MigrationStatus(current=current, head=head, pending=pending)


def require_current_schema(engine: Engine) -> None:
    """Raise NotReady unless every migration has been applied."""
    status = migration_status(engine)
    if not status.up_to_date:
        raise NotReady(
            f"the database has {len(status.pending)} pending migration(s) "
            f"({', '.join(status.pending)}); run `papertide db migrate` first"
        )
