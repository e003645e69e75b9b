"""Against the real BigARTM 0.9.2 (in .venv-ref): it reads our batches, we read its batches.

Also pins down what BigARTM's per-pass perplexity is, with a dense NumPy EM written from
SYSTEM.md section 3 on a small real corpus.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.prepare import prepare_uci, prepare_vw
from artm_compose.data.vocab import batch_in_vocab, read_vocab
from artm_compose.engine.corpus import load_corpus
from support.paths import REFERENCE_PYTHON, ROOT
from support.paths import REFERENCE_SCRIPT as SCRIPT
from artm_compose.data.dictionary_filter import parse_filter
from support.data import collection_counts, write_dpkg_vw, write_uci, write_vw

pytestmark = pytest.mark.reference

TIMEOUT = 300


@pytest.fixture(scope="module")
def reference_python() -> Path:
    """The reference venv, created by scripts/setup_reference.sh when it is missing."""
    if not REFERENCE_PYTHON.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "setup_reference.sh")], check=True, timeout=TIMEOUT)
    return REFERENCE_PYTHON


def run_reference(python: Path, *args: str) -> str:
    result = subprocess.run([str(python), str(SCRIPT), *args], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"bigartm_reference.py {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def fit(python: Path, batches: Path, out: Path, *extra: str) -> tuple[dict, dict[str, np.ndarray]]:
    run_reference(python, "fit", "--batches", str(batches), "--json", str(out / "fit.json"),
                  "--npz", str(out / "fit.npz"), *extra)
    with np.load(out / "fit.npz") as data:
        arrays = {name: data[name] for name in data.files}
    return json.loads((out / "fit.json").read_text()), arrays


def numpy_em(batches: Path, init_phi: np.ndarray, passes: int, inner: int) -> tuple[list[float], np.ndarray]:
    """Offline PLSA exactly as SYSTEM.md section 3 states it, dense, in float64."""
    vocab = read_vocab(batches / "vocab.txt")
    documents = []
    for path in list_batches(batches):
        mapped = batch_in_vocab(read_batch(path), vocab)
        for d in range(len(mapped.indptr) - 1):
            span = slice(mapped.indptr[d], mapped.indptr[d + 1])
            documents.append((mapped.vocab_index[span], mapped.weights[span].astype(np.float64)))
    phi = init_phi.astype(np.float64)
    topics = phi.shape[1]
    perplexity = []
    for _ in range(passes):
        n_wt = np.zeros_like(phi)
        log_likelihood = total = 0.0
        for words, counts in documents:
            rows = phi[words]
            theta = np.full(topics, 1.0 / topics)
            for _ in range(inner):
                theta = theta * (rows.T @ (counts / (rows @ theta)))
                theta /= theta.sum()
            p_dw = rows @ theta
            np.add.at(n_wt, words, np.outer(counts / p_dw, theta) * rows)
            log_likelihood += float(counts @ np.log(p_dw))
            total += float(counts.sum())
        perplexity.append(float(np.exp(-log_likelihood / total)))
        phi = n_wt / n_wt.sum(axis=0)
    return perplexity, phi


def test_bigartm_reads_our_batches_and_its_perplexity_is_systems(reference_python: Path, tmp_path: Path) -> None:
    docword, vocab = write_uci(tmp_path)
    stats = prepare_uci(docword, vocab, tmp_path / "ours", batch_size=2)
    result, arrays = fit(reference_python, tmp_path / "ours", tmp_path, "--topics", "3", "--passes", "6",
                         "--inner", "5", "--seed", "7")
    assert result["batches"] == stats.batches and result["vocab_size"] == stats.vocab_size
    assert result["token_weight"] == stats.token_weight  # BigARTM saw every token of every document
    assert list(arrays["tokens"]) == read_vocab(tmp_path / "ours" / "vocab.txt").tokens
    perplexity, phi = numpy_em(tmp_path / "ours", arrays["init_phi"], passes=6, inner=5)
    np.testing.assert_allclose(result["perplexity"], perplexity, rtol=1e-5)
    np.testing.assert_allclose(arrays["phi"], phi, atol=1e-5)
    assert result["zero_words"] == [0] * 6


@pytest.mark.integration
def test_reference_on_small_real_debian_corpus(reference_python: Path, tmp_path: Path) -> None:
    """The SYSTEM.md pass on real text (600 packages), from an initial phi we give BigARTM (npz and CSV)."""
    from artm_compose.data.debian import CorpusOptions, prepare_debian

    corpus = tmp_path / "debian"
    prepare_debian(corpus, CorpusOptions(max_docs=600, batch_size=250))
    vocab = read_vocab(corpus / "vocab.txt")
    rng = np.random.default_rng(3)
    init = rng.random((len(vocab), 8)).astype(np.float32)
    init /= init.sum(axis=0)
    np.savez(tmp_path / "init.npz", phi=init, tokens=np.array(vocab.tokens))
    result, arrays = fit(reference_python, corpus, tmp_path, "--topics", "8", "--passes", "4",
                         "--init-phi", str(tmp_path / "init.npz"))
    np.testing.assert_array_equal(arrays["init_phi"], init)
    perplexity, phi = numpy_em(corpus, init, passes=4, inner=10)
    np.testing.assert_allclose(result["perplexity"], perplexity, rtol=1e-5)
    np.testing.assert_allclose(arrays["phi"], phi, atol=1e-5)

    # The same start given as the CSV pandas writes, rows shuffled: matched by token.
    order = rng.permutation(len(vocab))
    lines = ["," + ",".join(f"topic_{t}" for t in range(8))]
    lines += [vocab.tokens[i] + "," + ",".join(repr(float(v)) for v in init[i]) for i in order]
    (tmp_path / "init.csv").write_text("\n".join(lines) + "\n")
    again, _ = fit(reference_python, corpus, tmp_path, "--topics", "8", "--passes", "4",
                   "--init-phi", str(tmp_path / "init.csv"))
    np.testing.assert_allclose(again["perplexity"], result["perplexity"], rtol=1e-6)


def test_init_phi_missing_token_is_an_error(reference_python: Path, tmp_path: Path) -> None:
    prepare_vw(write_vw(tmp_path / "s.vw"), tmp_path / "ours")
    np.savez(tmp_path / "init.npz", phi=np.ones((1, 2), np.float32), tokens=np.array(["image"]))
    result = subprocess.run(
        [str(reference_python), str(SCRIPT), "fit", "--batches", str(tmp_path / "ours"), "--topics", "2",
         "--passes", "1", "--init-phi", str(tmp_path / "init.npz"), "--json", str(tmp_path / "f.json")],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert result.returncode != 0 and "init.npz lacks" in result.stderr


@pytest.mark.parametrize("source", ["uci", "vw"])
def test_we_read_batchvectorizer_output_as_our_own(reference_python: Path, tmp_path: Path, source: str) -> None:
    if source == "uci":
        docword, vocab = write_uci(tmp_path)
        run_reference(reference_python, "vectorize", "--uci", str(docword), str(vocab),
                      "--target", str(tmp_path / "bigartm"), "--batch-size", "2")
        prepare_uci(docword, vocab, tmp_path / "ours", batch_size=2)
    else:
        path = write_vw(tmp_path / "sample.vw")
        # BigARTM refuses a name-only line ("too few entries"), where we skip and count it.
        lines = path.read_text().splitlines(keepends=True)
        (tmp_path / "bigartm.vw").write_text("".join(line for line in lines if len(line.split()) > 1))
        run_reference(reference_python, "vectorize", "--vw", str(tmp_path / "bigartm.vw"), "--target", str(tmp_path / "bigartm"),
                      "--batch-size", "2")
        prepare_vw(tmp_path / "bigartm.vw", tmp_path / "ours", batch_size=2)
    theirs = collection_counts(tmp_path / "bigartm")
    assert theirs == collection_counts(tmp_path / "ours")
    assert len(theirs) == 4
    for ours_path, theirs_path in zip(list_batches(tmp_path / "ours"), list_batches(tmp_path / "bigartm")):
        ours, bigartm = read_batch(ours_path), read_batch(theirs_path)
        assert ours.tokens == bigartm.tokens  # the same local vocabulary, in first-appearance order
        np.testing.assert_array_equal(ours.indptr, bigartm.indptr)
        np.testing.assert_array_equal(ours.token_index, bigartm.token_index)


# Three modalities, a bare '|' back to the default class, a token in two classes, fractional and
# repeated entries (BigARTM writes a repeated token as two item entries; we sum them).
MULTIMODAL_VW = """\
0ad real time strategy game:2 |@tag role__program game |@section games
bash bash shell command:1.5 |@tag interface__commandline role__program | interpreter shell |@section shells
curl command line tool url |@section web |@tag role__program interface__commandline network__client
gimp image:3 photo |@tag role__program uitoolkit__gtk |@section graphics | image
debhelper helper programs |@section devel |@tag role__program devel__packaging
"""


def summed_items(directory: Path) -> list[tuple[int, str, dict[tuple[str, str], float]]]:
    """(item id, title, {(class id, token): summed weight}) of every item, in batch order."""
    items = []
    for path in list_batches(directory):
        batch = read_batch(path)
        for d in range(batch.n_items):
            entries: dict[tuple[str, str], float] = {}
            for i, w in zip(batch.token_index[batch.indptr[d]:batch.indptr[d + 1]],
                            batch.weights[batch.indptr[d]:batch.indptr[d + 1]]):
                key = (batch.class_ids[i], batch.tokens[i])
                entries[key] = entries.get(key, 0.0) + float(w)
            items.append((int(batch.item_ids[d]), batch.titles[d], entries))
    return items


def dense_corpus(directory: Path, vocab_path: Path) -> np.ndarray:
    """Documents x vocabulary counts as the engine loads them (tokens matched by class id and token)."""
    vocab = read_vocab(vocab_path)
    corpus = load_corpus(directory, vocab, 0, len(list_batches(directory)))
    docs = corpus.docs
    dense = np.zeros((len(docs.indptr) - 1, len(vocab)))
    rows = np.repeat(np.arange(len(docs.indptr) - 1), np.diff(docs.indptr))
    np.add.at(dense, (rows, corpus.rows[docs.rows]), docs.weights)
    assert corpus.skipped_entries == 0
    return dense


def test_multimodal_vw_matches_batchvectorizer(reference_python: Path, tmp_path: Path) -> None:
    source = tmp_path / "multimodal.vw"
    source.write_text(MULTIMODAL_VW)
    run_reference(reference_python, "vectorize", "--vw", str(source), "--target", str(tmp_path / "bigartm"),
                  "--batch-size", "2")
    stats = prepare_vw(source, tmp_path / "ours", batch_size=2)
    ours, theirs = summed_items(tmp_path / "ours"), summed_items(tmp_path / "bigartm")
    assert ours == theirs
    assert {c for _, _, entries in ours for c, _ in entries} == {"@default_class", "@tag", "@section"}
    for ours_path, theirs_path in zip(list_batches(tmp_path / "ours"), list_batches(tmp_path / "bigartm"), strict=True):
        ours_batch, bigartm = read_batch(ours_path), read_batch(theirs_path)
        # the same local vocabulary of (class id, token), in first-appearance order
        assert list(zip(ours_batch.class_ids, ours_batch.tokens)) == list(zip(bigartm.class_ids, bigartm.tokens))

    # The engine loads both the same way through our vocab.txt (UCI convention: 'token class_id').
    vocab_path = tmp_path / "ours" / "vocab.txt"
    assert "image\n" in vocab_path.read_text() and "games @section\n" in vocab_path.read_text()
    np.testing.assert_array_equal(dense_corpus(tmp_path / "ours", vocab_path),
                                  dense_corpus(tmp_path / "bigartm", vocab_path))

    # BigARTM gathers its dictionary from our batches with our vocab.txt: the same (class id, token) set,
    # or the script fails; PLSA over all modalities sees every token.
    result, arrays = fit(reference_python, tmp_path / "ours", tmp_path, "--topics", "2", "--passes", "1")
    assert result["vocab_size"] == stats.vocab_size == len(read_vocab(vocab_path))
    assert sorted(set(arrays["class_ids"])) == ["@default_class", "@section", "@tag"]


@pytest.fixture(scope="module")
def dpkg_vw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dpkg_vw(tmp_path_factory.mktemp("dpkg") / "dpkg.vw")


@pytest.mark.parametrize(
    ("ours", "bigartm"),
    [
        ({"min_df": ["3"], "max_df_rate": ["0.3"]}, [{"min_df": 3, "max_df_rate": 0.3}]),
        ({"min_df_rate": ["0.01"], "max_df": ["@section=40"]},
         [{"min_df_rate": 0.01}, {"class_id": "@section", "max_df": 40}]),
        ({"min_df": ["2", "@default_class=4"]},
         [{"class_id": "@default_class", "min_df": 4}, {"class_id": "@section", "min_df": 2}]),
        ({"min_df": ["2"], "max_dictionary_size": ["700"]}, [{"min_df": 2, "max_dictionary_size": 700}]),
        ({"min_df_rate": ["0.3"], "max_df_rate": ["0.7"]}, [{"min_df_rate": 0.3, "max_df_rate": 0.7}]),
    ],
    ids=["min-df,max-df-rate", "min-df-rate,section-max-df", "per-class-min-df", "max-dictionary-size", "rates"],
)
def test_dictionary_filter_keeps_what_bigartm_keeps(
    reference_python: Path, tmp_path: Path, dpkg_vw: Path, ours: dict, bigartm: list
) -> None:
    """Real text (the installed packages' descriptions with their sections), gathered and filtered by BigARTM."""
    prepare_vw(dpkg_vw, tmp_path / "all", batch_size=200)
    run_reference(reference_python, "dictionary", "--batches", str(tmp_path / "all"),
                  "--filters", json.dumps(bigartm), "--json", str(tmp_path / "kept.json"))
    theirs = json.loads((tmp_path / "kept.json").read_text())
    prepare_vw(dpkg_vw, tmp_path / "ours", batch_size=200, dictionary_filter=parse_filter(ours))
    vocab = read_vocab(tmp_path / "ours" / "vocab.txt")
    kept = set(zip(vocab.class_ids, vocab.tokens))
    assert kept == {(c, t) for c, t, _ in theirs["entries"]}
    assert 0 < len(kept) < len(read_vocab(tmp_path / "all" / "vocab.txt"))


def test_reference_script_does_not_import_artm_compose() -> None:
    code = SCRIPT.read_text().split('"""', 2)[2]  # after the module docstring
    assert "artm_compose" not in code
