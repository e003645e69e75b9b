"""The local runtime's own files: redis.conf per node and addresses.txt, parsed as Redis and clients read them."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest

from artm_compose.acl import READER_USER, TRAINING_USER, reader_rules, training_rules
from artm_compose.config import ClusterConfig
from artm_compose.data.summary import DataSummary
from artm_compose.plan import make_plan
from artm_compose.redis_client import read_addresses
from artm_compose.runtimes.local.runtime import LOOPBACK, LocalRuntime
from artm_compose.state import StateDir, read_password


def parse_conf(text: str) -> dict[str, str]:
    """redis.conf as Redis reads it: one directive per line, arguments split like a shell would; a user's
    rules under ``user NAME``."""
    settings = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, *values = shlex.split(line)
            if key == "user":
                key, values = f"user {values[0]}", values[1:]
            assert key not in settings, f"{key} set twice"
            settings[key] = " ".join(values)
    return settings


@pytest.fixture
def rendered(tmp_path):
    config = ClusterConfig(name="demo", runtime="local", nodes=3, executors_per_node=2, base_port=7100,
                           state_dir=tmp_path / "state", node_timeout_ms=3000, data_dir=Path("/data/batches"))
    data = DataSummary(batches_dir=Path("/data/batches"), vocab_path=Path("/data/batches/vocab.txt"),
                       batch_names=tuple(f"{i:06d}.batch" for i in range(12)), batch_weights=np.ones(12),
                       token_weights=np.ones(50))
    plan = make_plan(config, data, addressing=LOOPBACK)
    state = StateDir.at(config.state_dir)
    return plan, state, LocalRuntime(state).render(plan)


def test_render_writes_redis_conf_addresses_and_cluster_json_only(rendered):
    plan, state, written = rendered
    assert [p.relative_to(state.root).as_posix() for p in written] == [
        "redis/0/redis.conf", "redis/1/redis.conf", "redis/2/redis.conf", "addresses.txt", "cluster.json"]
    files = sorted(p.relative_to(state.root).as_posix() for p in state.root.rglob("*") if p.is_file())
    assert files == sorted([*(p.relative_to(state.root).as_posix() for p in written), "redis.password",
                            "redis.reader.password", "redis.training.password"])


def test_redis_conf_per_node_has_cluster_settings_password_and_no_persistence(rendered):
    plan, state, _ = rendered
    password = read_password(state.password_file)
    for node in plan.nodes:
        path = state.redis_conf(node.index)
        assert path.stat().st_mode & 0o777 == 0o600  # it holds the password
        conf = parse_conf(path.read_text())
        assert conf == {
            "bind": "127.0.0.1", "port": str(node.port), "protected-mode": "yes", "requirepass": password,
            "masterauth": password,  # what a replica authenticates to its primary with
            "dir": str(state.redis_dir(node.index)), "logfile": str(state.log(f"redis-{node.index}")),
            "daemonize": "no", "cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": "3000", "maxmemory-policy": "noeviction", "save": "", "appendonly": "no",
            **{f"user {name}": " ".join(rules) for name, rules in (
                (TRAINING_USER, training_rules("demo", read_password(state.training_password_file))),
                (READER_USER, reader_rules("demo", read_password(state.reader_password_file))))},
        }
    assert [n.port for n in plan.nodes] == [7100, 7101, 7102]


def test_the_training_user_gets_only_the_clusters_keys_and_the_engines_commands(rendered):
    _, state, _ = rendered
    training_password = read_password(state.training_password_file)
    assert state.training_password_file.stat().st_mode & 0o777 == 0o600
    assert training_password != read_password(state.password_file)
    rules = parse_conf(state.redis_conf(0).read_text())["user artm-training"].split()
    assert "on" in rules
    assert training_password not in " ".join(rules)  # only its hash
    assert [r for r in rules if r.startswith("~")] == ["~ac:demo:*"]
    assert rules.index("-@all") < min(rules.index(r) for r in rules if r.startswith("+"))
    granted = {r[1:] for r in rules if r.startswith("+")}
    assert not granted & {"flushall", "flushdb", "config", "debug", "keys", "scan", "acl", "shutdown", "eval"}


def test_the_reader_may_only_read_the_clusters_keys(rendered):
    _, state, _ = rendered
    reader_password = read_password(state.reader_password_file)
    assert state.reader_password_file.stat().st_mode & 0o777 == 0o600
    assert reader_password not in {read_password(state.password_file), read_password(state.training_password_file)}
    rules = parse_conf(state.redis_conf(0).read_text())["user artm-reader"].split()
    assert "on" in rules and reader_password not in " ".join(rules)
    assert [r for r in rules if "~" in r] == ["%R~ac:demo:*"]  # read access only, whatever the command
    assert rules.index("-@all") < min(rules.index(r) for r in rules if r.startswith("+"))
    granted = {r[1:] for r in rules if r.startswith("+")}
    assert not granted & {"set", "del", "unlink", "rpush", "expire", "blpop", "flushall", "config", "keys", "scan"}


def test_addresses_file_lists_every_node_as_host_port(rendered):
    _, state, _ = rendered
    assert read_addresses(state.addresses) == [("127.0.0.1", 7100), ("127.0.0.1", 7101), ("127.0.0.1", 7102)]


def test_empty_redis_dir_keeps_only_redis_conf(rendered):
    _, state, _ = rendered
    directory = state.redis_dir(0)
    (directory / "nodes.conf").write_text("stale")
    (directory / "dump.rdb").write_text("stale")
    (directory / "appendonlydir").mkdir()
    state.empty_redis_dir(0)
    assert [p.name for p in directory.iterdir()] == ["redis.conf"]
