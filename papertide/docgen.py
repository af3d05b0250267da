"""Reference docs generated from the declarations: settings table and CLI help.

``docs/configuration.md`` and ``docs/cli.md`` embed the output through cog
(``cog -r docs/*.md``); a test fails when they are stale or something is undocumented.
"""

from __future__ import annotations

import click

from papertide.config import SETTINGS


def _default_text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(value) or "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_markdown() -> str:
    lines = [
        "| Setting | Environment variable | Type | Default | Description |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        kind = {"list": "list (comma-separated)"}.get(s.type.__name__, s.type.__name__)
        secret = " (secret: hidden by `config dump`)" if s.secret else ""
        lines.append(
            f"| `{s.name}` | `{s.env_var}` | {kind} | `{_default_text(s.default)}` "
            f"| {s.help}{secret} |"
        )
    return "\n".join(lines)


def _commands(group: click.Group, prefix: list[str]) -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = [(prefix, group)]
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            found.extend(_commands(command, [*prefix, name]))
        else:
            found.append(([*prefix, name], command))
    return found


def cli_markdown() -> str:
    from papertide.cli import cli

    parts = []
    for path, command in _commands(cli, ["papertide"]):
        with click.Context(command, info_name=" ".join(path)) as ctx:
            help_text = command.get_help(ctx)
        parts.append(f"## `{' '.join(path)}`\n\n```\n{help_text}\n```\n")
    return "\n".join(parts)


def command_names() -> list[str]:
    from papertide.cli import cli

    return [" ".join(path) for path, _ in _commands(cli, ["papertide"])]
