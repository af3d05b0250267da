"""The 1M-paper SQLite catalog and its one user that ``bench/personal.py`` times ``for_you()``
on: built once by direct inserts (CSFCube texts, perturbed vectors, daily lists)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from judged import Collection
from personal_vectors import perturbed

CATEGORIES = ("cs.CL", "cs.LG", "cs.AI", "cs.CV", "cs.IR", "stat.ML", "cs.NE", "cs.RO")

END = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
YEARS = 3
USER_ID = 1


def _stamp(moment: datetime) -> str:
    """A UTCDateTime as SQLAlchemy writes it on SQLite (naive UTC text)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def build_catalog(
    path: Path, coll: Collection, vectors: np.ndarray, size: int, model: str, seed: int
) -> None:
    from papertide.db.engine import make_engine
    from papertide.db.fulltext import drop_search_triggers
    from papertide.db.migrate import migrate

    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink()
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as connection:
        drop_search_triggers(connection)  # the keyword index is not part of the feed
    engine.dispose()
    rng = np.random.default_rng(seed)
    start = END - timedelta(days=365 * YEARS)
    span = (END - start).total_seconds()
    offsets = np.sort(rng.random(size)) * span
    now = _stamp(END)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA cache_size=-200000")
    raw.executemany(
        "INSERT INTO organizations (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
        [(k, f"org-{k}", f"Organization {k}", now) for k in range(1, 21)],
    )
    started = time.perf_counter()
    per_month: dict[str, int] = {}
    chunk = 20_000
    for low in range(0, size, chunk):
        ids = range(low + 1, min(low + chunk, size) + 1)
        papers_rows, category_rows = [], []
        base = [(i - 1) % len(coll.docs) for i in ids]
        matrix = perturbed(vectors[base], rng).astype(np.float16)
        m = len(base)
        upvotes = np.floor(rng.lognormal(0.0, 1.5, m)).astype(int).tolist()
        first = rng.integers(0, len(CATEGORIES), m).tolist()
        n_cats = rng.integers(1, 4, m).tolist()
        org = np.where(rng.random(m) < 0.05, rng.integers(1, 21, m), 0).tolist()
        hidden = (rng.random(m) < 0.001).tolist()
        for n, paper_id in enumerate(ids):
            doc = coll.docs[base[n]]
            published = start + timedelta(seconds=float(offsets[paper_id - 1]))
            month = published.strftime("%y%m")
            per_month[month] = per_month.get(month, 0) + 1
            cats = [CATEGORIES[(first[n] + j) % len(CATEGORIES)] for j in range(n_cats[n])]
            stamp = _stamp(published)
            papers_rows.append(
                (
                    paper_id,
                    f"{month}.{per_month[month]:05d}",
                    f"{doc.title} ({paper_id})",
                    doc.abstract,
                    "Ada Lovelace, Grace Hopper, Alan Turing",
                    3,
                    cats[0],
                    stamp,
                    stamp,
                    1,
                    upvotes[n],
                    "{}",
                    hashlib.md5(str(paper_id).encode()).hexdigest(),
                    now,
                    now,
                    org[n] or None,
                    now if hidden[n] else None,
                )
            )
            category_rows.extend((paper_id, k, c) for k, c in enumerate(cats))
        with raw:
            raw.executemany(
                "INSERT INTO papers (id, arxiv_id, title, abstract, authors_text, author_count,"
                " primary_category, published_at, updated_at, latest_version, upvotes,"
                " field_sources, content_hash, created_at, modified_at, organization_id,"
                " hidden_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                papers_rows,
            )
            raw.executemany(
                "INSERT INTO paper_categories (paper_id, position, category) VALUES (?, ?, ?)",
                category_rows,
            )
            raw.executemany(
                "INSERT INTO paper_embeddings (paper_id, model, vector, created_at)"
                " VALUES (?, ?, ?, ?)",
                [(p, model, v.tobytes(), now) for p, v in zip(ids, matrix, strict=True)],
            )
        print(
            f"  catalog {ids[-1]:,}/{size:,} ({ids[-1] / (time.perf_counter() - started):,.0f}"
            " papers/s)",
            end="\r",
            flush=True,
        )
    # Daily lists: 40 entries a day for the last 90 days, papers of the 10 days before.
    published = start.timestamp() + offsets
    entries = []
    for back in range(90):
        day = (END - timedelta(days=back)).date()
        low = np.searchsorted(published, (END - timedelta(days=back + 10)).timestamp())
        high = np.searchsorted(published, (END - timedelta(days=back)).timestamp())
        for position, i in enumerate(rng.choice(np.arange(low, high), 40, replace=False)):
            entries.append((int(i) + 1, day.isoformat(), position, "hf_daily", now, "published"))
    with raw:
        raw.executemany(
            "INSERT INTO daily_entries (paper_id, day, position, source, created_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            entries,
        )
    add_user(raw, coll, vectors, published, start, rng)
    raw.execute("ANALYZE")
    raw.close()
    print(f"\n  built {size:,} papers in {time.perf_counter() - started:.0f} s")


def add_user(
    raw: sqlite3.Connection,
    coll: Collection,
    vectors: np.ndarray,
    published: np.ndarray,
    start: datetime,
    rng: np.random.Generator,
) -> None:
    """One user: 60 saves and 60 upvotes (30 shared) around one neighbourhood, 20 dismissals,
    300 seen papers of the window, 2 topics and an exclude rule."""
    now = _stamp(END)
    size = len(published)
    raw.execute(
        "INSERT INTO users (id, username, username_key, email, password_hash, created_at)"
        " VALUES (?, 'bench', 'bench', 'bench@example.org', 'x', ?)",
        (USER_ID, now),
    )
    raw.execute(
        "INSERT INTO folders (id, user_id, slug, name, created_at) VALUES (1, ?, 'saved', "
        "'Saved', ?)",
        (USER_ID, now),
    )
    seed = int(rng.integers(len(coll.docs)))
    near = np.argsort(-(vectors @ vectors[seed]))[:200]
    # Catalog papers whose text (and so vector, up to noise) is of a near document.
    catalog_near = [
        int(b) + 1 + k * len(coll.docs)
        for k in range(size // len(coll.docs))
        for b in near.tolist()
    ]
    liked = rng.choice(catalog_near, 90, replace=False).tolist()
    at = [_stamp(END - timedelta(days=float(rng.random() * 300))) for _ in range(90)]
    raw.executemany(
        "INSERT INTO saved_papers (folder_id, paper_id, user_id, saved_at) VALUES (1, ?, ?, ?)",
        [(p, USER_ID, a) for p, a in zip(liked[:60], at[:60], strict=True)],
    )
    raw.executemany(
        "INSERT INTO votes (user_id, paper_id, created_at) VALUES (?, ?, ?)",
        [(USER_ID, p, a) for p, a in zip(liked[30:], at[30:], strict=True)],
    )
    window = np.searchsorted(published, (END - timedelta(days=7)).timestamp())
    recent = np.arange(window, size) + 1
    dismissed = rng.choice(np.arange(1, size + 1), 20, replace=False).tolist()
    seen = rng.choice(recent, min(300, len(recent) // 2), replace=False).tolist()
    raw.executemany(
        "INSERT INTO paper_marks (user_id, paper_id, kind, via, at) VALUES (?, ?, ?, ?, ?)",
        [(USER_ID, int(p), "dismissed", "web", now) for p in dismissed]
        + [(USER_ID, int(p), "seen", "feed", now) for p in seen],
    )
    raw.execute(
        "INSERT INTO interests (user_id, topics, rules, threshold, trending_weight, window_days,"
        " onboarded_at, updated_at) VALUES (?, ?, ?, 0.0, 0.3, 7, ?, ?)",
        (
            USER_ID,
            json.dumps(["large language models", "information retrieval"]),
            json.dumps({"include": {}, "exclude": {"keywords": ["survey"]}}),
            now,
            now,
        ),
    )
    raw.commit()
