"""The deployment files in deploy/ name only real settings and valid commands."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from papertide.cli import cli
from papertide.config import SETTINGS, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTING_VARS = {setting.env_var for setting in SETTINGS} | {"PAPERTIDE_CONFIG"}


def parse_command(args: list[str]) -> click.Context:
    """Parse ``papertide ARGS`` as the CLI would, without running it (UsageError if invalid)."""
    command: click.Command = cli
    context: click.Context | None = None
    name = "papertide"
    while True:
        context = command.make_context(name, list(args), parent=context)
        if not isinstance(command, click.Group):
            return context
        found_name, found, args = command.resolve_command(
            context, [*context._protected_args, *context.args]
        )
        assert found is not None and found_name is not None, args
        name, command = found_name, found


def papertide_args(line: str) -> list[str] | None:
    words = shlex.split(line)
    for i, word in enumerate(words):
        if word == "papertide" or word.endswith("/bin/papertide"):
            return words[i + 1 :]
    return None


def test_the_parser_refuses_what_the_cli_refuses() -> None:
    assert parse_command(["serve", "--workers", "4"]).params["workers"] == 4
    with pytest.raises(click.UsageError):
        parse_command(["serve", "--wrokers", "4"])
    with pytest.raises(click.UsageError):
        parse_command(["db", "nonsense"])


def test_compose_file() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "web", "proxy", "backup"} <= set(services)
    environment = services["web"]["environment"]
    assert set(environment) <= SETTING_VARS, set(environment) - SETTING_VARS
    assert "PAPERTIDE_DATABASE_URL" in environment
    commands = 0
    for service in services.values():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "papertide":
            parse_command(command[1:])
            commands += 1
        elif isinstance(command, list):  # a shell loop around papertide commands
            for part in re.findall(r"papertide [^&;|]+", command[-1]):
                parse_command(shlex.split(part)[1:])
                commands += 1
    assert commands == 3  # migrate, serve, backup
    for name, depends in (("web", "migrate"), ("migrate", "db")):
        assert depends in services[name]["depends_on"]


def test_systemd_units() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert len(units) == 3
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(unit.read_text())
        service = parser["Service"]
        assert service["User"] == "papertide"
        assert service["Environment"].split("=", 1)[0] in SETTING_VARS
        args = papertide_args(service["ExecStart"])
        assert args is not None, unit
        parse_command(args)
    for timer in (DEPLOY / "systemd").glob("*.timer"):
        assert (timer.with_suffix(".service")).exists()


def test_dockerfile_command() -> None:
    line = next(
        line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("CMD")
    )
    args = yaml.safe_load(line.removeprefix("CMD"))
    assert args[0] == "papertide"
    parse_command(args[1:])


def test_example_settings_file_is_valid(tmp_path: Path) -> None:
    settings = load_settings({}, config_file=DEPLOY / "papertide.toml.example")
    assert settings.database_url.startswith("postgresql://")
    assert settings.sources["smtp_security"].endswith("papertide.toml.example")
