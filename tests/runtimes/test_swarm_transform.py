"""``transform`` on the Swarm runtime: a one-shot job on the manager computes theta, for the training data
and for other batches, equal to the E-step on this machine.

Marked ``swarm``; a real single-node Docker Swarm (initialised for the module if needed), the real
engine in the artm image, a real corpus (this machine's package descriptions).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import numpy as np
import pytest

from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.data.batches import list_batches
from artm_compose.docker_access import docker_client
from artm_compose.engine.transform import Theta
from artm_compose.images.build import build_images
from artm_compose.model_frames import ExportedModel
from support.engine import DPKG_STATUS, dpkg_corpus, theta_here
from support.swarm_nodes import swarm_leftovers, swarm_mode

pytestmark = [pytest.mark.swarm,
              pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")]
QUIET = lambda _message: None  # noqa: E731


def test_transform_in_a_swarm_equals_the_e_step_here(tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    other = tmp_path / "other"
    other.mkdir()
    for path in list_batches(corpus)[:2]:
        shutil.copy(path, other / path.name)
    with swarm_mode(docker_client()):
        build_images(echo=QUIET)
        cluster = Cluster(ClusterConfig(name=f"t{secrets.token_hex(4)}", runtime="swarm", nodes=2, executors_per_node=1,
                                        state_dir=tmp_path / "state", data_dir=corpus, topics=5, iterations=2, seed=6))
        try:
            assert cluster.up(detach=False, echo=QUIET).training == "finished"
            phi = ExportedModel.load(cluster.export(tmp_path / "phi.npz")).phi
            training = Theta.load(cluster.runtime.transform(tmp_path / "out" / "theta.npz"))
            frame = cluster.transform(other)
        finally:
            cluster.down(echo=QUIET)
        assert swarm_leftovers(docker_client(), cluster.config.name) == []
    expected, items = theta_here(corpus, corpus / "vocab.txt", phi)
    assert training.items.tolist() == items.tolist()
    np.testing.assert_allclose(training.theta, expected, atol=1e-6)
    expected_other, other_items = theta_here(other, corpus / "vocab.txt", phi)
    assert frame.index.tolist() == other_items.tolist()
    np.testing.assert_allclose(frame.to_numpy(), expected_other, atol=1e-6)
