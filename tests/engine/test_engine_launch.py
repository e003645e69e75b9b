"""The argv built from a plan is what the programs parse, with the reference's flag names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artm_compose.config import ClusterConfig
from artm_compose.data.summary import DataSummary
from artm_compose.engine import executor, master
from artm_compose.engine.launch import executor_argv, master_argv
from artm_compose.plan import make_plan
from artm_compose.runtimes.local.runtime import LOOPBACK

REFERENCE_EXECUTOR_FLAGS = ["--num-topics", "--num-inner-iter", "--num-threads", "--batches-dir-path", "--vocab-path",
                            "--continue-fitting", "--caching-mode", "--redis-ip", "--redis-port", "--executor-id",
                            "--token-begin-index", "--token-end-index", "--batch-begin-index", "--batch-end-index"]
REFERENCE_MASTER_FLAGS = ["--num-topics", "--num-outer-iter", "--num-executors", "--num-executor-threads",
                          "--batches-dir-path", "--vocab-path", "--redis-ip", "--redis-port", "--show-top-tokens",
                          "--continue-fitting"]


def plan(**config):
    data = DataSummary(batches_dir=Path("/data"), vocab_path=Path("/data/vocab.txt"),
                       batch_names=tuple(f"{i:06d}.batch" for i in range(6)),
                       batch_weights=np.ones(6), token_weights=np.ones(100))
    return make_plan(ClusterConfig(name="demo", runtime="local", nodes=2, executors_per_node=2, data_dir=Path("/data"),
                                   topics=30, iterations=7, inner_iterations=4, threads=2, seed=9,
                                   heartbeat_timeout=12.5, allow_idle=True, **config), data,
                     addressing=LOOPBACK)


def test_executor_argv_parses_back_to_the_plan():
    the_plan = plan()
    for spec in the_plan.executors:
        argv = executor_argv(the_plan, spec, redis_host="redis-1", redis_port=7000, password_file="/run/pw",
                             batches_dir="/data", vocab_path="/data/vocab.txt")
        assert all(flag in argv for flag in REFERENCE_EXECUTOR_FLAGS)
        args = executor.parse_args(argv)
        assert (args.executor_id, args.num_topics, args.num_inner_iter, args.num_threads) == (spec.id, 30, 4, 2)
        assert (args.token_begin_index, args.token_end_index) == spec.token_range
        assert (args.batch_begin_index, args.batch_end_index) == spec.batch_range
        assert (args.redis_ip, args.redis_port, args.cluster, args.seed) == ("redis-1", 7000, "demo", 9)
        assert args.heartbeat_timeout == 12.5 and args.redis_password_file == Path("/run/pw")
        assert args.continue_fitting == 0 and args.init_phi is None


def test_master_argv_parses_back_to_the_plan():
    the_plan = plan(continue_fitting=True, show_top_tokens=False)
    argv = master_argv(the_plan, redis_host="redis-0", redis_port=7000, password_file="/run/pw", batches_dir="/data",
                       vocab_path="/data/vocab.txt", scores_path="/state/scores.json",
                       checkpoint_path="/state/checkpoint.npz")
    assert all(flag in argv for flag in REFERENCE_MASTER_FLAGS)
    args = master.parse_args(argv)
    assert (args.num_topics, args.num_outer_iter, args.num_executors, args.num_executor_threads) == (30, 7, 4, 2)
    assert (args.continue_fitting, args.show_top_tokens, args.seed) == (1, 0, 9)
    assert args.scores_path == Path("/state/scores.json")
    assert (args.checkpoint_path, args.checkpoint_every) == (Path("/state/checkpoint.npz"), 10)
    never = master.parse_args(master_argv(plan(checkpoint_every=0), redis_host="r", redis_port=1, password_file="p",
                                          batches_dir="/d", vocab_path="/d/v", scores_path="s", checkpoint_path="c.npz"))
    assert (never.checkpoint_path, never.checkpoint_every) == (None, 0)


@pytest.mark.parametrize("argv,message", [
    (["--num-topics", "0"], "--num-topics=0 must be >= 1"),
    (["--token-begin-index", "5", "--token-end-index", "2"], "--token-begin-index=5 --token-end-index=2 is not a range"),
    (["--heartbeat-timeout", "0"], "--heartbeat-timeout=0.0 must be > 0"),
    (["--caching-mode", "fast"], "invalid choice: 'fast'"),
])
def test_executor_rejects_bad_flags_naming_them(argv, message, capsys):
    base = {"--num-topics": "5", "--batches-dir-path": "/d", "--vocab-path": "/d/v", "--executor-id": "0",
            "--token-begin-index": "0", "--token-end-index": "10", "--batch-begin-index": "0",
            "--batch-end-index": "1"}
    for flag, value in zip(argv[0::2], argv[1::2]):
        base[flag] = value
    with pytest.raises(SystemExit) as exit_info:
        executor.parse_args([item for pair in base.items() for item in pair])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_master_refuses_continue_with_init_phi(capsys):
    with pytest.raises(SystemExit):
        master.parse_args(["--num-topics", "5", "--num-executors", "1", "--batches-dir-path", "/d", "--vocab-path",
                           "/d/v", "--continue-fitting", "1", "--init-phi", "x.csv"])
    assert "exclude each other" in capsys.readouterr().err
