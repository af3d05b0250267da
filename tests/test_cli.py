"""The papertide command: database commands, config dump, exit codes and messages."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from papertide.cli import cli


def invoke(db_url: str, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env={"PAPERTIDE_DATABASE_URL": db_url})
    return result.exit_code, result.output


def test_db_status_then_migrate(empty_db_url: str) -> None:
    code, out = invoke(empty_db_url, "db", "status")
    assert code == 4 and "pending:" in out and "0001" in out
    code, out = invoke(empty_db_url, "db", "migrate")
    assert code == 0 and "applied 0001" in out
    code, out = invoke(empty_db_url, "db", "status")
    assert code == 0 and "up to date" in out
    code, out = invoke(empty_db_url, "db", "migrate")
    assert code == 0 and "applied" not in out


def test_commands_refuse_an_unmigrated_database(empty_db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    code, out = invoke(empty_db_url, "ingest", str(path))
    assert code == 4 and "papertide db migrate" in out


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_invalid_setting_stops_with_its_name(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["config", "dump"], env={"PAPERTIDE_DATABASE_URL": db_url, "PAPERTIDE_PORT": "x"}
    )
    assert result.exit_code == 2
    assert "setting port" in result.output


@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_config_dump(db_url: str) -> None:
    code, out = invoke(db_url, "config", "dump")
    assert code == 0
    assert "timezone" in out and "America/New_York" in out and "environment" in out
