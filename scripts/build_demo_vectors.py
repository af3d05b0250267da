"""Build ``papertide/demo/hf_daily_papers.vectors.npz``: the demo papers' embeddings.

Usage::

    .venv/bin/python scripts/build_demo_vectors.py [--out PATH]

Loads the bundled demo data into a temporary database, embeds every paper exactly as
``papertide embed`` does (the default model, ``document_text(title, abstract)``), and stores
the vectors quantised to int8 with one scale per vector (4.2 MB instead of 17 MB of float32;
cosine similarity to the float vectors >= 0.999), with the arXiv ids and the model's name.
``papertide demo`` loads them, so semantic search works from the first page view; a database
with another model configured embeds the demo papers itself instead.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sqlalchemy import select

from papertide.config import load_settings
from papertide.db.engine import make_engine
from papertide.db.schema import paper_embeddings, papers
from papertide.demo import VECTORS_PATH
from papertide.demo_load import load_demo
from papertide.search.embedder import DEFAULT_MODEL, Embedder
from papertide.search.pipeline import embed_missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=VECTORS_PATH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/demo.db"
        settings = load_settings(env={"PAPERTIDE_DATABASE_URL": url})
        print(load_demo(settings, progress=False, vectors=False))
        engine = make_engine(url)
        embedder = Embedder.load(DEFAULT_MODEL)
        report = embed_missing(engine, embedder)
        print(f"embedded {report.embedded} papers at {report.rate:.1f}/s ({embedder.precision})")
        with engine.connect() as connection:
            found = connection.execute(
                select(papers.c.arxiv_id, paper_embeddings.c.vector)
                .join(paper_embeddings, paper_embeddings.c.paper_id == papers.c.id)
                .where(paper_embeddings.c.model == embedder.name)
                .order_by(papers.c.arxiv_id)
            ).all()
        engine.dispose()
    ids = np.array([arxiv_id for arxiv_id, _v in found])
    matrix = np.vstack([vector for _a, vector in found]).astype(np.float32)
    scales = np.abs(matrix).max(axis=1) / 127.0
    codes = np.round(matrix / scales[:, None]).astype(np.int8)
    np.savez_compressed(
        args.out, ids=ids, codes=codes, scales=scales.astype(np.float32), model=embedder.name
    )
    restored = codes.astype(np.float32) * scales[:, None]
    restored /= np.linalg.norm(restored, axis=1, keepdims=True)
    agreement = float(np.mean(np.sum(restored * matrix, axis=1)))
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB, {len(ids)} vectors, mean cosine {agreement:.5f})")


if __name__ == "__main__":
    main()
