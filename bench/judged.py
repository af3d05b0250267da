"""The judged retrieval collections in ../shared/data, read into plain Python (no papertide).

Three collections (``shared/data/SOURCES.md`` sections 3a-3c), each a :class:`Collection` of
documents, queries and graded judgments:

- ``cacm``: CACM in the SMART distribution. 3,204 documents (``.T`` title, ``.W`` abstract on
  1,587 of them, ``.A`` authors), 64 queries (``.W`` text only), judgments for 52 of them
  (``qid docid 0 0``: binary, grade 1). No dev/test split.
- ``nfcorpus``: NFCorpus, original distribution, one split (``test`` or ``dev``) and one query
  type (``all``, ``titles``, ...). Documents and queries are lower-cased, stop-word-filtered and
  without punctuation (numbers are the word ``num``); a document is one text field, split here
  into title and abstract at its first word ``abstract`` (PubMed's heading; see
  :func:`split_nfcorpus`). Judgments from ``{split}.3-2-1.qrel``: grades 3 (direct link),
  2 (indirect) and 1 (marginal).
- ``csfcube``: CSFCube, faceted query by example. Documents from the derived corpus (title and
  the labelled abstract sentences joined); 50 facet-queries (``<paper id>_<facet>``), each a
  query paper with a pool of candidates judged 0-3 (``relevance_adju``, the adjudicated grade).
  A query paper found in its own pool (one is) is dropped from that pool.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FACETS = ("background", "method", "result")


@dataclass(frozen=True)
class Doc:
    doc_id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()


@dataclass
class Collection:
    """Documents, queries and judgments; ``pools`` only for query-by-example collections."""

    name: str
    docs: list[Doc]
    queries: dict[str, str]  # query id -> query text, or (by example) the query paper's doc id
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade (> 0: relevant)
    pools: dict[str, list[str]] = field(default_factory=dict)  # query id -> candidate doc ids
    notes: list[str] = field(default_factory=list)

    @property
    def by_example(self) -> bool:
        return bool(self.pools)

    def judged_queries(self) -> list[str]:
        """Query ids with at least one relevant (grade > 0) judgment, in file order."""
        return [q for q in self.queries if any(g > 0 for g in self.qrels.get(q, {}).values())]


# --- CACM (SMART format) ------------------------------------------------------------------------

_SMART_FIELD = re.compile(r"^\.([A-Z])(?:\s+(\d+))?\s*$")


def smart_records(path: Path) -> Iterator[dict[str, str]]:
    """Records of a SMART file: ``{"I": id, "T": text, "W": text, ...}`` (lines joined)."""
    record: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text(encoding="latin-1").splitlines():
        marker = _SMART_FIELD.match(line)
        if marker and marker.group(1) == "I":
            if record:
                yield {k: "\n".join(v).strip() for k, v in record.items()}
            record, current = {"I": [marker.group(2) or ""]}, ""
        elif marker:
            current = marker.group(1)
            record.setdefault(current, [])
        elif current:
            record[current].append(line)
    if record:
        yield {k: "\n".join(v).strip() for k, v in record.items()}


def _smart_author(line: str) -> str:
    """``Perlis, A. J.`` -> ``A. J. Perlis`` (as the name is written on a paper)."""
    family, comma, given = line.partition(",")
    return f"{given.strip()} {family.strip()}".strip() if comma else line.strip()


def cacm(root: Path = DATA) -> Collection:
    folder = root / "cacm_smart"
    docs = []
    for r in smart_records(folder / "cacm.all"):
        authors = tuple(_smart_author(a) for a in r.get("A", "").splitlines() if a.strip())
        docs.append(
            Doc(r["I"], " ".join(r.get("T", "").split()), " ".join(r.get("W", "").split()), authors)
        )
    queries = {
        r["I"]: " ".join(r.get("W", "").split()) for r in smart_records(folder / "query.text")
    }
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels.text").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            qrels.setdefault(str(int(parts[0])), {})[str(int(parts[1]))] = 1
    with_abstract = sum(1 for d in docs if d.abstract)
    return Collection(
        "cacm",
        docs,
        queries,
        qrels,
        notes=[
            f"{with_abstract:,} of {len(docs):,} documents have an abstract (the rest: title "
            "and authors only); queries are the .W text (a query's .A authors are not used)",
        ],
    )


# --- NFCorpus -----------------------------------------------------------------------------------

_NF_FALLBACK_HEADINGS = ("summary", "synopsis", "background", "objective", "objectives")
_NF_TITLE_MAX = 40  # a heading further in than this many words is not the end of the title


def split_nfcorpus(text: str) -> tuple[str, str, str]:
    """(title, abstract, how): the title is the words before the first ``abstract`` (dropped);
    failing that, before the first summary/synopsis/background/objective heading (kept); failing
    that, the first 10 words."""
    words = text.split()
    head = words[:_NF_TITLE_MAX]
    if "abstract" in head[1:]:
        i = head.index("abstract", 1)
        return " ".join(words[:i]), " ".join(words[i + 1 :]), "abstract"
    for i, word in enumerate(head[1:], start=1):
        if word in _NF_FALLBACK_HEADINGS:
            return " ".join(words[:i]), " ".join(words[i:]), "heading"
    return " ".join(words[:10]), " ".join(words[10:]), "first words"


def _tsv(path: Path) -> Iterator[tuple[str, str]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            key, _tab, value = line.rstrip("\n").partition("\t")
            if key:
                yield key, value


def nfcorpus(root: Path = DATA, split: str = "test", kind: str = "all") -> Collection:
    folder = root / "nfcorpus"
    docs, how = [], {"abstract": 0, "heading": 0, "first words": 0}
    for doc_id, text in _tsv(folder / f"{split}.docs"):
        title, abstract, used = split_nfcorpus(text)
        how[used] += 1
        docs.append(Doc(doc_id, title, abstract))
    queries = {q: " ".join(text.split()) for q, text in _tsv(folder / f"{split}.{kind}.queries")}
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / f"{split}.3-2-1.qrel").read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return Collection(
        f"nfcorpus-{split}-{kind}",
        docs,
        queries,
        qrels,
        notes=[
            "text is lower-cased, stop-word-filtered, without punctuation, numbers -> 'num'",
            f"title split: at 'abstract' {how['abstract']:,}, at another heading "
            f"{how['heading']:,}, first 10 words {how['first words']:,}",
        ],
    )


# --- CSFCube ------------------------------------------------------------------------------------


def csfcube(root: Path = DATA) -> Collection:
    folder = root / "csfcube"
    docs: dict[str, Doc] = {}
    parts = sorted(folder.glob("derived_corpus_from_readable_annotations.part*.jsonl"))
    if not parts:
        raise FileNotFoundError(f"no derived corpus in {folder}")
    for part in parts:
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                abstract = " ".join(s["text"] for s in row.get("abstract_sentences", []))
                docs[row["paper_id"]] = Doc(
                    row["paper_id"], " ".join(row["title"].split()), " ".join(abstract.split())
                )
    with (folder / "queries-release.csv").open(encoding="utf-8") as handle:
        order = [f"{r['pid']}_{r['facet']}" for r in csv.DictReader(handle)]
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    pools: dict[str, list[str]] = {}
    dropped_self, missing = 0, 0
    for facet in FACETS:
        judged = json.loads((folder / f"test-pid2anns-csfcube-{facet}.json").read_text())
        for pid, entry in judged.items():
            qid = f"{pid}_{facet}"
            queries[qid] = pid
            pool, grades = [], {}
            for cand, grade in zip(entry["cands"], entry["relevance_adju"], strict=True):
                if cand == pid:
                    dropped_self += 1
                    continue
                if cand not in docs:
                    missing += 1
                    continue
                pool.append(cand)
                grades[cand] = int(grade)
            pools[qid], qrels[qid] = pool, grades
    ranked = {q: i for i, q in enumerate(order)}
    queries = dict(sorted(queries.items(), key=lambda kv: ranked.get(kv[0], len(ranked))))
    return Collection(
        "csfcube",
        list(docs.values()),
        queries,
        qrels,
        pools,
        notes=[
            f"{len(queries)} facet-queries over {len(set(queries.values()))} query papers; "
            "every facet uses the whole title + abstract (facets are not told apart)",
            f"each query ranks its own pool only (mean {_mean_len(pools):.0f} candidates); "
            f"query paper dropped from its own pool {dropped_self}x; candidates without text "
            f"{missing}",
        ],
    )


def _mean_len(pools: dict[str, list[str]]) -> float:
    return sum(len(p) for p in pools.values()) / max(len(pools), 1)


LOADERS = {"cacm": cacm, "nfcorpus": nfcorpus, "csfcube": csfcube}
