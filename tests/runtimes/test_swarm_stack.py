"""The Swarm stack over a plan: placement by group labels, dnsrr Redis, secrets, and `docker stack config`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from artm_compose import labels
from artm_compose.acl import ADMIN_USER, user_passwords, write_users_conf
from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.data.summary import DataSummary
from artm_compose.images.build import ImageTags
from artm_compose.plan import make_plan
from artm_compose.state import StateDir
from artm_compose.runtimes.swarm.assign import SwarmNode, assign
from artm_compose.runtimes.swarm.stack import StackFiles, nodes_document, render_stack

IMAGES = ImageTags(redis="artm-compose/redis:test", artm="artm-compose/artm:test")
MANAGER = "managernodeid0123456789"
PASSWORD = "0123456789abcdef0123456789abcdef"


def data_summary(directory: Path, batches: int = 16, vocab: int = 40) -> DataSummary:
    return DataSummary(batches_dir=directory, vocab_path=directory / "vocab.txt",
                       batch_names=tuple(f"{i:05d}.batch" for i in range(batches)),
                       batch_weights=np.arange(1, batches + 1, dtype=float), token_weights=np.ones(vocab))


@pytest.fixture
def setup(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    state = StateDir.at(tmp_path / "state $HOME")  # a "$" must reach Docker literally
    state.create()
    files = StackFiles.of(state)
    files.password.write_text(PASSWORD + "\n")
    config = ClusterConfig(name="demo", runtime="swarm", nodes=4, executors_per_node=2, state_dir=state.root,
                           executor_memory="256m")
    plan = make_plan(config, data_summary(data_dir), addressing=SERVICE_ADDRESSING)
    files.nodes.write_text(nodes_document(plan))
    write_users_conf(plan.cluster, state)
    swarm = [SwarmNode("id-small", "small", labels={"artm.capacity": "1"}),
             SwarmNode("id-big", "big", labels={"artm.capacity": "3"})]
    holdings = assign("demo", 4, swarm).holdings
    groups = {v: h.group for h in holdings for v in h.vnodes}
    return plan, state, files, groups


def stack_config(path: Path) -> dict:
    """What `docker stack config` makes of the file (it validates against the compose schema)."""
    result = subprocess.run(["docker", "stack", "config", "-c", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, f"docker stack config refused {path}:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


needs_docker_cli = pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")


@needs_docker_cli
def test_docker_stack_config_accepts_the_stack_and_places_by_group(setup):
    plan, state, files, groups = setup
    assert groups == {0: 0, 1: 0, 2: 0, 3: 1}  # "big" (capacity 3) holds 0-2, "small" holds 3
    text = render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER, passwords=user_passwords(state))
    files.stack.write_text(text)
    stack = stack_config(files.stack)
    services = stack["services"]
    assert set(services) == ({f"redis-{i}" for i in range(4)} | {f"executor-{i}" for i in range(8)}
                             | {"bootstrap", "master"})
    for node in plan.nodes:
        redis = services[node.name]
        assert redis["image"] == IMAGES.redis
        assert redis["deploy"]["endpoint_mode"] == "dnsrr"
        assert redis["deploy"]["placement"]["constraints"] == [f"node.labels.artm.demo.group == {groups[node.index]}"]
        assert "ports" not in redis
        assert redis["deploy"]["restart_policy"]["condition"] == "any"
        assert redis["deploy"]["labels"][labels.SLOTS] == f"{node.slots[0]}-{node.slots[1]}"
        assert redis["secrets"][0]["source"] == "redis_password"
        assert "reservations" in redis["deploy"]["resources"]
    for executor in plan.executors:
        service = services[executor.name]
        deploy = service["deploy"]
        assert deploy["placement"]["constraints"] == [f"node.labels.artm.demo.group == {groups[executor.node]}"]
        assert deploy["labels"][labels.TOKENS] == f"{executor.token_range[0]}:{executor.token_range[1]}"
        assert deploy["labels"][labels.BATCHES] == f"{executor.batch_range[0]}:{executor.batch_range[1]}"
        assert f"redis-{executor.node}" in service["command"]  # talks to its co-located Redis
        assert deploy["resources"]["limits"]["memory"] == str(256 * 2**20)
        assert deploy["resources"]["reservations"]["memory"] == str(256 * 2**20)
        assert all(mount["read_only"] for mount in service["volumes"] if mount["type"] == "bind")
    master = services["master"]
    assert master["deploy"]["placement"]["constraints"] == [f"node.id == {MANAGER}"]
    # A lost master comes back (resuming its run) as often as --max-restarts (default 3) allows.
    assert master["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert master["deploy"]["restart_policy"]["max_attempts"] == plan.config.max_restarts == 3
    assert service["deploy"]["restart_policy"]["max_attempts"] == plan.config.max_restarts
    assert {"type": "bind", "source": str(state.root), "target": "/state"} in [
        {k: v for k, v in m.items() if k in ("type", "source", "target")} for m in master["volumes"]]
    assert services["bootstrap"]["deploy"]["restart_policy"]["condition"] == "on-failure"
    for name, service in services.items():  # as `docker stack config` reads them: not dropped
        assert service["cap_drop"] == ["ALL"] and service["read_only"] is True, name
        tmpfs = [m["target"] for m in service["volumes"] if m["type"] == "tmpfs"]
        assert tmpfs == (["/data"] if name.startswith("redis-") else ["/tmp"]), name
    assert services["bootstrap"]["configs"][0]["target"] == "/state/cluster.json"
    network = stack["networks"]["cluster"]
    assert network["driver"] == "overlay" and network["attachable"] is True
    assert stack["secrets"]["redis_password"]["file"] == str(files.password)
    assert stack["configs"]["nodes"]["file"] == str(files.nodes)


@needs_docker_cli
def test_replicas_are_services_of_their_own_on_another_swarm_node_than_their_primary(setup):
    plan, state, files, groups = setup
    plan = make_plan(plan.config.replace(replicas=1), plan.data, addressing=SERVICE_ADDRESSING)
    files.nodes.write_text(nodes_document(plan))
    files.stack.write_text(render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER,
                                        passwords=user_passwords(state), training=False))
    services = stack_config(files.stack)["services"]
    assert set(services) == {f"redis-{i}" for i in range(8)} | {"bootstrap"}
    # "big" holds 0-2 (group 0), "small" 3 (group 1): the copies of 0-2 go to "small", that of 3 to "big".
    placed = {name: service["deploy"]["placement"]["constraints"] for name, service in services.items()
              if name.startswith("redis-")}
    assert placed == {f"redis-{i}": [f"node.labels.artm.demo.group == {group}"]
                      for i, group in enumerate([0, 0, 0, 1, 1, 1, 1, 0])}
    assert services["redis-5"]["deploy"]["labels"][labels.SLOTS] == services["redis-1"]["deploy"]["labels"][labels.SLOTS]
    # The bootstrap job attaches them: its nodes document lists every instance with its primary.
    document = json.loads(files.nodes.read_text())
    assert [(n["name"], n.get("replica_of")) for n in document["nodes"]] == (
        [(f"redis-{i}", None) for i in range(4)] + [(f"redis-{4 + i}", i) for i in range(4)])


def test_the_password_never_appears_in_the_stack(setup):
    plan, state, _, groups = setup
    plan = make_plan(plan.config.replace(dashboard=True), plan.data, addressing=SERVICE_ADDRESSING)
    text = render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER, passwords=user_passwords(state))
    assert PASSWORD not in text and state.training_password_file.read_text().strip() not in text
    assert state.reader_password_file.read_text().strip() not in text
    stack = yaml.safe_load(text)
    for name, service in stack["services"].items():
        assert "ports" not in service
        assert all(PASSWORD not in str(value) for value in (service.get("environment") or {}).values())
        # The admin password stays with Redis and bootstrap: the engine logs in as the training user, the
        # dashboard as the reader.
        secrets = sorted(secret["source"] for secret in service.get("secrets", []))
        expected = {"bootstrap": ["redis_password"], "dashboard": ["redis_reader_password"], "dashboard-relay": []}
        assert secrets == expected.get(name, ["redis_password", "redis_users"] if name.startswith("redis-")
                                       else ["redis_training_password"]), name
        # Where the state directory is mounted, the other users' password files are hidden.
        hidden = {v["target"] for v in service.get("volumes", []) if v.get("source") == "/dev/null"}
        assert hidden == {"dashboard": {"/state/redis.password", "/state/redis.training.password"},
                          "master": {"/state/redis.password", "/state/redis.reader.password"}}.get(name, set()), name
    assert stack["secrets"]["redis_users"]["file"].endswith("/redis.users.conf")
    assert stack["secrets"]["redis_reader_password"]["file"].endswith("/redis.reader.password")


@needs_docker_cli
def test_redis_only_stack_leaves_training_out(setup):
    plan, state, files, groups = setup
    files.stack.write_text(render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER,
                                        passwords=user_passwords(state), training=False))
    assert set(stack_config(files.stack)["services"]) == {f"redis-{i}" for i in range(4)} | {"bootstrap"}


def test_secret_and_config_names_follow_their_content(setup):
    plan, state, _, groups = setup
    one = yaml.safe_load(render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER,
                                      passwords=user_passwords(state)))
    other = yaml.safe_load(render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER,
                                        passwords={**user_passwords(state), ADMIN_USER: PASSWORD[::-1]}))
    assert one["secrets"]["redis_password"]["name"] != other["secrets"]["redis_password"]["name"]
    assert one["configs"]["nodes"]["name"] == other["configs"]["nodes"]["name"]


def test_a_virtual_node_without_group_is_refused(setup):
    plan, state, _, groups = setup
    del groups[3]
    with pytest.raises(ValueError, match=r"\[3\]"):
        render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER, passwords=user_passwords(state))


@needs_docker_cli
def test_dashboard_services_run_on_the_manager_and_publish_no_port(setup):
    plan, state, files, groups = setup
    plan = make_plan(plan.config.replace(dashboard=True, dashboard_port=18265), plan.data,
                     addressing=SERVICE_ADDRESSING)
    files.stack.write_text(render_stack(plan, state, images=IMAGES, groups=groups, manager_id=MANAGER,
                                        passwords=user_passwords(state), training=False))
    stack = stack_config(files.stack)
    dashboard, relay = stack["services"]["dashboard"], stack["services"]["dashboard-relay"]
    for service in (dashboard, relay):
        assert service["deploy"]["placement"]["constraints"] == [f"node.id == {MANAGER}"]
        assert service["deploy"]["labels"][labels.ROLE] == "dashboard" and "ports" not in service
    # The dashboard reaches Redis on the overlay network; only the relay is on the host's, on its loopback.
    assert list(dashboard["networks"]) == ["cluster"] and list(relay["networks"]) == ["host"]
    assert stack["networks"]["host"]["external"] is True
    assert relay["command"][-4:] == ["--relay-to", "/run/artm-dashboard/dashboard.sock", "--port", "18265"]
    assert "--unix-socket" in dashboard["command"] and "--vocab" in dashboard["command"]
    binds = lambda service: {m["source"] for m in service["volumes"] if m["type"] == "bind"}  # noqa: E731
    sockets = binds(relay) & binds(dashboard)
    assert sockets == {str(files.dashboard)}
