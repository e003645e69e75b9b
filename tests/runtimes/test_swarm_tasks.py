"""Swarm tasks (views of Engine API task documents): which task matters, and when a job run is over."""

from __future__ import annotations

from artm_compose.docker_access import TaskView
from artm_compose.runtimes.swarm.tasks import last_failure, latest, run_state


def task(id_, state, second, *, node="n1", err="", exit_code=None, desired="running"):
    return TaskView.of({"ID": id_, "CreatedAt": f"2026-01-01T00:00:{second}Z", "Version": {"Index": 1},
                        "NodeID": node, "DesiredState": desired,
                        "Status": {"State": state, "Err": err, "ContainerStatus": {"ExitCode": exit_code}}})


def test_latest_task_is_the_newest_and_describes_itself():
    # Docker trims trailing zeros of the nanoseconds: ".5" is later than ".123456789".
    tasks = [task("a", "failed", "05.123456789", exit_code=1, err="task: non-zero exit (1)"),
             task("b", "running", "05.5", node="n2")]
    newest = latest(tasks)
    assert newest.id == "b" and newest.running and not newest.terminal
    assert newest.describe({"n2": "worker-2"}) == "running on worker-2"
    old = tasks[0]
    assert old.terminal and old.describe({"n1": "mgr"}) == "failed on mgr, exit code 1: task: non-zero exit (1)"
    assert latest([]) is None


def test_pending_task_without_node_names_the_reason():
    pending = (task("p", "pending", "01", node=None,
                        err="no suitable node (scheduling constraints not satisfied on 1 node)"))
    assert pending.describe({}) == ("pending on no node yet: no suitable node "
                                    "(scheduling constraints not satisfied on 1 node)")


def test_one_shot_run_completes_or_fails_after_its_attempts():
    assert run_state([], max_attempts=2) == "pending"
    assert run_state([task("r", "running", "01")], max_attempts=2) == "pending"
    assert run_state([task("f", "failed", "01"), task("d", "complete", "02")], max_attempts=2) == "complete"
    failures = [task(f"f{i}", "failed", f"0{i}", exit_code=1) for i in range(2)]
    assert run_state(failures, max_attempts=2) == "pending"  # one restart left
    failures.append(task("f2", "rejected", "03", err="No such image"))
    assert run_state(failures, max_attempts=2) == "failed"
    assert run_state(failures + [task("again", "starting", "04")], max_attempts=2) == "pending"


def test_last_failure_sees_through_a_restart_loop():
    tasks = [task("1", "failed", "01", exit_code=64, err="task: non-zero exit (64)"),
             task("2", "rejected", "02", err="No such image: x"),
             task("3", "starting", "03")]
    assert latest(tasks).state == "starting"
    assert last_failure(tasks).id == "2"
    assert last_failure(tasks[2:]) is None
