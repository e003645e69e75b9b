"""The Redis image's entrypoint and healthcheck scripts, run on this host against its redis-server.

The scripts are POSIX sh over redis-server and redis-cli, so the host runs them as the container
would; the container tests (test_images.py) check the same contract inside the built image.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from artm_compose.images.build import source_root
from support.ports import free_port_block, requires_redis

ENTRYPOINT = source_root() / "docker" / "artm-redis-entrypoint"
HEALTHCHECK = source_root() / "docker" / "artm-redis-healthcheck"
PASSWORD = "0123456789abcdef0123456789abcdef"
START_TIMEOUT = 10.0


def _environment(node_dir: Path, password_file: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "REDIS_NODE_DIR": str(node_dir), "REDIS_PASSWORD_FILE": str(password_file),
            **extra}


def _run(node_dir: Path, password_file: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ENTRYPOINT)], env=_environment(node_dir, password_file, **extra),
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, Path]:
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    return node_dir, password_file


@pytest.mark.parametrize(("extra", "message"), [
    ({"REDIS_PORT": "70a0"}, "REDIS_PORT=70a0 is not a port number"),
    ({"REDIS_PORT": "60000"}, "REDIS_PORT=60000 is out of range"),
    ({"REDIS_NODE_TIMEOUT": "5s"}, "REDIS_NODE_TIMEOUT=5s is not a number"),
])
def test_bad_settings_are_refused_by_name(node: tuple[Path, Path], extra: dict[str, str], message: str) -> None:
    result = _run(*node, **extra)
    assert result.returncode == 64 and message in result.stderr


@pytest.mark.parametrize("password", ["two words", 'quo"te', "back\\slash", ""])
def test_unusable_passwords_are_refused(node: tuple[Path, Path], password: str) -> None:
    node[1].write_text(password)
    result = _run(*node)
    assert result.returncode == 64 and "password" in result.stderr


def test_a_rendered_conf_needs_a_password_file(node: tuple[Path, Path]) -> None:
    node_dir, password_file = node
    password_file.unlink()
    result = _run(node_dir, password_file)
    assert result.returncode == 64 and f"no password file at {password_file}" in result.stderr


@pytest.fixture
def started(node: tuple[Path, Path]) -> Iterator[tuple[Path, Path, int, subprocess.Popen[str]]]:
    node_dir, password_file = node
    (node_dir / "nodes.conf").write_text("stale cluster state\n")
    (node_dir / "dump.rdb").write_text("stale dump\n")
    (node_dir / "appendonlydir").mkdir()
    port = free_port_block(1)
    process = subprocess.Popen(["sh", str(ENTRYPOINT)], text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=_environment(node_dir, password_file, REDIS_PORT=str(port)))
    client = redis.Redis(port=port, password=PASSWORD)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                output = process.communicate()[0]
                pytest.fail(f"redis-server on port {port} did not answer within {START_TIMEOUT}s:\n{output}")
            time.sleep(0.05)
    try:
        yield node_dir, password_file, port, process
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.integration
@requires_redis
def test_entrypoint_empties_the_node_dir_and_feeds_the_password_on_stdin(started) -> None:
    node_dir, password_file, port, process = started
    assert sorted(p.name for p in node_dir.iterdir()) == ["nodes.conf", "redis.conf"]
    assert "stale" not in (node_dir / "nodes.conf").read_text()
    conf = (node_dir / "redis.conf").read_text()
    assert f"port {port}\n" in conf and "cluster-enabled yes\n" in conf and PASSWORD not in conf
    # exec: redis-server is the entrypoint's own process, and the password is on no command line.
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    assert command_line.startswith("redis-server") and PASSWORD not in command_line
    assert PASSWORD not in Path(f"/proc/{process.pid}/environ").read_bytes().decode()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    client = redis.Redis(port=port, password=PASSWORD)
    assert client.info("cluster")["cluster_enabled"] == 1
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}

    environment = _environment(node_dir, password_file)
    healthy = subprocess.run(["sh", str(HEALTHCHECK)], env=environment, capture_output=True, text=True, timeout=10)
    assert healthy.returncode == 0, healthy.stderr
    password_file.write_text("wrong-password")
    unhealthy = subprocess.run(["sh", str(HEALTHCHECK)], env=environment, capture_output=True, text=True, timeout=10)
    assert unhealthy.returncode == 1 and "did not answer PING" in unhealthy.stderr


@pytest.mark.integration
@requires_redis
def test_a_conf_not_written_by_the_entrypoint_is_used_as_it_is(node: tuple[Path, Path]) -> None:
    node_dir, password_file = node
    port = free_port_block(1)
    mounted = f"port {port}\nbind 127.0.0.1\ncluster-enabled yes\ndir {node_dir}\nsave \"\"\nmaxmemory-policy noeviction\n"
    (node_dir / "redis.conf").write_text(mounted)
    process = subprocess.Popen(["sh", str(ENTRYPOINT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=_environment(node_dir, password_file, REDIS_PORT="7000"))  # ignored
    try:
        client = redis.Redis(port=port, password=PASSWORD)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                assert client.info("cluster")["cluster_enabled"] == 1
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server with the mounted conf did not answer on port {port}")
                time.sleep(0.05)
        assert (node_dir / "redis.conf").read_text() == mounted
    finally:
        process.terminate()
        process.wait(timeout=10)
