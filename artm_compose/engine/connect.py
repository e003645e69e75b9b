"""Flags and connection shared by the master and the executors."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from redis.cluster import RedisCluster
from redis.exceptions import AuthenticationError, NoPermissionError, RedisClusterException, RedisError

from artm_compose.errors import ArtmComposeError, TrainingError
from artm_compose.redis_client import cluster_client
from artm_compose.state import read_password

DEFAULT_HEARTBEAT_TIMEOUT = 30.0
DEFAULT_STARTUP_TIMEOUT = 300.0
# A failover takes cluster-node-timeout plus an election (about a second); longer node timeouts get more
# (failover_timeout).
DEFAULT_FAILOVER_TIMEOUT = 60.0
# Opening a connection to a Redis node. The node's kernel accepts it even while redis-server is busy or stopped,
# so inside the cluster's network that takes well under a millisecond; the address of a lost container never
# answers instead (no refusal: the connect times out), and redis-py tries a command again and again (up to 10
# times) until the cluster has failed over, each try costing this timeout: 2 s a try kept the engine waiting
# up to ~8 s on a failover that Redis had finished in ~5 s (BENCHMARKS.md, "A lost Redis primary").
CONNECT_TIMEOUT = 0.5


def failover_timeout(node_timeout_ms: int) -> float:
    """How long engine programs wait for a failover of a cluster with this ``cluster-node-timeout``."""
    return max(DEFAULT_FAILOVER_TIMEOUT, 4 * node_timeout_ms / 1000)


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """The reference's ``--redis-ip/--redis-port`` plus password, key namespace and timeouts."""
    parser.add_argument("--redis-ip", default="127.0.0.1", help="any node of the Redis Cluster")
    parser.add_argument("--redis-port", type=int, default=7000)
    parser.add_argument("--redis-user", help="Redis ACL user (default: Redis's default user)")
    parser.add_argument("--redis-password-file", type=Path, help="file holding the user's password")
    parser.add_argument("--cluster", default="artm", help="key namespace: ac:<cluster>:...")
    parser.add_argument("--heartbeat-timeout", type=float, default=DEFAULT_HEARTBEAT_TIMEOUT,
                        help="seconds of silence after which a process counts as dead")
    parser.add_argument("--startup-timeout", type=float, default=DEFAULT_STARTUP_TIMEOUT,
                        help="seconds to wait for Redis, the master, or the executors to appear")
    parser.add_argument("--failover-timeout", type=float, default=DEFAULT_FAILOVER_TIMEOUT,
                        help="seconds to wait for the Redis Cluster to serve every slot again after a lost node")


# Exit status of an engine program whose run is over (aborted by its master, or the master is gone):
# supervisors and restart policies do not restart it.
EXIT_FINAL = 3
# A lost executor may come back this many times per run; the master waits this long for it.
DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_TIMEOUT = 120.0


def run_or_exit(program: str, action: Callable[[], None]) -> None:
    """Run ``action``; a user-facing or Redis error ends the program with one line naming it and exit code 1
    (the master and the runtimes read that line from the log, so no traceback)."""
    try:
        action()
    except ArtmComposeError as error:
        print(f"{program}: error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except (RedisError, RedisClusterException) as error:
        print(f"{program}: error: Redis: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def check_timeouts(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.heartbeat_timeout <= 0:
        parser.error(f"--heartbeat-timeout={args.heartbeat_timeout} must be > 0")
    if args.startup_timeout <= 0:
        parser.error(f"--startup-timeout={args.startup_timeout} must be > 0")
    if args.failover_timeout <= 0:
        parser.error(f"--failover-timeout={args.failover_timeout} must be > 0")


def connect(args: argparse.Namespace, deadline: float) -> RedisCluster:
    """A cluster client, retrying until the cluster answers or ``deadline`` (monotonic) passes."""
    password = read_password(args.redis_password_file) if args.redis_password_file else None
    last_error = ""
    while True:
        try:
            client = cluster_client([(args.redis_ip, args.redis_port)], password, username=args.redis_user,
                                    timeout=max(10.0, args.heartbeat_timeout), connect_timeout=CONNECT_TIMEOUT)
            client.ping()
            return client
        except (RedisError, RedisClusterException, OSError) as error:
            last_error = str(error)
            if _refused(error):  # credentials or ACL rules: waiting changes nothing
                raise TrainingError(f"Redis Cluster at {args.redis_ip}:{args.redis_port} refused user "
                                    f"{args.redis_user or 'default'}: {last_error}") from None
        if time.monotonic() > deadline:
            raise TrainingError(f"Redis Cluster at {args.redis_ip}:{args.redis_port} did not answer before the "
                                f"start-up timeout: {last_error}")
        time.sleep(0.5)


def _refused(error: Exception) -> bool:
    """Whether Redis refused the login or a command by its ACL (redis-py reports a failed login while it
    maps the cluster as a RedisClusterException carrying Redis's message)."""
    return (isinstance(error, (AuthenticationError, NoPermissionError))
            or "invalid username-password pair" in str(error))
