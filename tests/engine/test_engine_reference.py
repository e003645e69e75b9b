"""Our engine gives BigARTM 0.9.2's answer: same initial phi, ten offline PLSA passes.

Runs the real library in ``.venv-ref`` (scripts/setup_reference.sh) through
``scripts/bigartm_reference.py fit``, and our master and executors on a real local Redis Cluster.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from artm_compose.engine.export import export_model
from support.ports import requires_redis
from support.paths import REFERENCE_PYTHON, REFERENCE_SCRIPT
from support.engine import DPKG_STATUS, client_of, dpkg_corpus, run_training

TOPICS = 10
PASSES = 10

pytestmark = [pytest.mark.reference, pytest.mark.integration, requires_redis,
              pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="no .venv-ref (scripts/setup_reference.sh)"),
              pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")]


def bigartm_fit(batches: Path, init_phi: Path, out: Path, processors: int = 1) -> tuple[dict, dict]:
    result = subprocess.run(
        [str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT), "fit", "--batches", str(batches),
         "--topics", str(TOPICS), "--passes", str(PASSES), "--inner", "10", "--processors", str(processors),
         "--init-phi", str(init_phi), "--json", str(out / "bigartm.json"), "--npz", str(out / "bigartm.npz")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "bigartm.json").read_text()), dict(np.load(out / "bigartm.npz"))


@pytest.mark.parametrize("nodes,per_node", [(1, 1), (2, 2)])
def test_perplexity_and_phi_match_bigartm_from_the_same_initial_phi(local_cluster, tmp_path, nodes, per_node):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    cluster = local_cluster(nodes=nodes)
    client = client_of(cluster)
    common = {"topics": TOPICS, "seed": 11, "heartbeat_timeout": 10.0}
    _, codes, training = run_training(cluster, corpus, tmp_path / "init", nodes, per_node, 240, iterations=0, **common)
    assert set(codes.values()) == {0}, training.log("master")
    init_phi = export_model(client, "test", corpus / "vocab.txt", tmp_path / "init.npz")

    reference, reference_npz = bigartm_fit(corpus, init_phi, tmp_path)
    np.testing.assert_array_equal(reference_npz["init_phi"], np.load(init_phi)["phi"])

    scores, codes, training = run_training(cluster, corpus, tmp_path / "ours", nodes, per_node, 240,
                                           iterations=PASSES, init_phi=init_phi, **common)
    assert set(codes.values()) == {0}, training.log("master")
    ours = np.array(scores["perplexity"])
    theirs = np.array(reference["perplexity"])
    assert scores["token_weight"] == pytest.approx(reference["token_weight"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
    phi = np.load(export_model(client, "test", corpus / "vocab.txt", tmp_path / "final.npz"))["phi"]
    assert np.abs(phi - reference_npz["phi"]).max() < 1e-4
    assert theirs[-1] < 0.5 * theirs[0]  # a real fit, not two flat lines
