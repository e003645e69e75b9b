"""Training in containers: the same answer as the local runtime, scores in the state dir, export, and a
new run after a Redis container restarted (the cluster healed by `up`).

Marked ``containers``; uses the real engine in the artm image and a real corpus (this machine's
package descriptions).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from redis.crc import key_slot

from artm_compose import labels
from artm_compose.api import Cluster
from artm_compose.runtimes.compose.compose_file import container_name
from artm_compose.config import ClusterConfig
from artm_compose.docker_access import docker_client
from artm_compose.engine.checkpoint import read_checkpoint
from artm_compose.engine.model_store import model_key
from artm_compose.engine.protocol import read_progress
from artm_compose.errors import ConfigError, DataError
from artm_compose.images.build import build_images
from artm_compose.runtimes.compose.runtime import ComposeRuntime
from artm_compose.waiting import wait_until
from support.compose import QUIET, host_client, leftovers
from support.ports import free_port_block
from support.engine import assert_healed_by_one_failover, dpkg_corpus

pytestmark = pytest.mark.containers
TRAINING = dict(nodes=2, executors_per_node=2, topics=5, iterations=3, seed=7)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return dpkg_corpus(tmp_path_factory.mktemp("compose-train") / "dpkg")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus) -> Iterator[tuple[Cluster, list[str]]]:
    """A compose cluster that has trained once (following the master), and what `up` echoed."""
    build_images(echo=QUIET)
    state = tmp_path_factory.mktemp("compose-train") / "state"
    cluster = Cluster(ClusterConfig(name=f"tt{os.getpid()}", runtime="compose", state_dir=state, data_dir=corpus,
                                    **TRAINING))
    echoed: list[str] = []
    try:
        result = cluster.up(detach=False, echo=echoed.append)
        assert result.training == "finished", echoed
        yield cluster, echoed
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []


def perplexities(state: Path) -> list[float]:
    return json.loads((state / "scores.json").read_text())["perplexity"]


def test_training_matches_the_local_runtime(trained, corpus, tmp_path):
    cluster, echoed = trained
    assert any(line.startswith("pass 3: perplexity") for line in echoed), echoed
    in_containers = perplexities(cluster.state.root)
    assert len(in_containers) == TRAINING["iterations"]
    assert (cluster.state.root / "scores.json").stat().st_uid == os.getuid()
    local = Cluster(ClusterConfig(name="local-twin", runtime="local", state_dir=tmp_path / "local", data_dir=corpus,
                                  base_port=free_port_block(TRAINING["nodes"]), **TRAINING))
    try:
        assert local.up(detach=False, echo=QUIET).training == "finished"
    finally:
        local.down(echo=QUIET)
    assert np.allclose(in_containers, perplexities(local.state.root), rtol=1e-4, atol=0)


def test_status_and_export_after_training(trained, tmp_path):
    cluster, _ = trained
    status = cluster.status()
    assert status.healthy, status.describe()
    assert status.training["pass"] == TRAINING["iterations"]
    assert status.training["perplexity"] == pytest.approx(perplexities(cluster.state.root)[-1])
    executors = status.of_role("executor")
    assert len(executors) == 4 and not any(e.alive for e in executors), status.describe()
    model = np.load(cluster.export(tmp_path / "model.npz"))
    assert model["phi"].shape == (len(model["tokens"]), TRAINING["topics"])
    assert np.allclose(model["phi"].sum(axis=0), 1.0, atol=1e-5)


def test_every_container_ran_without_capabilities_on_a_read_only_root(trained):
    cluster, _ = trained
    client = docker_client()
    found = client.containers.list(all=True, filters={"label": labels.selector(cluster.config.name, "compose")})
    roles = sorted(c.labels[labels.ROLE] for c in found)
    assert roles == ["control", "executor", "executor", "executor", "executor", "master", "redis", "redis"]
    for container in found:
        host = container.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"], container.name
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), container.name
        assert host["ReadonlyRootfs"] is True, container.name
    for container in (c for c in found if c.status == "running"):  # what the kernel enforces, seen from inside
        scratch = "/data" if container.labels[labels.ROLE] == "redis" else "/tmp"
        _, output = container.exec_run(["sh", "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
                                        f"touch /usr/probe 2>&1; touch {scratch}/probe && echo writable; "
                                        f"rm -f {scratch}/probe"])
        text = output.decode()
        assert "CapEff:\t0000000000000000" in text and "CapBnd:\t0000000000000000" in text, (container.name, text)
        assert "NoNewPrivs:\t1" in text and "Read-only file system" in text, (container.name, text)
        assert "writable" in text.split("Read-only file system")[-1], (container.name, text)


def test_the_training_containers_logged_in_as_the_training_user_and_were_refused_nothing(trained):
    cluster, _ = trained
    client = docker_client()
    for node in cluster.plan.nodes:  # ACL LOG of each node, asked as the admin (password on stdin)
        redis = client.containers.get(container_name(cluster.plan, f"redis-{node.index}"))
        script = ("printf 'AUTH %s\\nACL LOG\\n' \"$(cat /run/secrets/redis_password)\" | "
                  f"redis-cli -p {cluster.config.base_port}")
        _, output = redis.exec_run(["sh", "-c", script])
        lines = output.decode().splitlines()
        assert lines[0] == "OK" and "reason" not in lines, lines  # no ACL denial
    executor = client.containers.get(container_name(cluster.plan, "executor-0"))
    assert [m for m in executor.attrs["Mounts"] if "redis_password" in m["Destination"]] == []
    command = executor.attrs["Config"]["Cmd"]
    assert command[command.index("--redis-user") + 1] == "artm-training"


def test_new_run_after_a_redis_restart_heals_and_gives_the_same_answer(trained):
    cluster, _ = trained
    first = perplexities(cluster.state.root)
    client = docker_client()
    victim = client.containers.get(f"artm-{cluster.config.name}-redis-1")
    victim.restart(timeout=2)
    result = cluster.up(detach=True, echo=QUIET)
    assert any("assigned slots 8192-16383" in action for action in result.actions), result.actions
    assert result.training == "started"
    with pytest.raises(ConfigError, match="training is already running"):
        cluster.up(detach=True, echo=QUIET)
    master = client.containers.get(f"artm-{cluster.config.name}-master")
    assert master.wait(timeout=600)["StatusCode"] == 0, master.logs(tail=20).decode()
    assert perplexities(cluster.state.root) == pytest.approx(first, rel=1e-4)
    redis = client.containers.list(filters={"label": labels.selector(cluster.config.name, "compose", role="redis")})
    assert len(redis) == 2


def chaos_cluster(prefix: str, corpus: Path, tmp_path: Path, **overrides) -> Cluster:
    """A compose cluster (not up yet) for a chaos test: 2 nodes, a short heartbeat timeout, passes long
    enough to kill something in the middle of one."""
    build_images(echo=QUIET)
    config = dict(nodes=2, executors_per_node=1, topics=96, seed=7, heartbeat_timeout=4.0) | overrides
    return Cluster(ClusterConfig(name=f"{prefix}{os.getpid()}", runtime="compose", state_dir=tmp_path / "state",
                                 data_dir=corpus, **config))


def await_pass_3_e_step(cluster: Cluster, clean_run: str, following: Future) -> None:
    """Wait (bounded) until the run after ``clean_run``, which `up` follows in ``following``, is in the E-step
    of pass 3."""
    redis = host_client(cluster.config.name, cluster.state, cluster.config.base_port)
    wait_until(lambda: following.done() or (lambda p: p.get("run") != clean_run and p.get("pass", 0) >= 3
                                            and p.get("phase") == "e-step")(read_progress(redis, cluster.config.name)),
               180, "the E-step of pass 3 of the second run", interval=0.005)
    assert not following.done(), following.result()


def train_then_start_again(cluster: Cluster) -> dict:
    """Train to the end (the uninterrupted reference: its scores, returned), then start the same run again."""
    assert cluster.up(detach=False, echo=QUIET).training == "finished"
    clean = json.loads(cluster.state.scores.read_text())
    cluster.up(detach=True, echo=QUIET)
    return clean


def test_a_killed_executor_container_is_restarted_and_the_run_heals(corpus, tmp_path):
    """Chaos: SIGKILL to an executor container's process in the middle of the run (as the OOM killer
    would; `docker kill` would count as a manual stop and switch Docker's restart policy off)."""
    cluster = chaos_cluster("heal", corpus, tmp_path, executors_per_node=2, iterations=30, restart_timeout=60.0)
    client = docker_client()
    try:
        clean = train_then_start_again(cluster)
        deadline = time.monotonic() + 180
        while True:
            training = cluster.status().training or {}
            if training.get("state") == "iterations" and training.get("pass", 0) >= 3:
                break
            assert time.monotonic() < deadline, f"no pass 3 within 180 s: {training}"
            time.sleep(0.3)
        victim = client.containers.get(container_name(cluster.plan, "executor-1"))
        os.kill(victim.attrs["State"]["Pid"], signal.SIGKILL)
        while (cluster.status().training or {}).get("state") not in ("done", "failed"):
            assert time.monotonic() < deadline + 180, "the healed run did not end"
            time.sleep(1.0)
        healed = json.loads(cluster.state.scores.read_text())
        assert (cluster.status().training or {}).get("state") == "done", cluster.logs("master")
        assert [r["executor"] for r in healed["restarts"]] == [1]
        assert healed["perplexity"] == clean["perplexity"]
        victim.reload()
        assert victim.attrs["RestartCount"] == 1
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []


def test_a_killed_master_container_is_restarted_and_up_follows_it_to_the_uninterrupted_answer(corpus, tmp_path):
    """Chaos: SIGKILL to the master container's process in the middle of a pass, while `up` follows the
    master: Docker restarts it (its restart policy), it resumes the run from the committed model, and `up`
    ends as after an uninterrupted run; `logs master -f` follows it across the restart too."""
    cluster = chaos_cluster("mkill", corpus, tmp_path, iterations=12)
    client = docker_client()
    try:
        assert cluster.up(detach=False, echo=QUIET).training == "finished"
        clean = json.loads(cluster.state.scores.read_text())
        echoed: list[str] = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            following = pool.submit(cluster.up, detach=False, echo=echoed.append)
            await_pass_3_e_step(cluster, clean["run"], following)
            master = client.containers.get(container_name(cluster.plan, "master"))
            logged = pool.submit(lambda: "".join(cluster.runtime.logs("master", follow=True)))
            os.kill(master.attrs["State"]["Pid"], signal.SIGKILL)
            result = following.result(timeout=300)
        assert result.training == "finished", echoed[-20:]
        healed = json.loads(cluster.state.scores.read_text())
        assert len(healed["resumed"]) == 1 and healed["restarts"] == [], healed
        assert healed["perplexity"] == pytest.approx(clean["perplexity"], rel=1e-6, abs=0)
        assert any(line.startswith("master restarted by its restart policy (1 of 3)") for line in echoed), echoed
        assert any(line.startswith("resuming run ") for line in echoed), echoed
        assert sum(line.startswith("pass 12:") for line in echoed) == 1, echoed  # each line echoed once
        master.reload()
        # Ended for good: exit 0, and its restart policy switched off with the run over.
        assert (master.attrs["State"]["ExitCode"], master.attrs["RestartCount"]) == (0, 1)
        assert master.attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"
        followed = logged.result(timeout=60)  # `logs master -f` too followed the master until it ended for good
        assert followed.count("waiting for 2 executor(s)") == 2 and followed.count("\npass 12:") == 1, followed
        assert cluster.status().status == "finished"
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []


def test_up_after_its_redis_lost_data_goes_on_from_the_checkpoint(corpus, tmp_path):
    """Chaos without replicas, after a checkpoint: `docker kill` of the Redis node that does not hold the
    model's record (the other keeps part of the model), and in the next run of every Redis container. Each
    time `up` with the same config right away removes the run's executors and master (they cannot go on;
    their restart policy would keep them coming back), starts every node anew, and the run goes on from its
    checkpoint to the uninterrupted run's perplexities."""
    # Passes take ~0.2 s: enough of them that the run is still going when the kills land.
    cluster = chaos_cluster("ckpt", corpus, tmp_path, iterations=60, checkpoint_every=5)
    client = docker_client()
    record_slot = key_slot(model_key(cluster.config.name).encode())
    keeps_record = next(n.index for n in cluster.plan.nodes if n.slots[0] <= record_slot <= n.slots[1])
    try:
        clean = train_then_start_again(cluster)
        done = {clean["run"]}
        for attempt, lost in enumerate(([n.index for n in cluster.plan.nodes if n.index != keeps_record],
                                        [n.index for n in cluster.plan.nodes])):
            if attempt:
                cluster.up(detach=True, echo=QUIET)

            def checkpointed() -> bool:
                try:
                    return read_checkpoint(cluster.state.checkpoint).run not in done
                except DataError:  # absent, or being replaced as we read it
                    return False

            wait_until(checkpointed, 180, "a checkpoint of the run just started", interval=0.05)
            for index in lost:
                client.containers.get(container_name(cluster.plan, f"redis-{index}")).kill()
            lines: list[str] = []
            assert cluster.up(detach=False, echo=lines.append).training == "finished", lines
            assert sum("(left by a run that lost its Redis)" in line for line in lines) == 3, lines
            restored = json.loads(cluster.state.scores.read_text())
            [resumed] = restored["resumed"]
            assert resumed["from"] == "checkpoint" and resumed["run"] not in done and resumed["pass"] < 60
            assert any(f"going on with run {resumed['run']} from its checkpoint of pass {resumed['pass']}" in line
                       for line in lines), lines
            assert restored["perplexity"] == clean["perplexity"]  # every pass once, bit for bit as uninterrupted
            done |= {resumed["run"], restored["run"]}
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []


def test_scale_from_4_to_2_executors_and_back_while_training(corpus, tmp_path):
    """`scale` mid-run: the removed executors' containers go, the new plan's executors start afresh, the
    master container keeps running, and the run ends as a local run of the same config (float rounding)."""
    cluster = chaos_cluster("scale", corpus, tmp_path, executors_per_node=2, iterations=150)
    client = docker_client()
    executors = lambda: {c.name: c.id for c in client.containers.list(  # noqa: E731
        all=True, filters={"label": labels.selector(cluster.config.name, "compose", role="executor")})}
    try:
        cluster.up(detach=True, echo=QUIET)
        master = client.containers.get(container_name(cluster.plan, "master"))
        before = executors()
        wait_until(lambda: (cluster.status().training or {}).get("pass", 0) >= 2, 120, "pass 2")
        smaller = cluster.scale(2, echo=QUIET)
        assert sorted(executors()) == [container_name(cluster.plan, f"executor-{i}") for i in range(2)]
        lines: list[str] = []
        smaller.scale(4, echo=lines.append)
        assert any("go on with 4 executor(s) (now 2)" in line for line in lines), lines
        after = executors()
        assert sorted(after) == sorted(before) and not set(after.values()) & set(before.values())
        assert master.wait(timeout=600)["StatusCode"] == 0, master.logs(tail=20).decode()
        master.reload()
        assert master.attrs["RestartCount"] == 0
        scaled = json.loads(cluster.state.scores.read_text())
        assert [(r["from"], r["to"]) for r in scaled["rescaled"]] == [(4, 2), (2, 4)]
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []
    local = Cluster(cluster.config.replace(name="scale-twin", runtime="local", state_dir=tmp_path / "local",
                                           base_port=free_port_block(2)))
    try:
        assert local.up(detach=False, echo=QUIET).training == "finished"
    finally:
        local.down(echo=QUIET)
    # Other executors sum the contributions in another order: float rounding, nothing more.
    np.testing.assert_allclose(scaled["perplexity"], perplexities(local.state.root), rtol=1e-6)


def test_a_killed_redis_primary_container_fails_over_and_up_ends_with_the_uninterrupted_answer(corpus, tmp_path):
    """Chaos: `docker kill` of a Redis primary's container in the E-step of a pass, with --replicas 1, while
    `up` follows the master: Redis Cluster promotes the replica, the executors wait for it, the master
    redoes the pass from the committed model, and the run ends as an uninterrupted one."""
    # Heartbeats outlive a failover (the config refuses less with replicas).
    cluster = chaos_cluster("fo", corpus, tmp_path, nodes=3, replicas=1, iterations=12, heartbeat_timeout=10.0)
    client = docker_client()
    try:
        assert cluster.up(detach=False, echo=QUIET).training == "finished"
        clean = json.loads(cluster.state.scores.read_text())
        assert {name: role for name, (_, role) in redis_roles(cluster).items()} == {
            "redis-0": "primary", "redis-1": "primary", "redis-2": "primary", "redis-3": "replica of redis-0",
            "redis-4": "replica of redis-1", "redis-5": "replica of redis-2"}
        echoed: list[str] = []
        with ThreadPoolExecutor(max_workers=1) as pool:
            following = pool.submit(cluster.up, detach=False, echo=echoed.append)
            await_pass_3_e_step(cluster, clean["run"], following)
            client.containers.get(container_name(cluster.plan, "redis-1")).kill()
            result = following.result(timeout=300)
        assert result.training == "finished", echoed[-20:]
        assert_healed_by_one_failover(json.loads(cluster.state.scores.read_text()), clean, echoed)
        roles = redis_roles(cluster)
        assert roles["redis-4"] == (True, "primary") and roles["redis-1"][0] is False, roles
        assert cluster.status().training["failovers"] == 1
    except BaseException:
        # The containers and their logs go with `down`: pytest shows this output with the failure.
        print(cluster.logs("master"), cluster.logs("executor"), sep="\n")
        raise
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        assert leftovers(cluster.config.name) == []


def redis_roles(cluster: Cluster) -> dict[str, tuple[bool, str]]:
    """Each Redis instance's liveness and role as status shows them ("running (healthy); primary, slots ...")."""
    return {m.name: (m.alive, m.detail.split("; ")[-1].split(",")[0]) for m in cluster.status().members
            if m.role == "redis"}
