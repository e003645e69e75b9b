"""Swarm data plan: which batch files each Swarm node needs, and the local check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.data.summary import DataSummary
from artm_compose.errors import ConfigError
from artm_compose.plan import make_plan
from artm_compose.runtimes.swarm.assign import SwarmNode, assign
from artm_compose.runtimes.swarm.data_plan import check_local, data_plan


def summary(directory: Path, batches: int) -> DataSummary:
    return DataSummary(batches_dir=directory, vocab_path=directory / "vocab.txt",
                       batch_names=tuple(f"{i:05d}.batch" for i in range(batches)),
                       batch_weights=np.arange(1, batches + 1, dtype=float),
                       token_weights=np.ones(50))


def test_each_node_needs_exactly_its_executors_batches(tmp_path):
    config = ClusterConfig(name="demo", runtime="swarm", nodes=4, executors_per_node=2)
    plan = make_plan(config, summary(tmp_path, 20), addressing=SERVICE_ADDRESSING)
    swarm = [SwarmNode("id-a", "a", labels={"artm.capacity": "3"}), SwarmNode("id-b", "b")]
    placed = data_plan(plan, assign("demo", 4, swarm).holdings)
    a, b = placed.nodes
    assert (a.vnodes, a.executors, b.vnodes, b.executors) == ((0, 2), (0, 1, 2, 3, 4, 5), (3, 3), (6, 7))
    for node in placed.nodes:
        wanted = {plan.data.batch_names[i] for e in plan.executors if e.id in node.executors
                  for i in range(*e.batch_range)}
        assert set(node.batches) == wanted
    assert set(a.batches).isdisjoint(b.batches)
    assert sorted(a.batches + b.batches) == list(plan.data.batch_names)
    text = placed.describe()
    assert f"a: virtual nodes 0-2, executors 0-5: {len(a.batches)} batch file(s) 00000.batch .. " in text
    assert str(tmp_path) in text


def test_local_check_names_missing_files(tmp_path):
    plan = make_plan(ClusterConfig(name="demo", runtime="swarm", nodes=2), summary(tmp_path, 4),
                     addressing=SERVICE_ADDRESSING)
    placed = data_plan(plan, assign("demo", 2, [SwarmNode("id-a", "a")]).holdings)
    for name in plan.data.batch_names[:3]:
        (tmp_path / name).write_bytes(b"x")
    assert check_local(placed) == [f"{tmp_path / '00003.batch'} is missing", f"{tmp_path / 'vocab.txt'} is missing"]
    (tmp_path / "00003.batch").write_bytes(b"x")
    (tmp_path / "vocab.txt").write_text("a\n")
    assert check_local(placed) == []


def test_no_data_is_refused():
    plan = make_plan(ClusterConfig(name="demo", runtime="swarm", nodes=2), addressing=SERVICE_ADDRESSING)
    with pytest.raises(ConfigError, match="no data directory"):
        data_plan(plan, assign("demo", 2, [SwarmNode("id-a", "a")]).holdings)


def test_file_check_names_missing_and_unreadable_files(tmp_path, capsys):
    from artm_compose.runtimes.swarm import check_files

    present = tmp_path / "a.batch"
    present.write_bytes(b"x")
    folder = tmp_path / "folder.batch"
    folder.mkdir()
    assert check_files.problems([present, tmp_path / "gone.batch", folder]) == [
        f"{tmp_path / 'gone.batch'} is missing", f"{folder} is missing"]
    assert check_files.main([str(present), str(tmp_path / "gone.batch")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 2 and report["problems"] == [f"{tmp_path / 'gone.batch'} is missing"]


def test_file_check_reports_an_unreadable_folder_instead_of_failing(tmp_path):
    """As a user who may not enter the folder (nobody, when the tests run as root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.batch").write_bytes(b"x")
    locked.chmod(0o700)
    tmp_path.chmod(0o755)
    as_other = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] if os.geteuid() == 0 else []
    if not as_other:
        locked.chmod(0)
    try:
        result = subprocess.run([*as_other, sys.executable, "-m", "artm_compose.runtimes.swarm.check_files",
                                 str(locked / "a.batch")], capture_output=True, text=True, timeout=60, check=False)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["problems"] == [f"{locked / 'a.batch'} is not readable (Permission denied)"]
