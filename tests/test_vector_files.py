"""The saved faiss index shared by worker processes (:mod:`papertide.search.vector_files`):
saves from several processes at once leave one consistent index, a save that holds no more is
skipped, old versions are tidied, and a save from before versioning still loads."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from papertide.search import vector_files
from papertide.search.vector_files import Saved

DIM = 64
MODEL = "test-model"


def _index(n: int) -> tuple[Any, set[int]]:
    rng = np.random.default_rng(n)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(DIM))
    ids = np.arange(1, n + 1, dtype=np.int64)
    index.add_with_ids(rng.random((n, DIM), dtype=np.float32), ids)
    return index, set(ids.tolist())


def _save(path: Path, n: int, stale: int = 0) -> bool:
    index, papers = _index(n)
    return vector_files.save(path, index, papers, Saved(MODEL, DIM, "hnsw", n, n, stale))


def _worker(path: str, n: int, start: Any) -> None:
    start.wait()  # every worker saves at once
    for step in range(40):  # the workers leapfrog: each save is newer than the last
        _save(Path(path), 5000 + 3 * step + n)


def test_concurrent_saves_leave_one_consistent_index(tmp_path: Path) -> None:
    path = tmp_path / "vectors-test.faiss"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    workers = [context.Process(target=_worker, args=(str(path), n, start)) for n in (0, 1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    found = vector_files.load(path, MODEL, DIM)
    assert found is not None
    index, papers, saved = found
    assert saved.last_id == 5119  # the newest any worker had
    assert index.ntotal == saved.count == len(papers) == 5119
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["index_file"] in {p.name for p in tmp_path.glob("*.faiss")}
    assert len(list(tmp_path.glob("*.faiss"))) <= 2  # this save and the one it replaced
    assert not list(tmp_path.glob("*.tmp"))


def test_a_save_that_holds_no_more_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "vectors-test.faiss"
    assert _save(path, 100, stale=3)
    assert not _save(path, 100, stale=3)  # another worker at the same point
    assert not _save(path, 90)  # behind
    assert _save(path, 100, stale=0)  # rebuilt: no stale entries
    assert _save(path, 120)
    assert len(list(tmp_path.glob("*.faiss"))) == 2
    found = vector_files.load(path, MODEL, DIM)
    assert found is not None and found[2].last_id == 120
    assert vector_files.load(path, "other-model", DIM) is None


def test_a_save_from_before_versioning_loads_and_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "vectors-test.faiss"
    index, papers = _index(50)
    faiss.write_index(index, str(path))
    np.save(path.with_suffix(".ids.npy"), np.fromiter(papers, np.int64))
    meta = {"model": MODEL, "dim": DIM, "kind": "hnsw", "last_id": 50, "count": 50}
    path.with_suffix(".json").write_text(json.dumps(meta))
    found = vector_files.load(path, MODEL, DIM)
    assert found is not None and found[0].ntotal == 50 and found[1] == papers
    assert _save(path, 60)
    assert _save(path, 70)
    assert not path.exists() and not path.with_suffix(".ids.npy").exists()
    found = vector_files.load(path, MODEL, DIM)
    assert found is not None and found[2].last_id == 70
