"""``transform`` on the Compose runtime: theta computed in the cluster's control container, for the
training data (mounted there) and for other batches (copied in), equal to the E-step on this machine.

Marked ``containers``; real engine in the artm image, real corpus (this machine's package descriptions).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.data.batches import list_batches
from artm_compose.engine.transform import Theta
from artm_compose.images.build import build_images
from artm_compose.model_frames import ExportedModel
from artm_compose.runtimes.compose.runtime import ComposeRuntime
from support.compose import QUIET, leftovers
from support.engine import dpkg_corpus, theta_here

pytestmark = pytest.mark.containers


def test_transform_in_containers_equals_the_e_step_here(tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    build_images(echo=QUIET)
    cluster = Cluster(ClusterConfig(name=f"theta{os.getpid()}", runtime="compose", state_dir=tmp_path / "state",
                                    data_dir=corpus, nodes=1, executors_per_node=2, topics=6, iterations=2, seed=4))
    try:
        assert cluster.up(detach=False, echo=QUIET).training == "finished"
        phi = ExportedModel.load(cluster.export(tmp_path / "phi.npz")).phi
        done = subprocess.run([str(Path(sys.executable).parent / "artm-compose"), "transform", "--state-dir",
                               str(cluster.state.root), "--out", str(tmp_path / "theta.csv")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "theta.csv").stat().st_uid == os.getuid()
        other = tmp_path / "other"
        other.mkdir()
        for path in list_batches(corpus)[-2:]:
            shutil.copy(path, other / path.name)
        written = cluster.runtime.transform(tmp_path / "other.npz", data=other)
        in_cluster = Theta.load(written)
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []

    import pandas

    frame = pandas.read_csv(tmp_path / "theta.csv", index_col=0, keep_default_na=False)
    expected, items = theta_here(corpus, corpus / "vocab.txt", phi)
    assert list(frame.index) == items.tolist()
    np.testing.assert_allclose(frame.drop(columns="title").to_numpy(np.float32), expected, atol=1e-6)
    expected_other, other_items = theta_here(other, corpus / "vocab.txt", phi)
    assert in_cluster.items.tolist() == other_items.tolist()
    np.testing.assert_allclose(in_cluster.theta, expected_other, atol=1e-6)
    assert (expected.max(axis=1) > 2.0 / 6).mean() > 0.5  # a trained model, not uniform rows
