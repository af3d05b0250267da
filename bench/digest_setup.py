"""The digest benchmark's shared parts: its database, and the subscriber population.

See bench/digest.py for what the population is and how it is measured.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "all-MiniLM-L6-v2"
HOST = "127.0.0.1"
CHUNK = 5000
TOPICS = ["diffusion models", "reasoning in language models", "video generation", "robotics",
          "retrieval augmented generation", "speech recognition", "reinforcement learning",
          "vision transformers", "mixture of experts", "code generation"]  # fmt: skip
STOP = {"with", "from", "that", "this", "their", "into", "towards", "through", "using", "based",
        "beyond", "your", "when", "what", "does", "more", "than", "across"}  # fmt: skip
MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]+>)", re.I | re.M)
Config = dict[str, Any]
Result = dict[str, Any]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else 0.0


def context(cfg: Config) -> tuple[Any, Any, Any, Any]:
    """(settings, engine, period, now) of the benchmark database."""
    from papertide.config import load_settings
    from papertide.db.engine import make_engine
    from papertide.digest.periods import parse_period, send_moment

    settings = load_settings({"PAPERTIDE_DATABASE_URL": cfg["url"]})
    period = parse_period(cfg["period"]) if "period" in cfg else None
    now = send_moment(period, settings) if period else None
    return settings, make_engine(cfg["url"]), period, now


def load_model() -> tuple[Any, float]:
    from papertide.search.models import shared_embedder

    started = time.perf_counter()
    return shared_embedder(MODEL, "auto", 0), time.perf_counter() - started


def step_setup(cfg: Config) -> Result:
    from datetime import timedelta
    from secrets import token_urlsafe

    import numpy as np
    from sqlalchemy import bindparam, func, insert, select, update

    from papertide.db import schema as s
    from papertide.db.engine import write_transaction
    from papertide.demo_load import load_demo
    from papertide.digest.edition import load_edition
    from papertide.digest.periods import daily_period, period_covering, send_moment
    from papertide.personal.interests import matches_one

    settings, engine, _, _ = context(cfg)
    started = time.perf_counter()
    print("  " + load_demo(settings, progress=False), flush=True)
    demo_s, started = time.perf_counter() - started, time.perf_counter()
    rng = np.random.default_rng(cfg["seed"])
    with engine.connect() as connection:
        if connection.execute(select(func.count()).select_from(s.subscriptions)).scalar():
            sys.exit("the database already has subscriptions: give an empty one")
        last_day = connection.execute(select(func.max(s.daily_entries.c.day))).scalar_one()
        paper_ids = connection.execute(select(s.papers.c.id)).scalars().all()
    period = period_covering("weekly", last_day)
    previous = period_covering("weekly", period.first_day - timedelta(days=1))
    now = send_moment(period, settings)
    upvotes = np.minimum(rng.zipf(1.5, len(paper_ids)) - 1, 5000).tolist()
    with write_transaction(engine) as connection:
        connection.execute(
            update(s.papers)
            .where(s.papers.c.id == bindparam("pid"))
            .values(upvotes=bindparam("u")),
            [{"pid": p, "u": u} for p, u in zip(paper_ids, upvotes, strict=True)],
        )
    days = (period.first_day - timedelta(days=56), period.first_day - timedelta(days=1))
    with engine.connect() as connection:
        edition = load_edition(connection, period)
        last_week = [p.paper_id for p in load_edition(connection, previous).papers[:10]]
        prior = connection.execute(
            select(s.paper_embeddings.c.paper_id, s.paper_embeddings.c.vector)
            .join(s.daily_entries, s.daily_entries.c.paper_id == s.paper_embeddings.c.paper_id)
            .where(s.daily_entries.c.day.between(*days))
        ).all()

    # Keyword rules: title words of the edition, each with the edition papers it matches.
    facts = [p.facts for p in edition.papers]
    words = {w for p in edition.papers for w in re.findall(r"[a-z][a-z0-9-]{3,}", p.title.lower())}
    masks: dict[str, set[int]] = {}
    for word in sorted(words - STOP):
        hits = {i for i, f in enumerate(facts) if matches_one("keywords", word, f)}
        if 3 <= len(hits) <= 0.4 * len(facts):
            masks[word] = hits
    vocab = sorted(masks)

    def draw_rules() -> dict[str, Any]:
        for _ in range(50):
            r = rng.random()
            if r >= 0.85:
                return {}
            include = [str(w) for w in rng.choice(vocab, rng.integers(1, 5), replace=False)]
            exclude = [str(w) for w in rng.choice(vocab, rng.integers(1, 4), replace=False)]
            rules: dict[str, Any] = {}
            if r < 0.70:
                rules["include"] = {"keywords": include}
            if r >= 0.35:
                rules["exclude"] = {"keywords": exclude[:2] if r < 0.70 else exclude}
            keep: set[int] = (
                set().union(*(masks[w] for w in include)) if r < 0.70 else set(range(len(facts)))
            )
            keep -= set().union(*(masks[w] for w in rules.get("exclude", {}).get("keywords", [])))
            if len(keep) >= 12:
                return rules
        return {}

    n, edition_ids = cfg["subscribers"], [p.paper_id for p in edition.papers]
    chosen = sorted(rng.choice(n, round(n * cfg["accounts"]), replace=False).tolist())
    user_of = {sub: k + 1 for k, sub in enumerate(chosen)}
    joined, confirmed = now - timedelta(days=90), now - timedelta(days=89)
    subs = [{"id": i + 1, "email": f"reader{i}@example.org", "user_id": user_of.get(i),
             "token": token_urlsafe(32), "frequency": "weekly", "size": int(rng.integers(5, 16)),
             "personal": True, "rules": draw_rules(), "created_at": joined,
             "confirm_sent_at": joined, "confirmed_at": confirmed} for i in range(n)]  # fmt: skip
    people = [{"id": uid, "username": f"reader{i}", "username_key": f"reader{i}",
               "email": f"reader{i}@example.org", "password_hash": "!", "role": "user",
               "votes_public": True, "created_at": joined}
              for i, uid in user_of.items()]  # fmt: skip
    prior_ids = np.asarray([r.paper_id for r in prior])
    matrix = np.vstack([r.vector for r in prior]).astype(np.float32)
    voted: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    for uid in user_of.values():
        near = np.argsort(-(matrix @ matrix[rng.integers(len(prior_ids))]))[: rng.integers(3, 21)]
        voted += [{"user_id": uid, "paper_id": int(prior_ids[j]),
                   "created_at": now - timedelta(days=int(rng.integers(8, 60)))}
                  for j in near]  # fmt: skip
        seen += [{"user_id": uid, "paper_id": int(p), "kind": "seen", "via": "web", "at": now}
                 for p in rng.choice(edition_ids, rng.integers(0, 6), replace=False)]  # fmt: skip
        if rng.random() < 0.3:
            picked = [str(t) for t in rng.choice(TOPICS, rng.integers(1, 3), replace=False)]
            topics.append({"user_id": uid, "topics": picked, "rules": {}, "threshold": 0.0,
                           "trending_weight": 0.3, "window_days": 7, "onboarded_at": joined,
                           "updated_at": joined})  # fmt: skip
    wednesday = daily_period(period.first_day + timedelta(days=2))
    earlier: list[dict[str, Any]] = []
    for i in rng.choice(n, round(n * 0.2), replace=False).tolist():
        sent: list[tuple[str, list[int], int]] = [(previous.key, last_week, 7)] + [
            (wednesday.key, edition_ids[:5], 5)
        ] * (i % 2)
        for key, ids, back in sent:
            at = now - timedelta(days=back)
            earlier.append({"subscription_id": i + 1, "period": key, "status": "sent",
                            "message_id": f"<bench.{key.replace(':', '.')}.{i + 1}@localhost>",
                            "attempts": 1, "next_attempt_at": at, "created_at": at,
                            "sent_at": at, "paper_ids": ids})  # fmt: skip
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (s.users, people), (s.subscriptions, subs), (s.votes, voted), (s.paper_marks, seen),
        (s.interests, topics), (s.outbox, earlier)]  # fmt: skip
    for table, rows in tables:
        for start in range(0, len(rows), CHUNK):
            with write_transaction(engine) as connection:
                connection.execute(insert(table), rows[start : start + CHUNK])
    cfg["period"] = period.key
    return {"demo_s": demo_s, "setup_s": time.perf_counter() - started, "period": period.key,
            "label": period.label, "edition": len(edition.papers), "vocabulary": len(vocab),
            "with_rules": sum(1 for x in subs if x["rules"]), "accounts": len(people),
            "votes": len(voted), "seen": len(seen), "topics": len(topics),
            "earlier": len(earlier), "peak_mb": peak_mb()}  # fmt: skip
