"""The bundled demo data set: 18 months of Hugging Face Daily Papers lists.

``hf_daily_papers.jsonl.gz`` holds 11,021 papers on 492 daily lists (2025-02-03 to 2026-08-21,
days counted in New York time): arXiv id, title, the time the paper was put on Daily Papers,
its abstract with HF's AI summary where the page had one, and its rank on that day's list. It
is the timeline JSON-lines format of :mod:`papertide.ingest.hf_jsonfeed`, so
``papertide ingest <DEMO_PATH>`` loads it like any other file. It was built by
``scripts/build_demo.py`` from the MichaelMarkert/rss scrapes of huggingface.co/papers
(MIT License, Copyright (c) Michael Markert; see NOTICE at the repository root).

``hf_daily_papers.vectors.npz`` holds those papers' embeddings by the default model, int8 with a
scale per vector, made by ``scripts/build_demo_vectors.py``: ``papertide demo`` stores them, so
semantic search works at once instead of after minutes of embedding.
"""

from __future__ import annotations

from pathlib import Path

DEMO_PATH = Path(__file__).resolve().parent / "hf_daily_papers.jsonl.gz"
VECTORS_PATH = Path(__file__).resolve().parent / "hf_daily_papers.vectors.npz"
