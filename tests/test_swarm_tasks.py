"""Swarm task documents: which task matters, and when a job run is over."""

from __future__ import annotations

from artm_compose.swarm.tasks import job_state, latest, view


def task(id_, state, created, *, iteration=None, node="n1", err="", exit_code=None, desired="running"):
    doc = {"ID": id_, "CreatedAt": created, "Version": {"Index": 1}, "NodeID": node, "DesiredState": desired,
           "Status": {"State": state, "Err": err, "ContainerStatus": {"ExitCode": exit_code}}}
    if iteration is not None:
        doc["JobIteration"] = {"Index": iteration}
    return doc


def test_latest_task_is_the_newest_and_describes_itself():
    tasks = [task("a", "failed", "2026-01-01T00:00:01Z", exit_code=1, err="task: non-zero exit (1)"),
             task("b", "running", "2026-01-01T00:00:09Z", node="n2")]
    newest = latest(tasks)
    assert newest.id == "b" and newest.running and not newest.terminal
    assert newest.describe({"n2": "worker-2"}) == "running on worker-2"
    old = view(tasks[0])
    assert old.terminal and old.describe({"n1": "mgr"}) == "failed on mgr, exit code 1: task: non-zero exit (1)"
    assert latest([]) is None


def test_pending_task_without_node_names_the_reason():
    pending = view(task("p", "pending", "t", node=None,
                        err="no suitable node (scheduling constraints not satisfied on 1 node)"))
    assert pending.describe({}) == ("pending on no node yet: no suitable node "
                                    "(scheduling constraints not satisfied on 1 node)")


def test_job_state_looks_only_at_the_current_iteration():
    service = {"JobStatus": {"JobIteration": {"Index": 7}}}
    earlier = task("old", "complete", "1", iteration=5)
    assert job_state(service, [earlier], max_attempts=3) == "pending"
    running = task("r", "running", "2", iteration=7)
    assert job_state(service, [earlier, running], max_attempts=3) == "pending"
    done = task("d", "complete", "3", iteration=7)
    assert job_state(service, [earlier, running, done], max_attempts=3) == "complete"


def test_job_fails_when_its_attempts_are_used_up():
    service = {"JobStatus": {"JobIteration": {"Index": 2}}}
    failures = [task(f"f{i}", "failed", str(i), iteration=2, exit_code=1) for i in range(2)]
    assert job_state(service, failures, max_attempts=3) == "pending"
    failures.append(task("f2", "failed", "9", iteration=2, exit_code=1))
    assert job_state(service, failures, max_attempts=3) == "failed"
    assert job_state(service, failures + [task("again", "starting", "10", iteration=2)], max_attempts=3) == "pending"
