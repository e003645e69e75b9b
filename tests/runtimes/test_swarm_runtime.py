"""The swarm runtime on a real single-node Docker Swarm: placement, bootstrap, training, status, down.

Marked ``swarm``. If this engine is not in a Swarm, the module initialises one (advertising
127.0.0.1) and leaves it again afterwards; every test removes what it started, checked by label.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from redis.crc import key_slot

from artm_compose import labels
from artm_compose.api import Cluster
from artm_compose.cli import cli
from artm_compose.config import ClusterConfig
from artm_compose.engine.checkpoint import read_checkpoint
from artm_compose.engine.protocol import master_key
from artm_compose.errors import DataError
from artm_compose.docker_access import docker_client
from artm_compose.images.build import build_images
from artm_compose.slots import SLOT_COUNT, split_slots
from artm_compose.runtimes.swarm.assign import label_prefix
from artm_compose.runtimes.swarm.data_plan import DataPlan, NodeData
from artm_compose.runtimes.swarm.node_check import check_on_nodes
from artm_compose.runtimes.swarm.one_shot import json_result
from artm_compose.waiting import wait_until
from support.dashboard import get
from support.engine import DPKG_STATUS, assert_healed_by_one_failover, dpkg_corpus
from support.ports import free_port_block
from support.swarm_nodes import swarm_leftovers, swarm_mode

pytestmark = pytest.mark.swarm
QUIET = lambda _message: None  # noqa: E731
TRAINING = {"topics": 8, "seed": 5, "iterations": 4, "inner_iterations": 10, "heartbeat_timeout": 30.0}


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    with swarm_mode(docker_client()):
        yield


@pytest.fixture(scope="module")
def images():
    return build_images(echo=QUIET)


@pytest.fixture
def swarm_cluster(tmp_path: Path, swarm, images) -> Iterator[Callable[..., Cluster]]:
    """Factory of swarm clusters; each is taken down at teardown, and nothing labelled with it may be left."""
    made: list[Cluster] = []

    def make(nodes: int, **overrides) -> Cluster:
        config = ClusterConfig(name=overrides.pop("name", f"s{secrets.token_hex(4)}"), runtime="swarm", nodes=nodes,
                               state_dir=tmp_path / f"state-{len(made)}", **overrides)
        cluster = Cluster(config)
        made.append(cluster)
        return cluster

    yield make
    left = {}
    for cluster in reversed(made):
        if cluster.state.exists():
            cluster.down(echo=QUIET)
        found = swarm_leftovers(docker_client(), cluster.config.name)
        if found:
            left[cluster.config.name] = found
    assert not left, f"left on Docker after down: {left}"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    if not DPKG_STATUS.exists():
        pytest.skip("needs /var/lib/dpkg/status for a real corpus")
    return dpkg_corpus(tmp_path_factory.mktemp("swarm-train") / "dpkg")


def test_up_status_down_four_nodes(swarm_cluster):
    cluster = swarm_cluster(nodes=4)
    result = cluster.up(detach=True, echo=QUIET)
    assert not result.already_up and any("assigned slots" in action for action in result.actions)
    status = cluster.status()
    assert status.healthy, status.describe()
    assert status.cluster_state == "ok" and status.slots_assigned == SLOT_COUNT
    client = docker_client()
    this_node = client.info()["Swarm"]["NodeID"]
    (row,) = status.to_dict()["swarm_nodes"]
    assert row["node_id"] == this_node and row["vnodes"] == [0, 3]
    assert set(row["services"]) == {f"redis-{i}" for i in range(4)}
    assert all(state.startswith("running on ") for state in row["services"].values())
    description = json.loads(cluster.state.cluster_json.read_text())
    assert description["swarm"]["holdings"] == [{"node_id": this_node, "hostname": row["hostname"], "group": 0,
                                                 "vnodes": [0, 3]}]
    node_labels = client.nodes.get(this_node).attrs["Spec"]["Labels"]
    assert node_labels[f"{label_prefix(cluster.config.name)}vnodes"] == "0-3"
    # Every Redis service runs where the labels put it, and is addressed by its own task IP (dnsrr).
    for service in client.services.list(filters={"label": labels.selector(cluster.config.name, "swarm",
                                                                          role="redis")}):
        spec = service.attrs["Spec"]
        assert spec["EndpointSpec"]["Mode"] == "dnsrr" and not spec["EndpointSpec"].get("Ports")
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [
            f"node.labels.{label_prefix(cluster.config.name)}group == 0"]
        assert {t["NodeID"] for t in service.tasks({"desired-state": "running"})} == {this_node}
        env = spec["TaskTemplate"]["ContainerSpec"].get("Env") or []
        assert not any("PASS" in variable for variable in env)
    again = cluster.up(detach=True, echo=QUIET)
    assert again.already_up and again.actions == ()
    log = "".join(cluster.runtime.logs("redis-2"))
    assert "Ready to accept connections" in log
    every_redis = "".join(cluster.runtime.logs("redis"))
    assert every_redis.count("==> redis-") == 4


def test_down_removes_stack_secrets_configs_and_labels(swarm_cluster):
    cluster = swarm_cluster(nodes=2)
    cluster.up(detach=True, echo=QUIET)
    name = cluster.config.name
    assert swarm_leftovers(docker_client(), name)
    messages = cluster.down(echo=QUIET)
    assert any(m.startswith("removed stack") for m in messages)
    assert swarm_leftovers(docker_client(), name) == []
    assert cluster.down(echo=QUIET)  # twice is fine


def _listening_on(port: int) -> list[str]:
    """Addresses (hex, as /proc/net/tcp and tcp6 write them) listening on TCP ``port`` in this network namespace."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_up_dashboard_serves_status_and_metrics_from_a_service_on_the_manager_loopback(swarm_cluster):
    port = free_port_block(1)
    cluster = swarm_cluster(nodes=2, dashboard=True, dashboard_port=port)
    echoed: list[str] = []
    cluster.up(detach=True, echo=echoed.append)
    url = f"http://127.0.0.1:{port}/"
    assert f"dashboard: {url}" in echoed
    status = json.loads(get(url + "api/status")[1])
    assert status["cluster"] == cluster.config.name and status["healthy"] is True, status
    assert [m["alive"] for m in status["members"] if m["role"] == "redis"] == [True, True]
    content_type, text = get(url + "metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    memory = {s.labels["node"]: s.value for s in families["artm_redis_memory_bytes"].samples}
    assert sorted(memory) == [f"redis-{i}:{cluster.config.base_port}" for i in range(2)] and min(memory.values()) > 0
    assert [(s.labels["runtime"], s.value) for s in families["artm_cluster_info"].samples] == [("swarm", 1.0)]
    # Served from the stack: the dashboard on the overlay network, its relay on the manager's 127.0.0.1 only.
    services = {s.name.split("_", 1)[1]: s.attrs["Spec"] for s in docker_client().services.list(
        filters={"label": labels.selector(cluster.config.name, "swarm", role="dashboard")})}
    assert set(services) == {"dashboard", "dashboard-relay"}
    assert not any(spec.get("EndpointSpec", {}).get("Ports") for spec in services.values())
    assert _listening_on(port) == ["0100007F"]

    again = cluster.up(detach=True, echo=QUIET)  # the running dashboard keeps its port
    assert again.already_up and json.loads(get(url + "api/status")[1])["healthy"] is True
    cluster.down(echo=QUIET)
    wait_until(lambda: not _listening_on(port), 30, f"port {port} to be closed after down")


def test_training_gives_compose_perplexity_per_pass(swarm_cluster, corpus_dir, tmp_path):
    cluster = swarm_cluster(nodes=4, executors_per_node=1, data_dir=corpus_dir, **TRAINING)
    lines: list[str] = []
    result = cluster.up(detach=False, echo=lines.append)
    assert result.training == "finished", "\n".join(lines[-30:])
    assert any("pass 4" in line for line in lines), "\n".join(lines[-30:])
    scores = json.loads(cluster.state.scores.read_text())
    status = cluster.status()
    assert status.status == "finished" and status.training["pass"] == 4, status.describe()
    rows = status.to_dict()["swarm_nodes"]
    assert [f"executor-{i}" in rows[0]["services"] for i in range(4)] == [True] * 4
    model = np.load(cluster.runtime.export(tmp_path / "export" / "model.npz"))
    assert model["phi"].shape == (len(model["tokens"]), TRAINING["topics"])
    np.testing.assert_allclose(model["phi"].sum(axis=0), 1.0, rtol=1e-4)

    compose = Cluster(ClusterConfig(name=f"c{secrets.token_hex(4)}", runtime="compose", nodes=4,
                                    executors_per_node=1, data_dir=corpus_dir, state_dir=tmp_path / "compose",
                                    **TRAINING))
    try:
        compose.up(detach=False, echo=QUIET)
        expected = json.loads(compose.state.scores.read_text())
    finally:
        compose.down(echo=QUIET)
    assert len(scores["perplexity"]) == 4
    np.testing.assert_allclose(scores["perplexity"], expected["perplexity"], rtol=1e-4)


def test_killed_executor_and_master_tasks_are_replaced_and_the_run_ends_as_an_uninterrupted_one(swarm_cluster,
                                                                                              corpus_dir):
    """Chaos, while `up` follows the master: SIGKILL to an executor task's container process in the middle of
    a pass (the service's restart policy starts a new task, which registers again, and the master redoes the
    pass), then to the master task's (a new master task resumes the run from the committed model)."""
    cluster = swarm_cluster(nodes=2, executors_per_node=1, data_dir=corpus_dir,
                            **{**TRAINING, "topics": 96, "iterations": 40, "heartbeat_timeout": 4.0})
    assert cluster.up(detach=False, echo=QUIET).training == "finished"
    clean = json.loads(cluster.state.scores.read_text())
    client = docker_client()
    stack = labels.project_name(cluster.config.name)
    scores = lambda: scores_so_far(cluster)  # noqa: E731

    def running_pid(component: str) -> int:
        (task,) = [t for t in client.services.get(f"{stack}_{component}").tasks()
                   if t["Status"]["State"] == "running"]
        return client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"]).attrs["State"]["Pid"]

    echoed: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        following = pool.submit(cluster.up, detach=False, echo=echoed.append)
        wait_until(lambda: following.done() or scores().get("run", clean["run"]) != clean["run"], 300,
                   "the second run to start")
        executor, master = running_pid("executor-1"), running_pid("master")
        wait_until(lambda: following.done() or len(scores().get("perplexity", [])) >= 3, 120,
                   "pass 3 of the second run", interval=0.005)
        assert not following.done(), following.result()
        os.kill(executor, signal.SIGKILL)
        wait_until(lambda: following.done() or bool(scores().get("restarts")), 120, "the pass redone",
                   interval=0.005)
        assert not following.done(), following.result()
        os.kill(master, signal.SIGKILL)
        assert following.result(timeout=300).training == "finished", echoed[-20:]
    healed = json.loads(cluster.state.scores.read_text())
    assert [r["executor"] for r in healed["restarts"]] == [1], healed["restarts"]
    assert len(healed["resumed"]) == 1, healed["resumed"]
    assert healed["perplexity"] == pytest.approx(clean["perplexity"], rel=1e-6, abs=0)
    assert any("restarted by its restart policy (1 of 3)" in line for line in echoed), echoed
    for component in ("executor-1", "master"):
        tasks = client.services.get(f"{stack}_{component}").tasks()
        assert sum(t["Status"]["State"] == "failed" for t in tasks) == 1, component


def test_label_and_data_plan_commands(swarm, images, corpus_dir):
    name = f"cli{secrets.token_hex(3)}"
    runner = CliRunner()
    dry = runner.invoke(cli, ["swarm", "label", "--nodes", "3", "--name", name, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "virtual nodes 0-2  group 0" in dry.output and f"would add artm.{name}.vnodes=0-2" in dry.output
    assert swarm_leftovers(docker_client(), name) == []  # a dry run changes nothing
    try:
        applied = runner.invoke(cli, ["swarm", "label", "--nodes", "3", "--name", name])
        assert applied.exit_code == 0 and f"add artm.{name}.group=0" in applied.output, applied.output
        again = runner.invoke(cli, ["swarm", "label", "--nodes", "3", "--name", name])
        assert "labels already up to date" in again.output
        build_images(echo=QUIET)  # the check runs the artm image of the current sources
        plan = runner.invoke(cli, ["swarm", "data-plan", "--name", name, "--nodes", "3", "--data", str(corpus_dir),
                                   "--on-nodes"])
        assert plan.exit_code == 0, plan.output
        assert "virtual nodes 0-2" in plan.output and "checked on " in plan.output
        assert "every file it needs is readable" in plan.output
        # A node without the data path cannot even start the check: that is what it reports.
        client = docker_client()
        node = client.nodes.get(client.info()["Swarm"]["NodeID"])
        hostname = node.attrs["Description"]["Hostname"]
        nowhere = DataPlan(batches_dir=corpus_dir / "not-here", vocab_path=corpus_dir / "not-here" / "vocab.txt",
                           nodes=(NodeData(hostname, node.id, (0, 2), (0,), (0, 1), ("00000.batch",),
                                           str(corpus_dir / "not-here" / "vocab.txt")),))
        (problem,) = check_on_nodes(client, nowhere, images.artm, name)[hostname]
        assert "the check could not run there" in problem and str(corpus_dir / "not-here") in problem
    finally:
        removed = runner.invoke(cli, ["swarm", "label", "--name", name, "--remove"])
        assert removed.exit_code == 0, removed.output
    assert swarm_leftovers(docker_client(), name) == []


def test_render_with_the_swarm_runtime_writes_the_stack_file_as_swarm_render_does(swarm, tmp_path):
    """One code path: `render --runtime swarm` writes the stack file as `swarm render` does."""
    name = f"r{secrets.token_hex(3)}"
    runner = CliRunner()
    stacks = []
    for command in (["render", "--runtime", "swarm"], ["swarm", "render"]):
        state = tmp_path / command[0] / "state"
        result = runner.invoke(cli, [*command, "--nodes", "2", "--name", name, "--state-dir", str(state)])
        assert result.exit_code == 0, result.output
        assert str(state / "stack.yml") in result.output.splitlines()
        stacks.append(yaml.safe_load((state / "stack.yml").read_text()))
    # The secret is named by the password's content, which each state directory draws anew.
    assert sorted(stacks[0]["services"]) == sorted(stacks[1]["services"])
    assert "redis-1" in stacks[0]["services"]


def test_rendered_stack_deploys_by_hand(swarm, images, tmp_path):
    """`swarm label` + `swarm render`, then plain `docker stack deploy`: Redis comes up and the bootstrap
    service joins it on its own."""
    name = f"h{secrets.token_hex(3)}"
    state = tmp_path / "state"
    runner = CliRunner()
    client = docker_client()
    stack = f"artm-{name}"
    try:
        assert runner.invoke(cli, ["swarm", "label", "--nodes", "3", "--name", name]).exit_code == 0
        rendered = runner.invoke(cli, ["swarm", "render", "--nodes", "3", "--name", name, "--state-dir", str(state)])
        assert rendered.exit_code == 0, rendered.output
        assert f"docker stack deploy --resolve-image never -c {state / 'stack.yml'} {stack}" in rendered.output
        subprocess.run(["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(state / "stack.yml"),
                        stack], check=True, capture_output=True, timeout=120)
        deadline = time.monotonic() + 180
        while True:
            tasks = client.services.get(f"{stack}_bootstrap").tasks()
            done = [t for t in tasks if t["Status"]["State"] == "complete"]
            if done:
                break
            assert time.monotonic() < deadline, [t["Status"] for t in tasks]
            time.sleep(1)
        output = subprocess.run(["docker", "service", "logs", "--raw", done[0]["ID"]], capture_output=True,
                                text=True, timeout=60, check=True).stdout
        report = json_result(output)
        assert report is not None and sum("assigned slots" in action for action in report["actions"]) == 3, output
    finally:
        subprocess.run(["docker", "stack", "rm", stack], capture_output=True, timeout=120, check=False)
        runner.invoke(cli, ["swarm", "label", "--name", name, "--remove"])
        deadline = time.monotonic() + 120
        while swarm_leftovers(client, name) and time.monotonic() < deadline:
            time.sleep(1)
    assert swarm_leftovers(client, name) == []


def test_scale_from_4_to_2_executors_and_back_while_training(swarm_cluster, corpus_dir, tmp_path):
    """`scale` mid-run redeploys the stack: the executor services beyond the new count go, the master's task
    is the same throughout, and the run ends as a local run of the same config (float rounding)."""
    cluster = swarm_cluster(nodes=2, executors_per_node=2, data_dir=corpus_dir,
                            **{**TRAINING, "topics": 96, "iterations": 400, "heartbeat_timeout": 4.0})
    client = docker_client()
    stack = labels.project_name(cluster.config.name)
    executors = lambda: sorted(s.name for s in client.services.list(  # noqa: E731
        filters={"label": labels.selector(cluster.config.name, "swarm", role="executor")}))
    cluster.up(detach=True, echo=QUIET)
    wait_until(lambda: (cluster.status().training or {}).get("pass", 0) >= 2, 180, "pass 2")
    master = [t["ID"] for t in client.services.get(f"{stack}_master").tasks()]
    smaller = cluster.scale(2, echo=QUIET)
    assert executors() == [f"{stack}_executor-{i}" for i in range(2)]
    smaller.scale(4, echo=QUIET)
    assert executors() == [f"{stack}_executor-{i}" for i in range(4)]
    wait_until(lambda: cluster.status().status != "training", 600, "the scaled run to end")
    assert [t["ID"] for t in client.services.get(f"{stack}_master").tasks()] == master
    scaled = json.loads(cluster.state.scores.read_text())
    assert [(r["from"], r["to"]) for r in scaled["rescaled"]] == [(4, 2), (2, 4)]
    local = Cluster(cluster.config.replace(name=f"l{secrets.token_hex(4)}", runtime="local",
                                           state_dir=tmp_path / "local", base_port=free_port_block(2)))
    try:
        assert local.up(detach=False, echo=QUIET).training == "finished"
    finally:
        local.down(echo=QUIET)
    np.testing.assert_allclose(scaled["perplexity"], json.loads(local.state.scores.read_text())["perplexity"],
                               rtol=1e-6)


def test_a_killed_redis_primary_task_fails_over_and_up_ends_with_the_uninterrupted_answer(swarm_cluster, corpus_dir):
    """Chaos with --replicas 1: `docker kill` of a Redis primary's task container in the middle of a pass,
    while `up` follows the master: Redis Cluster promotes its replica, the master redoes the pass from the
    committed model, and the run ends as an uninterrupted one. Swarm meanwhile starts a new task of the killed
    service, a new container, empty and at another address: the next `up` joins it as the promoted one's replica."""
    # Heartbeats outlive a failover (the config refuses less with replicas). The killed node does not hold the
    # master's lease (its key): the engine does not always treat a failover of that node as one yet (seen
    # here: executors taking the master for gone and recorded as restarted, or a 12 s pass not redone).
    first, last = split_slots(3)[1]
    name = next(n for n in iter(lambda: f"s{secrets.token_hex(4)}", None)
                if not first <= key_slot(master_key(n).encode()) <= last)
    cluster = swarm_cluster(nodes=3, replicas=1, executors_per_node=1, data_dir=corpus_dir, name=name,
                            **{**TRAINING, "topics": 96, "iterations": 12, "heartbeat_timeout": 10.0})
    assert cluster.up(detach=False, echo=QUIET).training == "finished"
    clean = json.loads(cluster.state.scores.read_text())
    assert redis_roles(cluster) == {"redis-0": "primary", "redis-1": "primary", "redis-2": "primary",
                                    "redis-3": "replica of redis-0", "redis-4": "replica of redis-1",
                                    "redis-5": "replica of redis-2"}
    (row,) = cluster.status().to_dict()["swarm_nodes"]  # one Swarm node: every replica beside its planned node
    assert set(row["services"]) >= {f"redis-{i}" for i in range(6)}
    client = docker_client()
    stack = labels.project_name(cluster.config.name)
    scores = lambda: scores_so_far(cluster)  # noqa: E731

    echoed: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        following = pool.submit(cluster.up, detach=False, echo=echoed.append)
        wait_until(lambda: following.done() or (scores().get("run", clean["run"]) != clean["run"]
                                                and len(scores().get("perplexity", [])) >= 3),
                   300, "pass 3 of the second run", interval=0.005)
        assert not following.done(), following.result()
        (task,) = [t for t in client.services.get(f"{stack}_redis-1").tasks() if t["Status"]["State"] == "running"]
        client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"]).kill()
        result = following.result(timeout=300)
    assert result.training == "finished", echoed[-20:]
    assert_healed_by_one_failover(json.loads(cluster.state.scores.read_text()), clean, echoed)
    status = cluster.status()
    assert status.training["failovers"] == 1
    roles = redis_roles(cluster, status)
    assert roles["redis-4"] == "primary" and roles["redis-1"] == "no slots (`up` joins it)", roles
    again = cluster.up(detach=True, echo=QUIET)
    assert "redis-1: replicates redis-4" in again.actions, again.actions
    assert redis_roles(cluster)["redis-1"] == "replica of redis-4"


def test_up_after_every_redis_task_lost_its_data_goes_on_from_the_checkpoint(swarm_cluster, corpus_dir):
    """Chaos without replicas, after a checkpoint: `docker kill` of every Redis task's container. Swarm starts
    new tasks of the Redis services by themselves, empty and at other addresses; `up` with the same config
    removes the run's executor and master services (their restart policy would keep them coming back),
    starts every Redis service anew, bootstraps them, and the run goes on from its checkpoint to the
    uninterrupted run's perplexities."""
    cluster = swarm_cluster(nodes=2, executors_per_node=1, data_dir=corpus_dir,
                            **{**TRAINING, "topics": 96, "iterations": 60, "heartbeat_timeout": 4.0,
                               "checkpoint_every": 5})
    assert cluster.up(detach=False, echo=QUIET).training == "finished"
    clean = json.loads(cluster.state.scores.read_text())
    cluster.up(detach=True, echo=QUIET)
    client = docker_client()
    stack = labels.project_name(cluster.config.name)

    def checkpointed() -> bool:
        try:
            return read_checkpoint(cluster.state.checkpoint).run != clean["run"]
        except DataError:  # absent, or being replaced as we read it
            return False

    wait_until(checkpointed, 300, "a checkpoint of the run just started", interval=0.05)
    for node in cluster.plan.nodes:
        for task in client.services.get(f"{stack}_redis-{node.index}").tasks(filters={"desired-state": "running"}):
            if task["Status"]["State"] == "running":
                client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"]).kill()
    lines: list[str] = []
    assert cluster.up(detach=False, echo=lines.append).training == "finished", lines[-30:]
    assert sum("(left by a run that lost its Redis)" in line for line in lines) == 3, lines
    restored = json.loads(cluster.state.scores.read_text())
    [resumed] = restored["resumed"]
    assert resumed["from"] == "checkpoint" and resumed["run"] != clean["run"] and resumed["pass"] < 60
    assert any(f"going on with run {resumed['run']} from its checkpoint of pass {resumed['pass']}" in line
               for line in lines), lines[-30:]
    assert restored["perplexity"] == pytest.approx(clean["perplexity"], rel=1e-6, abs=0)


def scores_so_far(cluster: Cluster) -> dict:
    """The run's scores.json as it is now (empty before the master wrote it, or while it replaces it)."""
    try:
        return json.loads(cluster.state.scores.read_text())
    except (OSError, ValueError):
        return {}


def redis_roles(cluster: Cluster, status=None) -> dict[str, str]:
    """Each Redis instance's role as status shows it ("running on <host>; replica of redis-0, slots ...")."""
    status = status or cluster.status()
    return {m.name: m.detail.split("; ")[-1].rsplit(", slots ", 1)[0] for m in status.members if m.role == "redis"}
