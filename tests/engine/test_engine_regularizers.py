"""Regularizers, class weights and scores give BigARTM 0.9.2's answer, from the same initial phi.

The corpus is real and has two modalities: the descriptions of this machine's packages and each
package's ``@section``. BigARTM runs in ``.venv-ref`` through ``scripts/bigartm_reference.py fit``;
our master and executors on a real local Redis Cluster.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from artm_compose.engine.export import export_model
from artm_compose.engine.transform import Theta
from support.engine import DPKG_STATUS, client_of, dpkg_multimodal_corpus, run_training
from support.paths import REFERENCE_PYTHON, REFERENCE_SCRIPT
from support.ports import requires_redis

TOPICS = 8
PASSES = 6
WEIGHTS = {"@default_class": 1.0, "@section": 5.0}
SPARSE_PHI = {"type": "SmoothSparsePhiRegularizer", "tau": -0.05, "class_ids": ["@default_class"]}
SPARSE_THETA = {"type": "SmoothSparseThetaRegularizer", "tau": -0.1, "topic_names": ["topic_0", "topic_1", "topic_2"]}
DECORRELATOR = {"type": "DecorrelatorPhiRegularizer", "tau": 2000.0}
PHI_SCORES = ("sparsity_phi", "sparsity_theta", "kernel_size", "kernel_purity", "kernel_contrast")

pytestmark = [pytest.mark.reference, pytest.mark.integration, requires_redis,
              pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="no .venv-ref (scripts/setup_reference.sh)"),
              pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return dpkg_multimodal_corpus(tmp_path_factory.mktemp("corpus") / "dpkg")


def bigartm_fit(batches: Path, init_phi: Path, out: Path, regularizers: list[dict],
                class_ids: dict | None) -> tuple[dict, dict]:
    argv = [str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT), "fit", "--batches", str(batches), "--topics", str(TOPICS),
            "--passes", str(PASSES), "--inner", "10", "--init-phi", str(init_phi),
            "--regularizers", json.dumps(regularizers), "--json", str(out / "bigartm.json"),
            "--npz", str(out / "bigartm.npz")]
    if class_ids:
        argv += ["--class-ids", json.dumps(class_ids)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "bigartm.json").read_text()), dict(np.load(out / "bigartm.npz"))


def train(cluster, corpus: Path, work: Path, nodes: int, per_node: int, **config) -> tuple[dict, np.ndarray]:
    scores, codes, training = run_training(cluster, corpus, work, nodes, per_node, 240, topics=TOPICS, seed=5,
                                           heartbeat_timeout=10.0, **config)
    assert set(codes.values()) == {0}, training.log("master")
    phi = np.load(export_model(client_of(cluster), "test", corpus / "vocab.txt", work / "phi.npz"))["phi"]
    return scores, phi


def initial_phi(cluster, corpus: Path, work: Path) -> Path:
    scores, _ = train(cluster, corpus, work, 1, 1, iterations=0)
    return work / "phi.npz"


# What each regularizer must visibly do, against BigARTM's PLSA from the same phi (final pass).
EFFECTS = {
    "sparse-phi": lambda reg, plain: reg["sparsity_phi"][-1] > plain["sparsity_phi"][-1] + 0.2,
    "sparse-theta": lambda reg, plain: reg["sparsity_theta"][-1] > plain["sparsity_theta"][-1] + 0.1,
    "decorrelator": lambda reg, plain: abs(reg["perplexity"][-1] / plain["perplexity"][-1] - 1) > 0.01,
    "all-three-weighted": lambda reg, plain: reg["sparsity_phi"][-1] > plain["sparsity_phi"][-1] + 0.2,
    "relative-gamma": lambda reg, plain: reg["sparsity_phi"][-1] > plain["sparsity_phi"][-1] + 0.05,
}

CASES = {
    "plsa-two-modalities": ([], None),
    "sparse-phi": ([SPARSE_PHI], None),
    "sparse-theta": ([SPARSE_THETA], None),
    "decorrelator": ([DECORRELATOR], None),
    "all-three-weighted": ([SPARSE_PHI, SPARSE_THETA, DECORRELATOR], WEIGHTS),
    "relative-gamma": ([{**SPARSE_PHI, "tau": -0.2, "gamma": 0.5},
                        {"type": "DecorrelatorPhiRegularizer", "tau": 0.1, "gamma": 0.2}], WEIGHTS),
}


@pytest.mark.parametrize("case", list(CASES))
def test_regularized_training_matches_bigartm(local_cluster, corpus, tmp_path, case):
    regularizers, class_ids = CASES[case]
    cluster = local_cluster(nodes=2)
    init = initial_phi(cluster, corpus, tmp_path / "init")
    reference, reference_npz = bigartm_fit(corpus, init, tmp_path, regularizers, class_ids)
    np.testing.assert_array_equal(reference_npz["init_phi"], np.load(init)["phi"])
    if case in EFFECTS:
        (tmp_path / "plain").mkdir()
        plain, _ = bigartm_fit(corpus, init, tmp_path / "plain", [], None)
        assert EFFECTS[case](reference, plain), (reference, plain)

    scores, phi = train(cluster, corpus, tmp_path / "ours", 2, 1, iterations=PASSES, init_phi=init,
                        regularizers=regularizers, class_ids=class_ids or {})
    np.testing.assert_allclose(scores["perplexity"], reference["perplexity"], rtol=1e-3)
    for class_id, values in reference["perplexity_by_class"].items():
        np.testing.assert_allclose(scores["perplexity_by_class"][class_id], values, rtol=1e-3)
    for name in PHI_SCORES:
        np.testing.assert_allclose(scores[name], reference[name], atol=1e-3, rtol=1e-3, err_msg=name)
    assert np.abs(phi - reference_npz["phi"]).max() < 1e-4
    assert scores["top_tokens"] == reference["top_tokens"]
    # Every modality is a distribution of its own over the topics that have tokens of it.
    classes = np.load(tmp_path / "ours" / "phi.npz")["class_ids"]
    for class_id in set(classes):
        sums = phi[classes == class_id].sum(axis=0)
        assert np.all((np.abs(sums - 1) < 1e-4) | (sums == 0)), class_id


def test_regularized_training_does_not_depend_on_the_topology_1x1_vs_4x2(local_cluster, corpus, tmp_path):
    regularizers, class_ids = CASES["all-three-weighted"]
    cluster = local_cluster(nodes=2)
    init = initial_phi(cluster, corpus, tmp_path / "init")
    runs = [train(cluster, corpus, tmp_path / f"{nodes}x{per_node}", nodes, per_node, iterations=4, init_phi=init,
                  regularizers=regularizers, class_ids=class_ids)
            for nodes, per_node in ((1, 1), (4, 2))]  # 4 x 2 executors over the 2 Redis nodes
    (one, one_phi), (four, four_phi) = runs
    np.testing.assert_allclose(one["perplexity"], four["perplexity"], rtol=1e-5)
    assert np.abs(one_phi - four_phi).max() < 1e-5
    for name in PHI_SCORES:
        np.testing.assert_allclose(one[name], four[name], atol=1e-5, err_msg=name)


def test_transform_applies_the_models_class_weights_and_theta_regularizers_as_bigartm(local_cluster, corpus,
                                                                                       tmp_path):
    regularizers, class_ids = CASES["all-three-weighted"]
    cluster = local_cluster(nodes=2, up=False, data_dir=corpus, executors_per_node=2, topics=TOPICS, iterations=3,
                            seed=3, regularizers=regularizers, class_ids=class_ids)
    assert cluster.up(detach=False, echo=lambda _line: None).training == "finished"
    phi = cluster.export(tmp_path / "phi.npz")
    ours = Theta.load(cluster.runtime.transform(tmp_path / "theta.npz"))
    result = subprocess.run([str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT), "transform", "--batches", str(corpus),
                             "--phi", str(phi), "--inner", "10", "--regularizers", json.dumps(regularizers),
                             "--class-ids", json.dumps(class_ids), "--npz", str(tmp_path / "bigartm.npz")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    theirs = Theta.load(tmp_path / "bigartm.npz")
    order = np.argsort(ours.items, kind="stable"), np.argsort(theirs.items, kind="stable")
    assert ours.items[order[0]].tolist() == theirs.items[order[1]].tolist()
    assert np.abs(ours.theta[order[0]] - theirs.theta[order[1]]).max() < 1e-4
    zeros = (ours.theta == 0).mean()
    assert zeros > 0.05, f"SmoothSparseTheta left only {zeros:.3f} of theta zero"


def test_online_training_with_regularizers_matches_fit_online(local_cluster, corpus, tmp_path):
    regularizers, _ = CASES["all-three-weighted"]
    cluster = local_cluster(nodes=1)
    init = initial_phi(cluster, corpus, tmp_path / "init")
    online = {"mode": "online", "update_every": 2, "tau0": 16.0, "kappa": 0.6}
    scores, _ = train(cluster, corpus, tmp_path / "ours", 1, 1, iterations=2, init_phi=init,
                      regularizers=regularizers, **online)
    result = subprocess.run([str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT), "fit-online", "--batches", str(corpus),
                             "--phi", str(init), "--passes", "2", "--update-every", "2", "--tau0", "16",
                             "--kappa", "0.6", "--regularizers", json.dumps(regularizers),
                             "--json", str(tmp_path / "bigartm.json")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    reference = json.loads((tmp_path / "bigartm.json").read_text())
    np.testing.assert_allclose(scores["perplexity"], reference["perplexity"], rtol=1e-3)
    np.testing.assert_allclose([u["perplexity"] for u in scores["online"]["updates"]],
                               [u["value"] for u in reference["updates"]], rtol=1e-3)
