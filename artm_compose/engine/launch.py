"""Command-line arguments of the executors and the master, built from the plan.

Every runtime (local processes, Compose, Swarm) starts the programs with these arguments and
only chooses the program name (``artm-compose-executor`` / ``artm-compose-master`` or
``python -m artm_compose.engine.executor``) and the addresses and paths as seen from where the
process runs. The programs log in as the training user (acl.py): ``password_file`` holds its password.
"""

from __future__ import annotations

from pathlib import Path

from artm_compose.acl import TRAINING_USER
from artm_compose.engine.connect import (DEFAULT_FAILOVER_TIMEOUT, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_TIMEOUT,
                                         failover_timeout)
from artm_compose.plan import ExecutorPlan, Plan


def _common(plan: Plan, redis_host: str, redis_port: int, password_file: Path | str,
            batches_dir: Path | str, vocab_path: Path | str) -> list[str]:
    config = plan.config
    argv = ["--num-topics", str(config.topics),
            "--batches-dir-path", str(batches_dir), "--vocab-path", str(vocab_path),
            "--continue-fitting", "1" if config.continue_fitting else "0",
            "--redis-ip", redis_host, "--redis-port", str(redis_port),
            "--redis-user", TRAINING_USER, "--redis-password-file", str(password_file),
            "--cluster", plan.cluster, "--seed", str(config.seed),
            "--heartbeat-timeout", f"{config.heartbeat_timeout:g}"]
    if config.init_phi is not None:
        argv += ["--init-phi", str(config.init_phi)]
    if failover_timeout(config.node_timeout_ms) != DEFAULT_FAILOVER_TIMEOUT:
        argv += ["--failover-timeout", f"{failover_timeout(config.node_timeout_ms):g}"]
    return argv


def executor_argv(plan: Plan, executor: ExecutorPlan, *, redis_host: str, redis_port: int,
                  password_file: Path | str, batches_dir: Path | str, vocab_path: Path | str) -> list[str]:
    """Arguments (no program name) of ``executor``, which talks to ``redis_host:redis_port`` first."""
    config = plan.config
    return [*_common(plan, redis_host, redis_port, password_file, batches_dir, vocab_path),
            "--num-inner-iter", str(config.inner_iterations), "--num-threads", str(config.threads),
            "--caching-mode", "none",
            "--executor-id", str(executor.id),
            "--token-begin-index", str(executor.token_range[0]), "--token-end-index", str(executor.token_range[1]),
            "--batch-begin-index", str(executor.batch_range[0]), "--batch-end-index", str(executor.batch_range[1])]


def master_argv(plan: Plan, *, redis_host: str, redis_port: int, password_file: Path | str,
                batches_dir: Path | str, vocab_path: Path | str, scores_path: Path | str,
                checkpoint_path: Path | str) -> list[str]:
    """Arguments (no program name) of the master."""
    config = plan.config
    checkpoints = (["--checkpoint-path", str(checkpoint_path), "--checkpoint-every", str(config.checkpoint_every)]
                   if config.checkpoint_every else [])
    return [*_common(plan, redis_host, redis_port, password_file, batches_dir, vocab_path),
            "--num-outer-iter", str(config.iterations), "--num-executors", str(len(plan.executors)),
            "--num-executor-threads", str(config.threads),
            "--show-top-tokens", "1" if config.show_top_tokens else "0",
            "--scores-path", str(scores_path)] + checkpoints + _online(config) + _model(config)


def _model(config) -> list[str]:
    """Regularizers, class weights and the score set (nothing when they are the defaults)."""
    argv = []
    for regularizer in config.regularizers:
        argv += ["--regularizer", regularizer.shorthand()]
    for class_id, weight in config.class_ids.items():
        argv += ["--class-id", f"{class_id}={weight!r}"]
    if config.scores != "all":
        argv += ["--scores", config.scores]
    if (config.max_restarts, config.restart_timeout) != (DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_TIMEOUT):
        argv += ["--max-restarts", str(config.max_restarts), "--restart-timeout", f"{config.restart_timeout:g}"]
    return argv


def _online(config) -> list[str]:
    """The master's online flags (none in offline mode, so offline command lines stay as they were)."""
    if config.mode == "offline":
        return []
    return ["--mode", config.mode, "--update-every", str(config.update_every), "--tau0", repr(float(config.tau0)),
            "--kappa", repr(float(config.kappa))]
