"""The BigARTM-like Python API on a trained local cluster: get_phi, score_tracker, and the BigARTM export
loaded and trained further by the real bigartm==0.9.2."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pandas
import pytest

from artm_compose.api import Cluster
from artm_compose.errors import ConfigError
from artm_compose.model_frames import ExportedModel, ScoreTracker, phi_frame
from support.ports import requires_redis
from support.engine import DPKG_STATUS, dpkg_corpus
from support.paths import REFERENCE_PYTHON, ROOT

TOPICS = 6
PASSES = 3


def _model(class_ids: list[str]) -> ExportedModel:
    phi = np.arange(12, dtype=np.float32).reshape(4, 3) / 100
    return ExportedModel(phi=phi, tokens=["a", "b", "a", "c"], class_ids=class_ids,
                         topics=["topic_0", "topic_1", "topic_2"], n_t=np.ones(3), pass_number=2)


def test_phi_frame_indexes_by_token_or_by_class_and_token():
    single = phi_frame(ExportedModel(phi=np.eye(3, dtype=np.float32), tokens=["a", "b", "c"],
                                     class_ids=["@default_class"] * 3, topics=["topic_0", "topic_1", "topic_2"],
                                     n_t=np.ones(3), pass_number=1))
    assert single.index.name == "token" and list(single.index) == ["a", "b", "c"]
    assert single.loc["b", "topic_1"] == 1.0

    several = phi_frame(_model(["@default_class", "@default_class", "@tag", "@tag"]))
    assert several.index.names == ["class_id", "token"]
    assert several.loc[("@tag", "a"), "topic_2"] == pytest.approx(0.08)
    assert several.loc[("@default_class", "a"), "topic_2"] == pytest.approx(0.02)
    tags = phi_frame(_model(["@default_class", "@default_class", "@tag", "@tag"]), topic_names="topic_1",
                     class_ids="@tag")
    assert list(tags.columns) == ["topic_1"] and list(tags.index) == [("@tag", "a"), ("@tag", "c")]
    with pytest.raises(ConfigError, match="topic_9"):
        phi_frame(_model(["@default_class"] * 4), topic_names=["topic_9"])


def test_score_tracker_gives_value_last_value_and_a_frame():
    tracker = ScoreTracker({"first_pass": 4, "perplexity": [9.0, 8.0], "seconds": [1.0, 2.0],
                            "sparsity_phi": [0.1, 0.3]})
    assert list(tracker) == ["perplexity", "sparsity_phi", "seconds"]
    assert tracker["perplexity"].value == [9.0, 8.0] and tracker["perplexity"].last_value == 8.0
    assert tracker["sparsity_phi"].passes == [4, 5]
    frame = tracker.frame()
    assert list(frame.index) == [4, 5] and frame.loc[5, "sparsity_phi"] == 0.3
    with pytest.raises(KeyError, match="kernel_size"):
        tracker["kernel_size"]
    assert len(ScoreTracker({})) == 0


@pytest.mark.integration
@pytest.mark.reference
@requires_redis
@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="no .venv-ref (scripts/setup_reference.sh)")
@pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")
def test_api_and_bigartm_export_continue_training_in_the_real_bigartm(local_cluster, tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    cluster = local_cluster(nodes=2, up=False, name=f"api{os.getpid()}", data_dir=corpus, executors_per_node=1,
                            topics=TOPICS, iterations=PASSES, seed=5, inner_iterations=10)
    assert cluster.up(detach=False, echo=lambda _line: None).training == "finished"

    phi = cluster.get_phi()
    exported = ExportedModel.load(cluster.export(tmp_path / "model.npz"))
    vocabulary = (corpus / "vocab.txt").read_text().split()
    assert isinstance(phi, pandas.DataFrame) and phi.index.name == "token"
    assert list(phi.index) == vocabulary and list(phi.columns) == [f"topic_{t}" for t in range(TOPICS)]
    np.testing.assert_array_equal(phi.values, exported.phi)
    np.testing.assert_allclose(phi.sum(axis=0), 1.0, rtol=1e-4)
    assert list(cluster.get_phi(topic_names="topic_2").columns) == ["topic_2"]

    tracker = cluster.score_tracker
    scores = json.loads(cluster.state.scores.read_text())
    assert tracker["perplexity"].value == scores["perplexity"] and len(tracker["perplexity"].value) == PASSES
    assert tracker["perplexity"].last_value < tracker["perplexity"].value[0]
    assert list(tracker.frame().index) == [1, 2, 3]

    model_dir = cluster.export(tmp_path / "bigartm-model", format="bigartm")
    assert sorted(p.name for p in model_dir.iterdir()) == ["n_wt.bin", "p_wt.bin", "parameters.bin",
                                                          "parameters.json", "score_tracker.bin"]
    with pytest.raises(ConfigError, match="already exists"):
        cluster.export(model_dir, format="bigartm")

    result = subprocess.run([str(REFERENCE_PYTHON), str(ROOT / "scripts" / "bigartm_continue.py"), "--model",
                             str(model_dir), "--batches", str(corpus), "--passes", "1", "--json",
                             str(tmp_path / "continued.json"), "--npz", str(tmp_path / "continued.npz")],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)  # BigARTM logs to its cwd
    assert result.returncode == 0, result.stderr
    theirs = json.loads((tmp_path / "continued.json").read_text())
    arrays = np.load(tmp_path / "continued.npz")
    assert arrays["tokens"].tolist() == vocabulary and arrays["topics"].tolist() == list(phi.columns)
    np.testing.assert_array_equal(arrays["loaded_phi"], exported.phi)  # every float32 bit arrives
    assert theirs["topic_names"] == list(phi.columns) and theirs["num_document_passes"] == 10
    assert theirs["class_ids"] == {"@default_class": 1.0} and theirs["seed"] == 5

    # The same next pass on the cluster: BigARTM's continuation and ours agree.
    again = Cluster(cluster.config.replace(continue_fitting=True, iterations=1))
    assert again.up(detach=False, echo=lambda _line: None).training == "finished"
    ours = json.loads(cluster.state.scores.read_text())
    assert ours["first_pass"] == PASSES + 1
    np.testing.assert_allclose(ours["perplexity"], theirs["perplexity"], rtol=1e-3)
    assert np.abs(again.get_phi().values - arrays["phi"]).max() < 1e-4
