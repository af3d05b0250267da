"""Docs generated from the declarations are current, and nothing is undocumented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from papertide.config import SETTINGS
from papertide.docgen import command_names

ROOT = Path(__file__).resolve().parents[1]


def test_generated_docs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "docs/configuration.md", "docs/cli.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "docs are stale: run `make docs`\n" + result.stdout


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [s.env_var for s in SETTINGS if f"`{s.env_var}`" not in text or not s.help]
    assert missing == []


def test_every_command_is_documented() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [name for name in command_names() if f"## `{name}`" not in text]
    assert missing == []


def test_readme_opens_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:1500]
    assert "make run" in head and "make test" in head
