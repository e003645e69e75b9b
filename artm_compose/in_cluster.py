"""Jobs that run inside a cluster's own network, in a container of the artm image.

The host may not reach container addresses (Docker Desktop, remote engines), so the container
runtimes never talk to Redis from the host: they run ``python3 -m artm_compose.in_cluster JOB``
on the cluster network with the state directory mounted and the password of the job's Redis user
(``acl.JOB_USERS``: the admin for bootstrap only) as a secret file.
Each job prints one JSON document on stdout and exits non-zero on failure (message on stderr). The
local runtime, whose Redis nodes this machine reaches, runs the same jobs in its own process
(:func:`parse_job`, :func:`run_job`).

- ``bootstrap``: assign slots, join the nodes, wait until healthy (idempotent; heals restarts).
- ``probe``: cluster state, slots assigned, problems and the training's progress, changing nothing.
- ``export``: write the trained model to a file in this container (the runtime copies it out).
- ``transform``: theta of a batch directory under the committed model (shares computed in parallel
  threads), written to a file in this container (:mod:`artm_compose.engine.transform`).
- ``scale``: ask the running training's master to go on with ``--executors`` executors after its
  current pass (:func:`artm_compose.engine.protocol.request_scale`); the request's id.
- ``control``: ``bootstrap``, then mark the container ready and stay as an idle ``sleep``, so that
  later jobs start with ``docker exec`` (a fraction of a second) instead of a new container (seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from artm_compose.acl import JOB_USERS, Login
from artm_compose.bootstrap import bootstrap, check_health
from artm_compose.engine.protocol import probe_progress, request_scale
from artm_compose.errors import ArtmComposeError
from artm_compose.record import ClusterRecord
from artm_compose.redis_client import cluster_client
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import StateDir, read_password

BOOTSTRAP_TIMEOUT = 60.0
READY_FILE = Path("/tmp/artm-compose-ready")


def run_bootstrap(state: StateDir, login: Login, timeout: float) -> dict[str, Any]:
    """Bootstrap the cluster described in ``state`` (as the admin); the actions taken and the time."""
    report = bootstrap(ClusterRecord.load(state).targets, login.password, timeout=timeout,
                       echo=lambda action: print(action, file=sys.stderr, flush=True))
    return {"actions": list(report.actions), "seconds": round(report.seconds, 3)}


def run_probe(state: StateDir, login: Login) -> dict[str, Any]:
    """The cluster's health as every node sees it and the training's progress, without changing anything."""
    record = ClusterRecord.load(state)
    targets = record.targets
    health = check_health(targets, login.password, username=login.username)
    info = health.summary_info()
    training = None
    # Not only when the record names a training: the Swarm jobs read the stack's nodes document, which
    # has none. Without a run the progress is None anyway.
    if info.get("cluster_state") == "ok":
        training = probe_progress(record.addresses, login.password, record.cluster, username=login.username)
    return {"nodes_up": health.nodes_up, "nodes": len(targets),
            "cluster_state": info.get("cluster_state", "unknown"),
            "slots_assigned": int(info.get("cluster_slots_assigned", 0)),
            "slot_count": SLOT_COUNT, "problems": list(health.problems), "training": training,
            "roles": health.roles()}


def run_export(state: StateDir, login: Login, vocab_path: Path, out: Path) -> dict[str, Any]:
    """Write the committed model of the cluster to ``out`` (``.npz`` or ``.csv``)."""
    from artm_compose.engine.export import export_model

    record = ClusterRecord.load(state)
    client = cluster_client(record.addresses, login.password, username=login.username)
    try:
        written = export_model(client, record.cluster, vocab_path, out)
    finally:
        client.close()
    return {"path": str(written)}


def run_transform(state: StateDir, login: Login, args: argparse.Namespace) -> dict[str, Any]:
    """Write theta of ``args.data_path`` under the committed model to ``args.out``."""
    from artm_compose.engine.transform import ThetaSettings, transform, write_theta

    record = ClusterRecord.load(state)
    client = cluster_client(record.addresses, login.password, username=login.username)
    try:
        theta = transform(client, record.cluster, args.vocab_path, args.data_path, args.shares,
                          args.inner, args.parallel, ThetaSettings.from_config(record.config))
    finally:
        client.close()
    written = write_theta(theta, args.out)
    return {"path": str(written), "documents": int(len(theta.items)), "skipped_weight": theta.skipped_weight}


def parse_shares(text: str) -> list[tuple[int, int]]:
    """``0:8,8:16`` -> [(0, 8), (8, 16)]."""
    try:
        return [(int(a), int(b)) for a, b in (part.split(":") for part in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shares {text!r}: expected BEGIN:END,BEGIN:END,...") from None


def become_idle(ready_file: Path) -> None:
    """Mark the bootstrap done and replace this process by ``sleep`` (no Python left in memory)."""
    ready_file.touch()
    os.execvp("sleep", ["sleep", "infinity"])


def parse_job(argv: list[str]) -> argparse.Namespace:
    """A job's command line: ``JOB --state-dir DIR --password-file FILE [options]``."""
    parser = argparse.ArgumentParser(prog="python3 -m artm_compose.in_cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=("bootstrap", "probe", "control", "export", "transform", "scale"))
    parser.add_argument("--state-dir", type=Path, required=True, help="the mounted state directory")
    parser.add_argument("--password-file", type=Path, required=True,
                        help="the password of the job's Redis user (acl.JOB_USERS), one line")
    parser.add_argument("--timeout", type=float, default=BOOTSTRAP_TIMEOUT, help="bootstrap time limit (s)")
    parser.add_argument("--ready-file", type=Path, default=READY_FILE, help="control: touched once bootstrapped")
    parser.add_argument("--vocab-path", type=Path, help="export: the vocabulary as mounted here")
    parser.add_argument("--out", type=Path, help="export, transform: the file to write (.npz or .csv)")
    parser.add_argument("--data-path", type=Path, help="transform: the batch directory as mounted here")
    parser.add_argument("--shares", type=parse_shares, help="transform: batch ranges BEGIN:END,... computed in parallel")
    parser.add_argument("--inner", type=int, default=10, help="transform: document passes (inner iterations)")
    parser.add_argument("--parallel", type=int, default=1, help="transform: shares computed at once")
    parser.add_argument("--executors", type=int, help="scale: the executor count to go on with")
    args = parser.parse_args(argv)
    if args.job in ("export", "transform") and (args.vocab_path is None or args.out is None):
        parser.error(f"{args.job} needs --vocab-path and --out")
    if args.job == "transform" and (args.data_path is None or args.shares is None):
        parser.error("transform needs --data-path and --shares")
    if args.job == "scale" and (args.executors is None or args.executors < 1):
        parser.error("scale needs --executors N (N >= 1)")
    return args


def run_job(args: argparse.Namespace) -> dict[str, Any]:
    """Run the job ``args`` names (``control`` bootstraps; becoming idle is the caller's part); its result."""
    state = StateDir.at(args.state_dir)
    login = Login(JOB_USERS[args.job], read_password(args.password_file))
    if args.job == "probe":
        return run_probe(state, login)
    if args.job == "export":
        return run_export(state, login, args.vocab_path, args.out)
    if args.job == "transform":
        return run_transform(state, login, args)
    if args.job == "scale":
        return run_scale(state, login, args.executors)
    return run_bootstrap(state, login, args.timeout)


def run_scale(state: StateDir, login: Login, executors: int) -> dict[str, Any]:
    record = ClusterRecord.load(state)
    client = cluster_client(record.addresses, login.password, username=login.username)
    try:
        return {"request": request_scale(client, record.cluster, executors)}
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_job(sys.argv[1:] if argv is None else argv)
    try:
        result = run_job(args)
    except ArtmComposeError as error:
        print(f"{args.job}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    if args.job == "control":
        become_idle(args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
