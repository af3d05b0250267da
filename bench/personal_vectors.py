"""The CSFCube vectors the personal feed benchmark (``bench/personal.py``) builds on: the real
model's unit vectors of the collection, cached as .npy, and their noisy copies."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from judged import Collection

from papertide.search.embedder import Embedder, document_text

SIGMA = 0.0247  # per-dimension noise: cosine ~0.9 to the original 384-d unit vector


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-9)).astype(np.float32)


def perturbed(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return unit_rows(base + rng.normal(0.0, SIGMA, base.shape).astype(np.float32))


def collection_vectors(coll: Collection, embedder: Embedder, cache: Path) -> np.ndarray:
    """Unit vectors of the collection's documents in ``coll.docs`` order (cached as .npy)."""
    texts = [document_text(d.title, d.abstract) for d in coll.docs]
    digest = hashlib.sha1(
        "\n".join(
            [embedder.name, embedder.precision, *(d.doc_id for d in coll.docs), *texts]
        ).encode()
    ).hexdigest()[:16]
    path = cache / f"csfcube-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    matrix = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), 256):
        chunk = order[start : start + 256]
        matrix[chunk] = embedder.encode_documents([texts[i] for i in chunk])
        done = start + len(chunk)
        rate = done / (time.perf_counter() - started)
        print(f"  embedded {done:,}/{len(texts):,} ({rate:.0f}/s)", end="\r", flush=True)
    print(
        f"  embedded {len(texts):,} documents in {time.perf_counter() - started:.0f} s "
        f"({embedder.precision})"
    )
    np.save(path, matrix)
    return matrix
