"""Settings declared as data.

Every setting has a name, a type, a default, a help text and a validator. Values come from, in
order of precedence: ``PAPERTIDE_<NAME>`` environment variables, an optional TOML file (named by
``PAPERTIDE_CONFIG`` or ``--config``), then the default. Settings are parsed once, at start-up;
an invalid value raises :class:`ConfigError` naming the setting. The documentation in
``docs/configuration.md`` is generated from :data:`SETTINGS`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from papertide.errors import ConfigError
from papertide.setting import ENV_PREFIX, Setting
from papertide.setting_list import SETTINGS

__all__ = ["ENV_PREFIX", "SETTINGS", "Setting", "Settings", "load_settings"]

# Variables with our prefix that are not settings: the config file, and a new account's password
# for `papertide user create` (so it need not appear on a command line).
NON_SETTING_ENV = {ENV_PREFIX + "CONFIG", ENV_PREFIX + "NEW_PASSWORD"}


SETTINGS_BY_NAME: Mapping[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The effective settings, parsed once. Read values as attributes: ``settings.database_url``."""

    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (validated like any other source)."""
        values = dict(self.values)
        sources = dict(self.sources)
        for name, raw in changes.items():
            values[name] = _parse_one(SETTINGS_BY_NAME[name], raw, "override")
            sources[name] = "override"
        return Settings(values, sources)

    def dump(self) -> list[tuple[str, str, str]]:
        """(name, shown value, source) for every setting; secrets are hidden."""
        rows = []
        for setting in SETTINGS:
            value = self.values[setting.name]
            shown = _hide_secret(value) if setting.secret else _format(value)
            rows.append((setting.name, shown, self.sources.get(setting.name, "default")))
        return rows


def _format(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hide_secret(value: Any) -> str:
    text = str(value)
    # Database URLs are useful to see; only their password is secret.
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else text
    if text.startswith("sqlite"):
        return text
    return "***" if text else ""


def _parse_one(setting: Setting, raw: Any, source: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(
            f"setting {setting.name} ({setting.env_var}, from {source}) is invalid: {exc}"
        ) from None


def load_settings(
    env: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Settings:
    """Read the settings from the environment and the optional TOML file, validating each."""
    env = os.environ if env is None else env
    file_values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        file_values = _read_toml(Path(path))
    unknown_env = sorted(
        key
        for key in env
        if key.startswith(ENV_PREFIX)
        and key not in NON_SETTING_ENV
        and key[len(ENV_PREFIX) :].lower() not in SETTINGS_BY_NAME
        and not key.startswith(ENV_PREFIX + "TEST_")
    )
    if unknown_env:
        raise ConfigError(f"unknown setting {unknown_env[0]} in the environment")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.env_var in env:
            values[setting.name] = _parse_one(setting, env[setting.env_var], "environment")
            sources[setting.name] = "environment"
        elif setting.name in file_values:
            values[setting.name] = _parse_one(setting, file_values[setting.name], str(path))
            sources[setting.name] = str(path)
        else:
            values[setting.name] = setting.default
            sources[setting.name] = "default"
    return Settings(values, sources)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("papertide", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [papertide] must be a table")
    unknown = sorted(set(section) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")
    return dict(section)
