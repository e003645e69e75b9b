"""The compose file of a plan: parsed back and checked, and validated by `docker compose config`."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from artm_compose import labels
from artm_compose.acl import write_users_conf
from artm_compose.runtimes.compose.compose_file import compose_path, render_compose
from artm_compose.config import ClusterConfig
from artm_compose.acl import TRAINING_USER
from artm_compose.containers import SERVICE_ADDRESSING, redis_maxmemory, secret_file
from artm_compose.data.summary import DataSummary
from artm_compose.docker_env import layout_network
from artm_compose.images.build import ImageTags
from artm_compose.plan import make_plan
from artm_compose.render import render_all
from artm_compose.state import StateDir

IMAGES = ImageTags(redis="artm-compose/redis:test", artm="artm-compose/artm:test")
SUBNET = ipaddress.ip_network("10.213.7.0/24")


def summary(data_dir: Path, batches: int = 16, vocab: int = 100) -> DataSummary:
    return DataSummary(batches_dir=data_dir, vocab_path=data_dir / "vocab.txt",
                       batch_names=tuple(f"{i:03d}.batch" for i in range(batches)),
                       batch_weights=np.linspace(1.0, 2.0, batches), token_weights=np.ones(vocab))


def rendered(tmp_path: Path, *, data: bool = False, **overrides) -> tuple[dict, str, StateDir]:
    """Render a plan into a state dir under ``tmp_path``; the parsed compose file, its text, the state dir."""
    config = ClusterConfig(name=overrides.pop("name", "demo"), state_dir=tmp_path / "state", **overrides)
    data_dir = tmp_path / "corpus"
    plan = make_plan(config, data=summary(data_dir) if data else None, addressing=SERVICE_ADDRESSING)
    state = StateDir.at(config.state_dir)
    render_all(plan, state)
    write_users_conf(plan.cluster, state)
    text = render_compose(plan, state, images=IMAGES, network=layout_network(SUBNET, len(plan.nodes)),
                          user="1000:1000")
    compose_path(state).write_text(text)
    return yaml.safe_load(text), text, state


def test_redis_nodes_get_fixed_addresses_outside_the_dynamic_range(tmp_path):
    compose, _, _ = rendered(tmp_path, nodes=4)
    network = compose["networks"]["cluster"]
    ipam = network["ipam"]["config"][0]
    assert ipam["subnet"] == str(SUBNET)
    dynamic = ipaddress.ip_network(ipam["ip_range"])
    addresses = [compose["services"][f"redis-{i}"]["networks"]["cluster"]["ipv4_address"] for i in range(4)]
    assert len(set(addresses)) == 4
    for address in addresses:
        ip = ipaddress.ip_address(address)
        assert ip in SUBNET and ip not in dynamic and str(ip) != ipam["gateway"]
    assert network["name"] == "artm-demo" and compose["name"] == "artm-demo"


def test_every_object_is_labelled_with_cluster_runtime_and_state_dir(tmp_path):
    compose, _, state = rendered(tmp_path, data=True, nodes=2, executors_per_node=2)
    expected = {labels.CLUSTER: "demo", labels.RUNTIME: "compose", labels.STATE_DIR: str(state.root)}
    objects = [*compose["services"].values(), *compose["networks"].values()]
    for obj in objects:
        assert expected.items() <= obj["labels"].items()
    roles = {name: service["labels"][labels.ROLE] for name, service in compose["services"].items()}
    assert roles == {"redis-0": "redis", "redis-1": "redis", "control": "control", "master": "master",
                     **{f"executor-{i}": "executor" for i in range(4)}}
    assert compose["services"]["redis-1"]["labels"][labels.SLOTS] == "8192-16383"
    executor = compose["services"]["executor-3"]["labels"]
    assert (executor[labels.NODE], executor[labels.EXECUTOR]) == ("1", "3")
    assert executor[labels.BATCHES].count(":") == 1 and executor[labels.TOKENS].endswith(":100")


def test_executors_get_their_own_id_and_ranges_on_the_command_line(tmp_path):
    compose, _, _ = rendered(tmp_path, data=True, nodes=2, executors_per_node=2, split="even")
    for executor_id in range(4):
        command = compose["services"][f"executor-{executor_id}"]["command"]
        assert command[0] == "artm-compose-executor"
        flags = dict(zip(command[1::2], command[2::2]))
        assert flags["--executor-id"] == str(executor_id)
        assert flags["--redis-ip"] == f"redis-{executor_id // 2}"
        assert (flags["--batch-begin-index"], flags["--batch-end-index"]) == (str(4 * executor_id),
                                                                              str(4 * executor_id + 4))
        assert (flags["--token-begin-index"], flags["--token-end-index"]) == (str(25 * executor_id),
                                                                              str(25 * executor_id + 25))
    master = compose["services"]["master"]
    assert master["command"][0] == "artm-compose-master"
    assert "/state/scores.json" in master["command"]
    state_mount = [v for v in master["volumes"] if v["target"] == "/state"]
    assert state_mount and state_mount[0]["read_only"] is False
    # The state directory holds every user's password: the master's mount hides all but its own.
    hidden = {v["target"]: v for v in master["volumes"] if v["source"] == "/dev/null"}
    assert set(hidden) == {"/state/redis.password", "/state/redis.reader.password"}
    assert all(v["read_only"] is True for v in hidden.values())


def test_executors_and_the_master_restart_on_failure_as_often_as_max_restarts(tmp_path):
    compose, _, _ = rendered(tmp_path, data=True, nodes=1, executors_per_node=2, max_restarts=2)
    assert {name: service["restart"] for name, service in compose["services"].items()
            if name.startswith(("executor", "master"))} == dict.fromkeys(["executor-0", "executor-1", "master"],
                                                                         "on-failure:2")
    assert compose["services"]["control"]["restart"] == "no"
    never, _, _ = rendered(tmp_path / "never", data=True, nodes=1, max_restarts=0)
    assert never["services"]["master"]["restart"] == never["services"]["executor-0"]["restart"] == "no"


def test_data_is_read_only_and_the_password_only_a_secret_file(tmp_path):
    compose, text, state = rendered(tmp_path, data=True, nodes=1, executors_per_node=2, dashboard=True)
    passwords = [path.read_text().strip() for path in (state.password_file, state.training_password_file,
                                                       state.reader_password_file)]
    assert not any(password in text for password in passwords)
    assert compose["secrets"] == {"redis_password": {"file": str(state.password_file)},
                                  "redis_training_password": {"file": str(state.training_password_file)},
                                  "redis_reader_password": {"file": str(state.reader_password_file)},
                                  "redis_users": {"file": str(state.users_conf)}}
    assert state.users_conf.stat().st_mode & 0o777 == 0o600
    for name, service in compose["services"].items():
        # The admin password stays with Redis and the control container (bootstrap; the jobs run in it log in
        # as the reader or the training user); the dashboard reads as the reader, the engine as the training user.
        expected = {"redis-0": ["redis_password", "redis_users"],
                    "control": ["redis_password", "redis_training_password", "redis_reader_password"],
                    "dashboard": ["redis_reader_password"]}.get(name, ["redis_training_password"])
        assert service["secrets"] == expected, name
        hidden = {v["target"] for v in service.get("volumes", []) if v["source"] == "/dev/null"}
        assert hidden == {"dashboard": {"/state/redis.password", "/state/redis.training.password"},
                          "master": {"/state/redis.password", "/state/redis.reader.password"}}.get(name, set()), name
        assert "PASSWORD" not in " ".join(service.get("environment", {})), name
        for volume in service.get("volumes", []):
            if volume["target"] == "/corpus":
                assert volume["read_only"] is True and volume["source"] == str((tmp_path / "corpus").resolve())
    executor = compose["services"]["executor-0"]["command"]
    assert executor[executor.index("--vocab-path") + 1] == "/corpus/vocab.txt"
    assert secret_file(TRAINING_USER) in executor and "artm-training" in executor


def test_every_container_runs_without_capabilities_on_a_read_only_root(tmp_path):
    compose, _, state = rendered(tmp_path, data=True, nodes=2, executors_per_node=1, dashboard=True)
    writable = {}
    for name, service in compose["services"].items():
        assert service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["read_only"] is True, name
        assert [entry.split(":")[0] for entry in service["tmpfs"]] == (
            ["/data"] if name.startswith("redis-") else ["/tmp"]), name
        writable.update({(name, v["target"]): v["source"] for v in service.get("volumes", []) if not v["read_only"]})
    # Beyond the tmpfs only the master's scores and the control container's scratch (exports) are written.
    assert writable == {("master", "/state"): str(state.root), ("control", "/scratch"): str(state.scratch_dir)}


def test_ports_are_published_only_on_request_and_only_on_loopback(tmp_path):
    compose, _, _ = rendered(tmp_path / "a", nodes=3)
    assert all("ports" not in s for s in compose["services"].values())
    compose, _, _ = rendered(tmp_path / "b", nodes=3, publish=True, base_port=7100)
    assert [compose["services"][f"redis-{i}"]["ports"] for i in range(3)] == [
        ["127.0.0.1:7100:7100"], ["127.0.0.1:7101:7100"], ["127.0.0.1:7102:7100"]]


def test_memory_limits_come_from_the_config(tmp_path):
    compose, _, _ = rendered(tmp_path, data=True, nodes=1, redis_memory="512m", executor_memory="1g",
                             master_memory="256m")
    services = compose["services"]
    limit = lambda name: services[name]["deploy"]["resources"]["limits"]["memory"]  # noqa: E731
    assert (limit("redis-0"), limit("executor-0"), limit("master")) == ("512m", "1g", "256m")
    assert services["redis-0"]["environment"]["REDIS_MAXMEMORY"] == str(int(512 * 2 ** 20 * 0.8))
    assert "deploy" not in rendered(tmp_path / "none", nodes=1)[0]["services"]["redis-0"]
    assert redis_maxmemory(None) is None and redis_maxmemory("1G") == int(2 ** 30 * 0.8)


@pytest.mark.containers
def test_dollar_signs_in_paths_survive_compose_interpolation(tmp_path):
    odd = tmp_path / "a$HOME b"
    _, text, state = rendered(odd, data=True, nodes=1)
    assert "$$HOME" in text
    config = _compose_config(compose_path(state))
    corpus = [v for v in config["services"]["executor-0"]["volumes"] if v["target"] == "/corpus"][0]
    # `config` prints a compose file again, so a literal "$" shows as "$$": not expanded to a home directory.
    assert corpus["source"] == str((odd / "corpus").resolve()).replace("$", "$$")


@pytest.mark.containers
def test_docker_compose_accepts_the_file(tmp_path):
    _, _, state = rendered(tmp_path, data=True, nodes=4, executors_per_node=2, publish=True, redis_memory="256m")
    config = _compose_config(compose_path(state))
    assert sorted(config["services"]) == sorted(["control", "master", *(f"redis-{i}" for i in range(4)),
                                                 *(f"executor-{i}" for i in range(8))])
    assert config["services"]["master"]["depends_on"]["control"]["condition"] == "service_healthy"
    assert config["services"]["executor-7"]["depends_on"]["control"]["condition"] == "service_healthy"
    # The control container bootstraps by itself (waiting for the nodes), so it starts with them.
    assert "depends_on" not in config["services"]["control"]


def _compose_config(path: Path) -> dict:
    """``docker compose config`` of ``path``, parsed (the Compose plugin validates the file)."""
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: run scripts/setup.sh (it installs the Compose plugin too)")
    result = subprocess.run(["docker", "compose", "-f", str(path), "config", "--format", "json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_initial_phi_is_mounted_and_named_by_its_container_path(tmp_path):
    init = tmp_path / "models" / "phi.npz"
    compose, _, _ = rendered(tmp_path, data=True, nodes=1, init_phi=init)
    for name in ("executor-0", "master"):
        service = compose["services"][name]
        assert service["command"][service["command"].index("--init-phi") + 1] == "/init/phi.npz"
        assert {"type": "bind", "source": str(init.parent), "target": "/init", "read_only": True} in service["volumes"]
