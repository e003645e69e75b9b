"""The artm-compose CLI: the plan contract, one-line errors naming bad values, and a local cluster end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from artm_compose.cli import main
from artm_compose.data.prepare import prepare_vw
from artm_compose.processes import ProcessRecord
from artm_compose.slots import SLOT_COUNT

from support.ports import free_port_block, requires_redis


def gone(pid: int) -> bool:
    """True if ``pid`` has exited (a zombie waiting for init to reap it counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> Path:
    """A real batch directory: 6 batches of 2 documents."""
    root = tmp_path_factory.mktemp("corpus")
    lines = [f"doc{i} apple:{i % 3 + 1} banana cherry:{i + 1} date{'' if i % 2 else ' elder:2'}" for i in range(12)]
    (root / "docs.vw").write_text("\n".join(lines) + "\n")
    prepare_vw(root / "docs.vw", root / "batches", batch_size=2)
    return root / "batches"


def test_plan_json_is_the_contract(batches, capsys):
    code, out, _ = run(["plan", "--nodes", "2", "--executors-per-node", "2", "--data", str(batches),
                        "--split", "even", "--allow-idle", "--json"], capsys)
    assert code == 0
    plan = json.loads(out)
    assert [set(n) for n in plan["nodes"]] == [{"index", "name", "host", "port", "slots"}] * 2
    assert [n["slots"] for n in plan["nodes"]] == [[0, 8191], [8192, SLOT_COUNT - 1]]
    assert [set(e) for e in plan["executors"]] == [{"id", "node", "token_range", "batch_range"}] * 4
    assert [e["id"] for e in plan["executors"]] == [0, 1, 2, 3]
    assert [e["node"] for e in plan["executors"]] == [0, 0, 1, 1]
    # The reference formula: 6 batches over 4 executors, step ceil(6/4) = 2, the last one idle.
    assert [e["batch_range"] for e in plan["executors"]] == [[0, 2], [2, 4], [4, 6], [6, 6]]
    vocab = plan["data"]["vocab_size"]
    step = -(-vocab // 4)
    assert [e["token_range"] for e in plan["executors"]] == [[min(step * i, vocab), min(step * (i + 1), vocab)]
                                                             for i in range(4)]
    assert plan["data"]["batches"] == 6


def test_plan_human_summary_reports_the_split_balance(batches, capsys):
    code, out, _ = run(["plan", "--nodes", "2", "--data", str(batches)], capsys)
    assert code == 0
    assert "2 virtual node(s) x 1 executor(s)" in out and "6 batches" in out
    assert "split balanced; batch token weight: largest share" in out and "from perfect" in out
    assert "executor-1" in out and "slots 8192-16383" in out


@pytest.mark.parametrize("argv,named", [
    (["--nodes", "0"], "nodes=0"),
    (["--nodes", "16385"], "nodes=16385"),
    (["--executors-per-node", "0"], "executors_per_node=0"),
    (["--base-port", "80"], "base_port=80"),
    (["--runtime", "local", "--nodes", "3", "--base-port", "65530"], "base_port=65530"),
    (["--topics", "0"], "topics=0"),
    (["--name", "Bad Name"], "name='Bad Name'"),
    (["--split", "random"], "'random' is not one of 'balanced', 'even'"),
    (["--nodes", "four"], "'four' is not a valid integer"),
    (["--data", "/nonexistent/batches"], "/nonexistent/batches"),
    (["--bogus"], "No such option '--bogus'"),
    (["--regularizer", "SmoothSparsePsiRegularizer:tau=1"], "unknown regularizer type 'SmoothSparsePsiRegularizer'"),
    (["--regularizer", "SmoothSparsePhiRegularizer:tau=lots"], "SmoothSparsePhiRegularizer tau='lots' is not a number"),
    (["--regularizer", "SmoothSparsePhiRegularizer"], "SmoothSparsePhiRegularizer needs tau"),
    (["--regularizer", "DecorrelatorPhiRegularizer:tau=1,alpha_iter=1"], "has no parameter 'alpha_iter'"),
    (["--regularizer", "SmoothSparsePhiRegularizer:tau=1,dictionary=d"], "dictionaries in regularizers"),
    (["--regularizer", "SmoothSparseThetaRegularizer:tau=1,gamma=0.5"], "has no parameter 'gamma'"),
    (["--class-id", "@tag=heavy"], "weight='heavy' is not a number"),
    (["--class-id", "@tag=-1"], "weight -1 must be >= 0"),
    (["--scores", "some"], "'some' is not one of 'all', 'basic'"),
])
def test_bad_values_are_named_on_one_line_with_exit_code_2(argv, named, tmp_path, capsys):
    state = tmp_path / "state"
    for command in ("plan", "up"):
        code, out, err = run([command, "--runtime", "local", "--state-dir", str(state), *argv], capsys)
        assert code == 2, (command, argv, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and named in err, err
        assert "Traceback" not in err and out == ""
    assert not state.exists(), "a refused config started something"


def test_more_executors_than_batches_names_them_and_suggests_allow_idle(batches, tmp_path, capsys):
    code, _, err = run(["plan", "--nodes", "4", "--executors-per-node", "2", "--data", str(batches)], capsys)
    assert code == 2 and "2 of 8 executors would get no batch (ids 6, 7)" in err and "--allow-idle" in err
    code, out, _ = run(["plan", "--nodes", "4", "--executors-per-node", "2", "--data", str(batches),
                        "--allow-idle"], capsys)
    assert code == 0 and "(idle)" in out


def test_config_file_values_and_flags_that_override_them(tmp_path, capsys):
    config = tmp_path / "cluster.yaml"
    config.write_text("name: fromfile\nnodes: 3\nruntime: local\nbase_port: 9000\n")
    code, out, _ = run(["plan", "--config", str(config), "--nodes", "2", "--json"], capsys)
    plan = json.loads(out)
    assert code == 0 and plan["cluster"] == "fromfile" and [n["port"] for n in plan["nodes"]] == [9000, 9001]
    config.write_text("nodes: 3\nexecutors: 2\n")
    code, _, err = run(["plan", "--config", str(config)], capsys)
    assert code == 2 and "unknown config key(s): executors" in err


def test_status_logs_and_down_without_a_cluster(tmp_path, capsys):
    for command in ("status", "logs"):
        code, _, err = run([command, "--state-dir", str(tmp_path)], capsys)
        assert code == 2 and "holds no cluster (no cluster.json)" in err
    code, out, _ = run(["down", "--runtime", "local", "--state-dir", str(tmp_path)], capsys)
    assert code == 0 and out == f"nothing of state dir {tmp_path.resolve()} is left on this machine\n"


def test_help_of_every_command(capsys):
    for command in ("plan", "render", "up", "status", "logs", "down", "export"):
        code, out, _ = run([command, "--help"], capsys)
        assert code == 0 and "Usage: artm-compose " + command in out


def test_render_writes_the_state_directory(tmp_path, capsys):
    state = tmp_path / "state"
    code, out, _ = run(["render", "--runtime", "local", "--nodes", "2", "--state-dir", str(state)], capsys)
    assert code == 0
    written = {Path(line).relative_to(state).as_posix() for line in out.split()}
    assert written == {"redis/0/redis.conf", "redis/1/redis.conf", "addresses.txt", "cluster.json"}
    assert (state / "redis.password").stat().st_mode & 0o777 == 0o600
    assert not (state / "pids").exists() or not list((state / "pids").iterdir())


@pytest.mark.integration
@requires_redis
def test_up_with_data_trains_follows_the_master_then_exports(batches, tmp_path, capsys):
    state = tmp_path / "state"
    common = ["--runtime", "local", "--state-dir", str(state)]
    up = ["up", *common, "--nodes", "2", "--executors-per-node", "2", "--base-port", str(free_port_block(2)),
          "--data", str(batches), "--topics", "3", "--iterations", "3", "--allow-idle"]
    try:
        code, out, err = run(up, capsys)
        assert code == 0, err
        assert "pass 3: perplexity" in out and "training finished" in out
        scores = json.loads((state / "scores.json").read_text())
        assert len(scores["perplexity"]) == 3
        code, out, _ = run(["status", "--json", "--state-dir", str(state)], capsys)
        report = json.loads(out)
        assert report["status"] == "finished" and report["healthy"]
        assert report["counts"]["executor"] == {"alive": 0, "total": 4}
        assert report["training"]["passes"] == 3
        code, out, err = run(["export", "--state-dir", str(state), "--out", str(tmp_path / "model.npz")], capsys)
        assert code == 0, err
        model = np.load(tmp_path / "model.npz")
        assert model["phi"].shape == (len(model["tokens"]), 3)
        assert np.allclose(model["phi"].sum(axis=0), 1.0, atol=1e-5)

        # Detached: a second training on the same (healthy, reused) Redis Cluster.
        code, out, err = run([*up, "-d"], capsys)
        assert code == 0, err
        assert "started 4 executor(s) and the master" in out and "redis-server" not in out
        code, _, err = run([*up, "-d"], capsys)  # the executors are still importing: surely running
        assert code == 2 and "training is already running" in err
        deadline = time.monotonic() + 120
        while True:
            report = json.loads(run(["status", "--json", "--state-dir", str(state)], capsys)[1])
            if report["status"] != "training" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert report["status"] == "finished", report
    finally:
        run(["down", "--state-dir", str(state)], capsys)
    assert list((state / "pids").glob("*.json")) == []


@pytest.mark.parametrize("argv,named", [
    (["--regularizer", "DecorrelatorPhiRegularizer:tau=1,topic_names=topic_1|topic_7"],
     "DecorrelatorPhiRegularizer: topic 'topic_7' is not a topic of the model (topic_0..topic_2)"),
    (["--class-id", "@tag=5"], "class_ids: no token of the vocabulary has class '@tag'; it has @default_class"),
    (["--regularizer", "SmoothSparseThetaRegularizer:tau=-1,alpha_iter=1|0.5"],
     "alpha_iter has 2 values, the E-step runs 10 inner iterations"),
])
def test_regularizers_that_do_not_fit_the_model_are_refused_before_anything_starts(batches, argv, named, tmp_path,
                                                                                   capsys):
    state = tmp_path / "state"
    code, out, err = run(["up", "--runtime", "local", "--state-dir", str(state), "--data", str(batches),
                          "--topics", "3", *argv], capsys)
    assert code == 2 and named in err, err
    assert not state.exists(), "a refused config started something"


@pytest.mark.integration
@requires_redis
def test_up_with_regularizers_writes_the_scores_and_continues_with_a_new_tau(batches, tmp_path, capsys):
    state = tmp_path / "state"
    up = ["up", "--runtime", "local", "--state-dir", str(state), "--base-port", str(free_port_block(1)),
          "--data", str(batches), "--topics", "3", "--iterations", "3",
          "--regularizer", "SmoothSparsePhiRegularizer:tau=-0.05", "--regularizer",
          "SmoothSparseThetaRegularizer:tau=-0.1,topic_names=topic_0|topic_1", "--class-id", "@default_class=1"]
    try:
        code, out, err = run(up, capsys)
        assert code == 0, err
        assert "pass 3: perplexity" in out and "sparsity theta" in out and "kernel size" in out
        scores = json.loads((state / "scores.json").read_text())
        assert [r["type"] for r in scores["regularizers"]] == ["SmoothSparsePhiRegularizer",
                                                                "SmoothSparseThetaRegularizer"]
        for key in ("sparsity_phi", "sparsity_theta", "kernel_size", "kernel_purity", "kernel_contrast"):
            assert len(scores[key]) == 3 and all(0 <= v for v in scores[key]), key
        assert list(scores["perplexity_by_class"]) == ["@default_class"]
        assert len(scores["top_tokens"]) == 3 and all(len(t) <= 10 for t in scores["top_tokens"])
        # BigARTM users change tau between runs: continue from the committed model with a new one.
        code, out, err = run(["up", "--state-dir", str(state), "--continue-fitting", "--iterations", "2",
                              "--regularizer", "SmoothSparsePhiRegularizer:tau=-0.5"], capsys)
        assert code == 0, err
        scores = json.loads((state / "scores.json").read_text())
        assert scores["first_pass"] == 4 and len(scores["perplexity"]) == 2
        assert scores["regularizers"] == [{"type": "SmoothSparsePhiRegularizer", "tau": -0.5}]
        assert scores["class_ids"] == {"@default_class": 1.0}  # recorded, not given again
    finally:
        run(["down", "--state-dir", str(state)], capsys)


@pytest.mark.integration
@requires_redis
def test_cli_up_status_logs_down_with_the_installed_script(tmp_path):
    state = tmp_path / "state"
    script = Path(sys.executable).with_name("artm-compose")
    common = ["--state-dir", str(state)]

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=120)

    base = str(free_port_block(4))
    up = cli("up", "--runtime", "local", "--nodes", "4", "--base-port", base, *common)
    try:
        assert up.returncode == 0, up.stderr
        assert "redis nodes 4/4 up, slots 16384/16384, cluster_state ok" in up.stdout
        for name in ("cluster.json", "addresses.txt", "redis.password", "redis/3/redis.conf",
                     "logs/redis-0.log"):
            assert (state / name).exists(), name

        status = cli("status", "--json", *common)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["cluster_state"] == "ok" and report["slots_assigned"] == SLOT_COUNT and report["healthy"]
        assert [(m["role"], m["name"], m["alive"]) for m in report["members"]] == [
            ("redis", f"redis-{i}", True) for i in range(4)]

        human = cli("status", *common)
        assert "redis nodes 4/4 up" in human.stdout and "executors 0/0 alive" in human.stdout

        logs = cli("logs", "redis-1", *common)
        assert logs.returncode == 0 and "Ready to accept connections" in logs.stdout

        again = cli("up", "--runtime", "local", "--nodes", "4", "--base-port", base, *common)
        assert again.returncode == 0 and "already up and healthy" in again.stdout

        other = cli("up", "--runtime", "local", "--nodes", "2", "--base-port", base, *common)
        assert other.returncode == 2 and "nodes 4 -> 2 needs another cluster" in other.stderr
        assert f"artm-compose down --state-dir {state}" in other.stderr

        # One state directory, one cluster: `up` without flags is the recorded cluster, not a default one.
        bare = cli("up", *common)
        assert bare.returncode == 0 and "already up and healthy" in bare.stdout, bare.stderr
        renamed = cli("up", "--name", "other", *common)
        assert renamed.returncode == 2 and "holds cluster 'artm'" in renamed.stderr
        assert json.loads((state / "cluster.json").read_text())["cluster"] == "artm"
    finally:
        records = [ProcessRecord.load(p) for p in (state / "pids").glob("*.json")]
        down = cli("down", *common)
    assert down.returncode == 0 and down.stdout.count("stopped redis-") == 4
    assert records and all(gone(r.pid) for r in records)
    assert "is left on this machine" in cli("down", *common).stdout
    after = json.loads(cli("status", "--json", *common).stdout)
    assert after["cluster_state"] == "down" and not any(m["alive"] for m in after["members"])
