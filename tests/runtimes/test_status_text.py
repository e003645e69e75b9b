"""What ``status`` prints for people: a finished run's executors and master read "done", not "DOWN"."""

from artm_compose.record import Status
from artm_compose.runtimes.base import ClusterStatus, MemberStatus


def _status(status: Status, *, redis_alive: bool = True) -> ClusterStatus:
    members = (MemberStatus("redis", "redis-0", redis_alive, "redis-0:7000", "running"),
               MemberStatus("executor", "executor-0", False, "redis-0:7000", "exited, exit code 0"),
               MemberStatus("master", "master", False, "redis-0:7000", "exited, exit code 0; finished"))
    return ClusterStatus(cluster="c", runtime="compose", state_dir="/s", status=status, cluster_state="ok",
                         slots_assigned=16384, members=members)


def _liveness(text: str) -> dict[str, str]:
    rows = [line.split() for line in text.splitlines() if line.startswith("  ")]
    return {row[1]: row[2] for row in rows}


def test_a_finished_runs_processes_are_done() -> None:
    assert _liveness(_status(Status.FINISHED).describe()) == {"redis-0": "up", "executor-0": "done", "master": "done"}


def test_processes_gone_from_a_run_that_did_not_finish_are_down() -> None:
    assert _liveness(_status(Status.FAILED).describe()) == {"redis-0": "up", "executor-0": "DOWN", "master": "DOWN"}


def test_a_lost_redis_node_is_down_even_after_a_finished_run() -> None:
    assert _liveness(_status(Status.FINISHED, redis_alive=False).describe())["redis-0"] == "DOWN"
