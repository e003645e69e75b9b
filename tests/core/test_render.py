"""Rendering: parse what every runtime reads (cluster.json, the password) and check it; fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artm_compose.config import ClusterConfig
from artm_compose.data.summary import DataSummary
from artm_compose.plan import make_plan
from artm_compose.render import plan_fingerprint, redis_fingerprint, render_all
from artm_compose.runtimes.local.runtime import LOOPBACK
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import StateDir, read_password


def summary(batches: int = 12, vocab: int = 50) -> DataSummary:
    rng = np.random.default_rng(1)
    return DataSummary(batches_dir=Path("/data/batches"), vocab_path=Path("/data/batches/vocab.txt"),
                       batch_names=tuple(f"{i:06d}.batch" for i in range(batches)),
                       batch_weights=rng.integers(50, 500, batches).astype(float),
                       token_weights=rng.integers(1, 100, vocab).astype(float))


@pytest.fixture
def rendered(tmp_path):
    config = ClusterConfig(name="demo", runtime="local", nodes=3, executors_per_node=2, base_port=7100,
                           state_dir=tmp_path / "state", node_timeout_ms=3000, data_dir=Path("/data/batches"))
    plan = make_plan(config, summary(), addressing=LOOPBACK)
    state = StateDir.at(config.state_dir)
    written = render_all(plan, state)
    return plan, state, written


def test_render_all_writes_cluster_json_and_the_passwords_only(rendered):
    _, state, written = rendered
    assert written == [state.cluster_json]
    assert sorted(p.name for p in state.root.rglob("*") if p.is_file()) == ["cluster.json", "redis.password",
                                                                         "redis.reader.password",
                                                                         "redis.training.password"]


def test_password_file_is_private_and_reused(rendered):
    plan, state, _ = rendered
    assert state.password_file.stat().st_mode & 0o777 == 0o600
    password = read_password(state.password_file)
    assert len(password) >= 32
    render_all(plan, state)
    assert read_password(state.password_file) == password


def test_cluster_json_describes_nodes_executors_master_and_data(rendered):
    plan, state, written = rendered
    assert state.cluster_json in written
    description = json.loads(state.cluster_json.read_text())
    assert description["cluster"] == "demo" and description["runtime"] == "local"
    assert description["status"] == "rendered"
    assert description["id"].startswith("demo-") and description["fingerprint"] == plan_fingerprint(plan)
    nodes = description["nodes"]
    assert [(n["host"], n["port"], n["bus_port"]) for n in nodes] == [("127.0.0.1", 7100 + i, 17100 + i)
                                                                      for i in range(3)]
    covered = [slot for n in nodes for slot in range(n["slots"][0], n["slots"][1] + 1)]
    assert covered == list(range(SLOT_COUNT))
    executors = description["executors"]
    assert [e["id"] for e in executors] == list(range(6))
    assert [e["node"] for e in executors] == [0, 0, 1, 1, 2, 2]
    assert [tuple(e["batch_range"]) for e in executors] == [e.batch_range for e in plan.executors]
    assert [tuple(e["token_range"]) for e in executors] == [e.token_range for e in plan.executors]
    assert executors[3]["redis"] == "127.0.0.1:7101"
    assert description["master"]["redis"] == "127.0.0.1:7100" and description["master"]["enabled"]
    assert description["data"]["batches_dir"] == "/data/batches" and description["data"]["batches"] == 12
    assert description["files"]["password"] == str(state.password_file)
    assert ClusterConfig.from_mapping(description["config"]) == plan.config


def test_fingerprints_separate_the_redis_cluster_from_the_training(tmp_path):
    base = ClusterConfig(runtime="local", nodes=2, state_dir=tmp_path)
    plan = make_plan(base, addressing=LOOPBACK)
    assert plan_fingerprint(plan) == plan_fingerprint(make_plan(base, addressing=LOOPBACK))
    trained = make_plan(base.replace(data_dir=Path("/data/batches"), topics=7), summary(), addressing=LOOPBACK)
    assert redis_fingerprint(trained) == redis_fingerprint(plan)
    assert plan_fingerprint(trained) != plan_fingerprint(plan)
    assert redis_fingerprint(make_plan(base.replace(nodes=3), addressing=LOOPBACK)) != redis_fingerprint(plan)
    assert redis_fingerprint(make_plan(base.replace(base_port=7200), addressing=LOOPBACK)) != redis_fingerprint(plan)
