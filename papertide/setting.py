"""One setting declared as data: its name, type, default, help text and validator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "PAPERTIDE_"


@dataclass(frozen=True)
class Setting:
    """One setting: how it is named, typed, defaulted, documented and validated."""

    name: str
    type: type
    default: Any
    help: str
    secret: bool = False
    validate: Callable[[Any], None] | None = None

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def parse(self, raw: Any) -> Any:
        """Turn a raw env/TOML value into this setting's type, then validate it."""
        value = self._coerce(raw)
        if self.validate is not None:
            self.validate(value)
        return value

    def _coerce(self, raw: Any) -> Any:
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"{raw!r} is not a boolean (use true or false)")
        if self.type is list:
            if isinstance(raw, list):
                return [str(item).strip() for item in raw if str(item).strip()]
            return [part.strip() for part in str(raw).split(",") if part.strip()]
        if self.type is int:
            if isinstance(raw, bool):
                raise ValueError(f"{raw!r} is not an integer")
            try:
                return int(raw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{raw!r} is not an integer") from exc
        if self.type is float:
            try:
                return float(raw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{raw!r} is not a number") from exc
        return str(raw)
