"""The faiss index saved beside an SQLite database, shared by every worker process.

Each ``papertide serve`` worker keeps its own in-memory index (:mod:`papertide.search.vectors`)
and saves it when it has caught up with new vectors and when it stops, so that a restart loads
it instead of rebuilding (295 s at 1M papers). With several workers on one database they save
the same index into one folder, so a save is:

- **versioned**: the index and its paper ids go to files of their own (``<stem>.<version>.faiss``,
  ``<stem>.<version>.ids.npy``), and only then does the small metadata file (``<stem>.json``),
  which names them, replace the previous one (``os.replace``). A reader that opens the files the
  metadata names gets an index, ids and metadata of one save, never a mix of two workers';
- **one at a time**: under an exclusive ``flock`` on ``<stem>.lock``;
- **skipped when not newer**: a worker whose index has caught up no further than the saved one
  (another worker's save, usually) and holds no fewer stale entries writes nothing, so N
  workers do not write the same 0.7 GB N times;
- **tidy**: older versions are removed, except the one just replaced (a worker may be loading
  it), and so are the files of revisions before versioning.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np


@dataclass
class Saved:
    """What a save holds, beside the index itself."""

    model: str
    dim: int
    kind: str
    last_id: int  # the last paper_embeddings.id the index holds
    count: int
    stale: int


def load(path: Path, model: str, dim: int) -> tuple[Any, set[int], Saved] | None:
    """(index, paper ids, metadata) of the latest save at ``path``, or None when there is none,
    it is of another model or dimension, or it cannot be read (then the caller rebuilds)."""
    for _attempt in range(2):  # a save may remove an old version between two reads
        meta = _meta(path)
        if meta is None or meta.get("model") != model or meta.get("dim") != dim:
            return None
        index_file, ids_file = _files(path, meta)
        try:
            index = faiss.read_index(str(index_file))
            papers = set(np.load(ids_file).tolist())
        except (OSError, ValueError, RuntimeError):
            continue
        saved = Saved(
            model,
            dim,
            str(meta["kind"]),
            int(meta["last_id"]),
            int(meta["count"]),
            int(meta.get("stale", 0)),
        )
        return index, papers, saved
    return None


def save(path: Path, index: Any, papers: set[int], saved: Saved) -> bool:
    """Save ``index`` unless the saved one holds as much; whether it was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        current = _meta(path)
        if current is not None and _holds_as_much(current, saved):
            return False
        version = uuid.uuid4().hex[:16]
        index_file = path.with_name(f"{path.stem}.{version}.faiss")
        ids_file = path.with_name(f"{path.stem}.{version}.ids.npy")
        faiss.write_index(index, str(index_file))
        np.save(ids_file, np.fromiter(papers, np.int64))
        meta = {**saved.__dict__, "index_file": index_file.name, "ids_file": ids_file.name}
        tmp = path.with_name(f"{path.stem}.{version}.json.tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, _meta_path(path))
        keep = {index_file.name, ids_file.name}
        if current is not None:
            keep |= {f.name for f in _files(path, current)}
        _remove_others(path, keep)
    return True


def _holds_as_much(meta: dict[str, Any], saved: Saved) -> bool:
    """Whether the saved index is of the same model and kind, and holds the vectors up to at
    least the same id with no more stale entries (a rebuild drops them)."""
    if (meta.get("model"), meta.get("dim"), meta.get("kind")) != (
        saved.model,
        saved.dim,
        saved.kind,
    ):
        return False
    last_id, stale = int(meta.get("last_id", -1)), int(meta.get("stale", 0))
    return last_id > saved.last_id or (last_id == saved.last_id and stale <= saved.stale)


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_meta_path(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _files(path: Path, meta: dict[str, Any]) -> tuple[Path, Path]:
    if "index_file" in meta and "ids_file" in meta:  # a versioned save
        return path.with_name(str(meta["index_file"])), path.with_name(str(meta["ids_file"]))
    return path, path.with_suffix(".ids.npy")  # before versioning: fixed names


def _remove_others(path: Path, keep: set[str]) -> None:
    patterns = (f"{path.stem}.*.faiss", f"{path.stem}.*.ids.npy", f"{path.stem}.*.tmp*")
    legacy = (path.name, path.with_suffix(".ids.npy").name)
    for candidate in [*_glob(path, patterns), *(path.with_name(n) for n in legacy)]:
        if candidate.name not in keep:
            with suppress(FileNotFoundError):
                candidate.unlink()


def _glob(path: Path, patterns: tuple[str, ...]) -> Iterator[Path]:
    for pattern in patterns:
        yield from path.parent.glob(pattern)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
