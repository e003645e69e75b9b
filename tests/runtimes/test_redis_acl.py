"""The limits of the training user and the reader on a real local Redis Cluster: only their cluster's keys, only
the commands they need (the reader: reads only).

Marked ``integration``: starts redis-server processes (the local runtime) and talks to them.
"""

from __future__ import annotations

import pytest
from redis.exceptions import AuthenticationError, NoPermissionError

from artm_compose.acl import JOB_USERS, READER_USER, TRAINING_USER
from artm_compose.redis_client import cluster_client, node_client
from artm_compose.state import read_password
from support.ports import requires_redis

pytestmark = [pytest.mark.integration, requires_redis]

# What an engine process must never do to a cluster: wipe it, reconfigure it, stall it, list or script it,
# change users, take a node out of the cluster or stop it.
REFUSED = [
    ("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "requirepass"), ("CONFIG", "SET", "maxmemory", "1"),
    ("DEBUG", "SLEEP", "0"), ("KEYS", "*"), ("SCAN", "0"), ("ACL", "LIST"), ("ACL", "SETUSER", TRAINING_USER, "+@all"),
    ("EVAL", "return 1", "0"), ("CLUSTER", "RESET"), ("CLUSTER", "FORGET", "0" * 40), ("SHUTDOWN", "NOSAVE"),
    ("SUBSCRIBE", "ac:test:channel"), ("MONITOR",), ("MIGRATE", "127.0.0.1", "1", "ac:test:x", "0", "1000"),
]
# Those it may send, to its own keys (a positive control of the rules the test reads).
ALLOWED = [("SET", "ac:test:x", "1", "PX", "100"), ("GETRANGE", "ac:test:x", "0", "3"), ("BLPOP", "ac:test:q", "1"),
           ("UNLINK", "ac:test:x"), ("INFO", "stats"), ("CLUSTER", "SLOTS")]
# Refused ones safe to really try: Redis would refuse them anyway if these tests broke the rules.
TRIED = [("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "SET", "maxmemory", "1"), ("KEYS", "*"),
         ("ACL", "SETUSER", TRAINING_USER, "+@all"), ("EVAL", "return 1", "0"), ("CLUSTER", "RESET")]


def training_login(cluster) -> tuple[str, str]:
    return TRAINING_USER, read_password(cluster.state.training_password_file)


def test_the_training_user_cannot_flush_configure_or_debug(local_cluster):
    cluster = local_cluster(nodes=2, name="test")
    admin_password = read_password(cluster.state.password_file)
    user, password = training_login(cluster)
    admin = cluster_client([(n.host, n.port) for n in cluster.plan.nodes], admin_password, decode_responses=True)
    try:
        admin.set("ac:test:kept", "1")
        admin.set("outside", "1")
        for node in cluster.plan.nodes:
            node_admin = node_client(node.host, node.port, admin_password)
            for command in REFUSED:  # as each node's ACL judges it, without running it
                verdict = node_admin.execute_command("ACL", "DRYRUN", user, *command)
                assert "no permissions" in verdict, (command, verdict)
            for command in ALLOWED:
                assert node_admin.execute_command("ACL", "DRYRUN", user, *command) == "OK", command
            client = node_client(node.host, node.port, password, username=user)
            assert client.ping()
            for command in TRIED:
                with pytest.raises(NoPermissionError):
                    client.execute_command(*command)
        assert admin.get("ac:test:kept") == "1" and admin.get("outside") == "1"  # nothing was flushed
        first = cluster.plan.nodes[0]
        assert node_client(first.host, first.port, admin_password).config_get("maxmemory")["maxmemory"] == "0"
    finally:
        admin.close()


def test_the_training_user_touches_only_its_clusters_keys(local_cluster):
    here = local_cluster(nodes=2, name="test")
    there = local_cluster(nodes=1, name="other")
    user, password = training_login(here)
    client = cluster_client([(n.host, n.port) for n in here.plan.nodes], password, username=user,
                            decode_responses=True)
    try:
        client.set("ac:test:model", "mine")
        assert client.get("ac:test:model") == "mine"
        for key in ("ac:other:model", "ac:testing:model", "model", "ac:test"):  # another cluster's, or none's
            with pytest.raises(NoPermissionError):
                client.set(key, "theirs")
            with pytest.raises(NoPermissionError):
                client.get(key)
        with pytest.raises(NoPermissionError):
            client.blpop(["ac:other:q:run:0"], timeout=0.1)
    finally:
        client.close()
    # Every cluster has its own training password: this one's does not open another cluster's nodes.
    node = there.plan.nodes[0]
    with pytest.raises(AuthenticationError):
        node_client(node.host, node.port, password, username=user).ping()
    assert read_password(there.state.training_password_file) != password


# What the reader (probes, export, transform, the dashboard) must never do: anything above, and write.
WRITES = [("SET", "ac:test:x", "1"), ("DEL", "ac:test:kept"), ("UNLINK", "ac:test:kept"), ("RPUSH", "ac:test:q", "1"),
          ("EXPIRE", "ac:test:kept", "1"), ("BLPOP", "ac:test:q", "1"), ("LRANGE", "ac:test:q", "0", "-1"),
          ("PTTL", "ac:test:kept"), ("DBSIZE",)]
# What it sends: the progress record, heartbeats and model (GET, GETRANGE), the nodes' state.
READS = [("GET", "ac:test:kept"), ("GETRANGE", "ac:test:kept", "0", "3"), ("INFO",), ("CLUSTER", "INFO"),
         ("CLUSTER", "NODES"), ("CLUSTER", "SLOTS"), ("PING",)]


def test_the_reader_only_reads_its_clusters_keys(local_cluster):
    cluster = local_cluster(nodes=2, name="test")
    admin_password = read_password(cluster.state.password_file)
    password = read_password(cluster.state.reader_password_file)
    admin = cluster_client([(n.host, n.port) for n in cluster.plan.nodes], admin_password, decode_responses=True)
    reader = cluster_client([(n.host, n.port) for n in cluster.plan.nodes], password, username=READER_USER,
                            decode_responses=True)
    try:
        admin.set("ac:test:kept", "1")
        admin.set("ac:other:model", "theirs")
        for node in cluster.plan.nodes:
            node_admin = node_client(node.host, node.port, admin_password)
            for command in [*REFUSED, *WRITES]:
                verdict = node_admin.execute_command("ACL", "DRYRUN", READER_USER, *command)
                assert "no permissions" in verdict, (command, verdict)
            for command in READS:
                assert node_admin.execute_command("ACL", "DRYRUN", READER_USER, *command) == "OK", command
            client = node_client(node.host, node.port, password, username=READER_USER)
            for command in TRIED:
                with pytest.raises(NoPermissionError):
                    client.execute_command(*command)
        assert reader.get("ac:test:kept") == "1"
        with pytest.raises(NoPermissionError):
            reader.set("ac:test:kept", "2")
        with pytest.raises(NoPermissionError):
            reader.delete("ac:test:kept")
        for key in ("ac:other:model", "ac:testing:model", "model"):
            with pytest.raises(NoPermissionError):
                reader.get(key)
        assert admin.get("ac:test:kept") == "1" and admin.get("ac:other:model") == "theirs"
    finally:
        admin.close()
        reader.close()


def test_status_needs_no_admin_password(local_cluster):
    """Status probes log in as the reader: they work without the admin's password, and no node logs a
    refused command or login (ACL LOG) for them."""
    cluster = local_cluster(nodes=2, name="test")
    admin_password = read_password(cluster.state.password_file)
    node_admins = [node_client(n.host, n.port, admin_password) for n in cluster.plan.nodes]
    for node_admin in node_admins:
        node_admin.execute_command("ACL", "LOG", "RESET")
    hidden = cluster.state.password_file.with_name("admin.password.hidden")
    cluster.state.password_file.rename(hidden)
    try:
        status = cluster.status()
    finally:
        hidden.rename(cluster.state.password_file)
    assert status.cluster_state == "ok" and status.slots_assigned == 16384, status
    assert all(node_admin.execute_command("ACL", "LOG") == [] for node_admin in node_admins)
    assert JOB_USERS["probe"] == READER_USER and JOB_USERS["bootstrap"] == "default"
