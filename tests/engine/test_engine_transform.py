"""Theta from the committed model (``artm-compose transform``, ``Cluster.transform``/``get_theta``): the
shares, the files, the DataFrame, and the real BigARTM 0.9.2's ``ARTM.transform`` from the same phi."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas
import pytest

from artm_compose.data.batches import list_batches
from artm_compose.engine.transform import Theta, check_theta_path, in_processes, transform_shares, write_theta
from artm_compose.errors import ConfigError, DataError
from artm_compose.in_cluster import parse_job
from artm_compose.model_frames import theta_frame
from support.engine import DPKG_STATUS, dpkg_corpus
from support.paths import REFERENCE_PYTHON, REFERENCE_SCRIPT
from support.ports import requires_redis

TOPICS = 8


def test_shares_follow_training_for_its_data_and_split_evenly_otherwise():
    training = [(0, 3), (3, 3), (3, 7)]
    assert transform_shares(7, training, same_data=True) == [(0, 3), (3, 7)]
    assert transform_shares(5, training, same_data=False) == [(0, 2), (2, 4), (4, 5)]
    assert transform_shares(1, training, same_data=False) == [(0, 1)]
    # The training data changed size since training: even shares, never ranges past the end.
    assert transform_shares(4, training, same_data=True) == [(0, 2), (2, 4)]


def test_theta_files_round_trip_and_csv_reads_with_pandas(tmp_path):
    theta = Theta(theta=np.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]], dtype=np.float32) / 1.0,
                  items=np.array([7, 3, 11]), titles=["a", "", "c, d"], topics=["topic_0", "topic_1"])
    loaded = Theta.load(write_theta(theta, tmp_path / "t.npz"))
    np.testing.assert_array_equal(loaded.theta, theta.theta)
    assert loaded.theta.dtype == np.float32 and loaded.items.tolist() == [7, 3, 11]
    assert loaded.titles == ["a", "", "c, d"] and loaded.topics == ["topic_0", "topic_1"]
    frame = pandas.read_csv(write_theta(theta, tmp_path / "t.csv"), index_col=0, keep_default_na=False)
    assert list(frame.index) == [7, 3, 11] and list(frame.columns) == ["title", "topic_0", "topic_1"]
    np.testing.assert_array_equal(frame[["topic_0", "topic_1"]].to_numpy(np.float32), theta.theta)
    assert frame.loc[11, "title"] == "c, d"
    with pytest.raises(ConfigError, match="theta.txt"):
        check_theta_path(tmp_path / "theta.txt")


def test_theta_frame_is_documents_by_topics_indexed_by_id_or_title():
    frame = theta_frame(np.eye(2, 3, dtype=np.float32), np.array([5, 9]), ["x", "y"], ["t0", "t1", "t2"])
    assert frame.index.name == "item_id" and list(frame.index) == [5, 9]
    assert list(frame.columns) == ["t0", "t1", "t2"] and frame.loc[9, "t1"] == 1.0
    by_title = theta_frame(np.eye(2, 3, dtype=np.float32), np.array([5, 9]), ["x", "y"], ["t0", "t1", "t2"],
                           topic_names="t1", naming="title")
    assert list(by_title.index) == ["x", "y"] and list(by_title.columns) == ["t1"]
    with pytest.raises(ConfigError, match="naming='name'"):
        theta_frame(np.eye(2, 3), np.array([5, 9]), ["x", "y"], ["t0", "t1", "t2"], naming="name")
    with pytest.raises(ConfigError, match="t7"):
        theta_frame(np.eye(2, 3), np.array([5, 9]), ["x", "y"], ["t0", "t1", "t2"], topic_names=["t7"])


def _share_theta(share):
    if share == (2, 3):
        raise DataError("batch 000002.batch is corrupt")
    return Theta(theta=np.full((1, 1), share[0], dtype=np.float32), items=np.array([share[0]]), titles=[""],
                 topics=["topic_0"])


def test_shares_in_processes_come_back_in_order_and_errors_name_the_share():
    parts = in_processes(_share_theta, [(0, 1), (1, 2), (3, 4)], parallel=2)
    assert [p.items.tolist() for p in parts] == [[0], [1], [3]]
    with pytest.raises(DataError, match=r"batches \[2, 3\): batch 000002.batch is corrupt"):
        in_processes(_share_theta, [(0, 1), (2, 3)], parallel=2)


def test_transform_job_arguments_are_checked():
    args = parse_job(["transform", "--state-dir", "s", "--password-file", "p", "--vocab-path", "v", "--out", "o.npz",
                      "--data-path", "d", "--shares", "0:3,3:5", "--parallel", "2"])
    assert args.shares == [(0, 3), (3, 5)] and args.inner == 10 and args.parallel == 2
    with pytest.raises(SystemExit):
        parse_job(["transform", "--state-dir", "s", "--password-file", "p", "--vocab-path", "v", "--out", "o.npz",
                   "--data-path", "d", "--shares", "0-3"])


def bigartm_transform(batches: Path, vocab: Path, phi: Path, out: Path) -> Theta:
    result = subprocess.run([str(REFERENCE_PYTHON), str(REFERENCE_SCRIPT), "transform", "--batches", str(batches),
                             "--vocab", str(vocab), "--phi", str(phi), "--inner", "10", "--npz", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return Theta.load(out)


def by_item(theta: Theta) -> np.ndarray:
    return theta.theta[np.argsort(theta.items, kind="stable")]


@pytest.mark.integration
@pytest.mark.reference
@requires_redis
@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="no .venv-ref (scripts/setup_reference.sh)")
@pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")
def test_transform_on_a_local_cluster_matches_bigartm_transform(local_cluster, tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    cluster = local_cluster(nodes=2, up=False, name=f"theta{os.getpid()}", data_dir=corpus, executors_per_node=2,
                            topics=TOPICS, iterations=3, seed=3, inner_iterations=10)
    assert cluster.up(detach=False, echo=lambda _line: None).training == "finished"
    phi = cluster.export(tmp_path / "phi.npz")

    # The CLI on the training data (the four executors' shares), as npz and as CSV.
    for name in ("theta.npz", "theta.csv"):
        done = subprocess.run([str(Path(sys.executable).parent / "artm-compose"), "transform", "--state-dir",
                               str(cluster.state.root), "--out", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    ours = Theta.load(tmp_path / "theta.npz")
    theirs = bigartm_transform(corpus, corpus / "vocab.txt", phi, tmp_path / "bigartm.npz")

    assert ours.theta.dtype == np.float32 and ours.theta.shape == (len(theirs.items), TOPICS)
    assert sorted(ours.items.tolist()) == sorted(theirs.items.tolist())
    assert len(set(ours.items.tolist())) == len(ours.items)
    assert np.abs(by_item(ours) - by_item(theirs)).max() < 1e-4
    np.testing.assert_allclose(ours.theta.sum(axis=1), 1.0, atol=1e-5)
    assert (ours.theta.max(axis=1) > 2.0 / TOPICS).mean() > 0.5  # real topics, not uniform rows
    titles = dict(zip(theirs.items.tolist(), theirs.titles))
    assert [titles[i] for i in ours.items.tolist()] == ours.titles and any(ours.titles)
    csv = pandas.read_csv(tmp_path / "theta.csv", index_col=0, keep_default_na=False)
    assert list(csv.index) == ours.items.tolist()
    np.testing.assert_array_equal(csv[ours.topics].to_numpy(np.float32), ours.theta)

    # Other batches (--data): two of the corpus's batches in a directory of their own.
    other = tmp_path / "other"
    other.mkdir()
    for path in list_batches(corpus)[1:3]:
        shutil.copy(path, other / path.name)
    frame = cluster.transform(other)
    subset = bigartm_transform(other, corpus / "vocab.txt", phi, tmp_path / "bigartm-other.npz")
    assert list(frame.columns) == ours.topics and frame.index.name == "item_id"
    assert sorted(frame.index) == sorted(subset.items.tolist())
    assert np.abs(frame.sort_index().to_numpy() - by_item(subset)).max() < 1e-4
    # The same documents get the same theta whatever the split.
    full = cluster.get_theta()
    np.testing.assert_array_equal(full.loc[frame.index].to_numpy(), frame.to_numpy())
    np.testing.assert_array_equal(full.to_numpy(), ours.theta)
