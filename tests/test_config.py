"""Settings: sources and precedence, validation naming the setting, dump hiding secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from papertide.config import SETTINGS, load_settings
from papertide.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings(env={})
    assert settings.database_url == "sqlite:///./papertide.db"
    assert settings.port == 8000
    assert settings.timezone == "America/New_York"
    assert settings.auto_follow_categories == []
    assert all(settings.sources[s.name] == "default" for s in SETTINGS)


def test_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "papertide.toml"
    config.write_text('[papertide]\nport = 9000\nsite_name = "Lab papers"\n')
    settings = load_settings(env={"PAPERTIDE_PORT": "9100"}, config_file=config)
    assert settings.port == 9100 and settings.sources["port"] == "environment"
    assert settings.site_name == "Lab papers" and settings.sources["site_name"] == str(config)


def test_types_are_parsed() -> None:
    settings = load_settings(
        env={
            "PAPERTIDE_AUTO_FOLLOW_CATEGORIES": "cs.CL, cs.LG",
            "PAPERTIDE_TRENDING_GRAVITY": "1.8",
        }
    )
    assert settings.auto_follow_categories == ["cs.CL", "cs.LG"]
    assert settings.trending_gravity == 1.8


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAPERTIDE_PORT": "eighty"}, "setting port .* 'eighty' is not an integer"),
        ({"PAPERTIDE_PORT": "70000"}, "setting port .* outside 1-65535"),
        ({"PAPERTIDE_TIMEZONE": "Mars/Olympus"}, "setting timezone .* unknown time zone"),
        ({"PAPERTIDE_DATABASE_URL": "mysql://x"}, "setting database_url .* not a database URL"),
        ({"PAPERTIDE_ARXIV_REQUEST_INTERVAL": "1"}, "arxiv_request_interval .* below"),
        ({"PAPERTIDE_PROT": "1"}, "unknown setting PAPERTIDE_PROT"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, config_file=config)
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(env={}, config_file=config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={}, config_file=tmp_path / "missing.toml")


def test_dump_hides_database_password() -> None:
    settings = load_settings(
        env={"PAPERTIDE_DATABASE_URL": "postgresql://app:hunter2@db.example/papers"}
    )
    dumped = {name: value for name, value, _ in settings.dump()}
    assert dumped["database_url"] == "postgresql://app:***@db.example/papers"
    assert "hunter2" not in repr(settings.dump())
