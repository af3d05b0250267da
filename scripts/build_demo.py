"""Build the bundled demo data set, ``papertide/demo/hf_daily_papers.jsonl.gz``.

Usage::

    .venv/bin/python scripts/build_demo.py /work/shared/data/hf_papers_markert [--out PATH]

The input is the Hugging Face Daily Papers data of MichaelMarkert/rss (MIT License; see NOTICE):
``derived_hf_papers_timeline.part*.jsonl`` (one line per paper ever seen on the page, built
from all 2,111 committed feed versions) and ``history/<YYYY-MM-DD>/hf_papers.json`` (the last
feed of each of 562 UTC days). The output is the timeline JSON-lines format that
:mod:`papertide.ingest.hf_jsonfeed` reads, so ``papertide ingest`` loads it like any other
file: one line per paper, ordered by list day and rank, gzip -9, keeping only
``arxiv_id, title, date_published, content_text, n_snapshots, best_rank``.

How each paper's line is made:

* papers whose id is not an arXiv id (the scraper's placeholder item ``"1"``) are left out;
* ``content_text`` is the timeline's, unless a history snapshot holds a richer one (an AI
  summary where the timeline has only the abstract, or any text where it has none);
* ``date_published`` is the timeline's, except where that is the time of a failed page fetch
  (the scraper then writes the scrape time, with microseconds): then the paper's real time from
  a history snapshot, or else ``first_seen`` (the first time the scraper saw it on the page);
* the list day is ``date_published`` in America/New_York, and ``best_rank`` becomes the paper's
  1-based rank within that day's list: by the timeline's ``best_rank`` (the paper's best place in
  the scraped page order), then ``date_published``, then arXiv id.

Texts are copied verbatim (LaTeX, ``<`` and ``>`` included); the parser normalises whitespace.
The file is byte-for-byte reproducible (gzip header without name or time).
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from papertide.catalog.ids import is_arxiv_id, parse_arxiv_id
from papertide.ingest.hf_jsonfeed import split_content
from papertide.ingest.hfshared import list_day, parse_timestamp

LIST_ZONE = ZoneInfo("America/New_York")
DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent / "papertide" / "demo" / "hf_daily_papers.jsonl.gz"
)
KEPT = ("arxiv_id", "title", "date_published", "content_text", "n_snapshots", "best_rank")
_FAILED_FETCH_TIME = re.compile(r"\.\d+$")  # the scraper's datetime.now(): microseconds


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    source: Path = arguments.source
    timeline = list(_timeline(source))
    history = _history(source)
    stats: Counter[str] = Counter()
    papers = [_paper(line, history, stats) for line in timeline if _keep(line, stats)]
    ranked = _ranked(papers)
    _write(arguments.out, ranked)
    days = {paper["day"] for paper in ranked}
    print(
        f"{arguments.out}: {arguments.out.stat().st_size:,} bytes, {len(ranked):,} papers, "
        f"{len(days)} list days ({min(days)} to {max(days)}); "
        f"{len(history[1])} history snapshots read"
    )
    for name, count in sorted(stats.items()):
        print(f"  {name}: {count:,}")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the hf_papers_markert folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    return parser.parse_args(argv)


# --- input ------------------------------------------------------------------------------------


def _timeline(source: Path) -> Iterator[dict[str, Any]]:
    parts = sorted(source.glob("derived_hf_papers_timeline.part*.jsonl"), key=_part_number)
    if not parts:
        raise SystemExit(f"no derived_hf_papers_timeline.part*.jsonl in {source}")
    for part in parts:
        with part.open("rb") as handle:
            for line in handle:
                if line.strip():
                    yield orjson.loads(line)


def _part_number(path: Path) -> int:
    match = re.search(r"\.part(\d+)\.jsonl$", path.name)
    return int(match.group(1)) if match else 0


History = tuple[dict[str, list[dict[str, Any]]], list[Path]]


def _history(source: Path) -> History:
    """Every feed item of every snapshot, by paper URL, oldest snapshot first."""
    snapshots = sorted(source.glob("history/*/hf_papers.json"))
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for snapshot in snapshots:
        for item in orjson.loads(snapshot.read_bytes()).get("items", []):
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                items[item["id"]].append(item)
    return items, snapshots


# --- one paper --------------------------------------------------------------------------------


def _keep(line: dict[str, Any], stats: Counter[str]) -> bool:
    if is_arxiv_id(str(line.get("arxiv_id") or "")):
        return True
    stats[f"left out, not an arXiv id: {line.get('arxiv_id')!r} {line.get('title')!r}"] += 1
    return False


def _paper(line: dict[str, Any], history: History, stats: Counter[str]) -> dict[str, Any]:
    seen = history[0].get(line["id"], [])
    paper = {key: line.get(key) for key in KEPT}
    paper["arxiv_id"] = parse_arxiv_id(line["arxiv_id"]).id
    paper["content_text"] = _richest_content(line.get("content_text"), seen, stats)
    paper["date_published"] = _real_time(line, seen, stats)
    paper["day"] = list_day(parse_timestamp(paper["date_published"]), LIST_ZONE)
    return paper


def _richness(content: object) -> int:
    parts = split_content(content)
    return 2 if parts.ai_summary else 1 if parts.abstract else 0


def _richest_content(content: object, seen: list[dict[str, Any]], stats: Counter[str]) -> object:
    floor = _richness(content)
    richer = [
        item.get("content_text") for item in seen if _richness(item.get("content_text")) > floor
    ]
    if not richer:
        return content
    stats["content_text taken from a history snapshot (richer than the timeline's)"] += 1
    return max(reversed(richer), key=_richness)  # the richest; of equals, the latest snapshot's


def _real_time(line: dict[str, Any], seen: list[dict[str, Any]], stats: Counter[str]) -> str:
    published = str(line["date_published"])
    if not _FAILED_FETCH_TIME.search(published):
        return published
    real = sorted(
        str(item["date_published"])
        for item in seen
        if item.get("date_published") and not _FAILED_FETCH_TIME.search(str(item["date_published"]))
    )
    if real:
        stats["date_published: failed-fetch time replaced from a history snapshot"] += 1
        return real[0]
    stats["date_published: failed-fetch time replaced by first_seen"] += 1
    return str(line["first_seen"])


# --- output -----------------------------------------------------------------------------------


def _ranked(papers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Papers by day, each day ranked 1, 2, ... by source rank, then time, then id."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for paper in papers:
        by_day[paper["day"]].append(paper)
    ranked: list[dict[str, Any]] = []
    for day in sorted(by_day):
        order = sorted(by_day[day], key=_rank_key)
        for rank, paper in enumerate(order, start=1):
            ranked.append({**paper, "best_rank": rank})
    return ranked


def _rank_key(paper: dict[str, Any]) -> tuple[int, datetime, str]:
    return (int(paper["best_rank"]), parse_timestamp(paper["date_published"]), paper["arxiv_id"])


def _write(out: Path, papers: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("wb") as raw,
        gzip.GzipFile("", "wb", compresslevel=9, fileobj=raw, mtime=0) as zipped,
    ):
        for paper in papers:
            zipped.write(orjson.dumps({key: paper[key] for key in KEPT}) + b"\n")


if __name__ == "__main__":
    sys.exit(main())
