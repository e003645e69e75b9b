"""The built images, for real: build (from nothing on a fresh machine), cache hit, Redis and artm containers.

Every container started here carries ``artm-compose.cluster=test-images`` and is removed by that label.
The images themselves are the shared, content-tagged ones (the compose tests reuse them): building a
private copy would double the slowest step of CI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
import redis
from docker.models.containers import Container

from artm_compose.errors import RuntimeUnavailable
from artm_compose.images.base import ROLE_LABEL, base_tag
from artm_compose.images.build import ImageTags, build_images, default_cache_dir, prune_images, source_root
from support.images import snapshot_sources

pytestmark = [pytest.mark.containers, pytest.mark.timeout(2400)]

LABELS = {"artm-compose.cluster": "test-images"}
PASSWORD = "fedcba9876543210fedcba9876543210"
HEALTH_TIMEOUT = 60.0
CACHED_BUILD_LIMIT = 15.0
NUMBA_PROGRAM = """
from numba import njit

@njit(cache=True)
def twice(x):
    return 2 * x

print(twice(21))
"""


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=900)
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"Docker is not available: {error}")
    _remove_test_containers(client)
    yield client
    _remove_test_containers(client)
    client.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the build inputs: the cache-hit check must not see edits made during the run."""
    return snapshot_sources(tmp_path_factory.mktemp("sources"))


def _build(client: docker.DockerClient, sources: Path, echo: Callable[[str], None]) -> ImageTags:
    return build_images(echo=echo, client=client, root=sources, cache_dir=default_cache_dir(source_root()))


@pytest.fixture(scope="module")
def built(client: docker.DockerClient, sources: Path) -> tuple[ImageTags, list[str], float]:
    """The images, built here if missing (on a fresh machine: base, wheelhouse and both images)."""
    lines: list[str] = []
    began = time.monotonic()
    try:
        tags = _build(client, sources, lines.append)
    except RuntimeUnavailable as error:
        pytest.skip(str(error))
    return tags, lines, time.monotonic() - began


def _remove_test_containers(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": "artm-compose.cluster=test-images"}):
        container.remove(force=True)


def test_build_reports_progress_and_a_second_build_is_a_cache_hit(client, built, sources: Path) -> None:
    tags, lines, _ = built
    assert all(line.startswith("[") and "s] " in line for line in lines), lines
    began = time.monotonic()
    again: list[str] = []
    assert _build(client, sources, again.append) == tags
    elapsed = time.monotonic() - began
    assert elapsed < CACHED_BUILD_LIMIT, f"cached build took {elapsed:.1f}s: {again}"
    assert len(again) == 1 and "images up to date" in again[0], again


def test_images_carry_their_role(client, built) -> None:
    tags, _, _ = built
    assert client.images.get(tags.redis).labels[ROLE_LABEL] == "redis"
    assert client.images.get(tags.artm).labels[ROLE_LABEL] == "artm"
    assert client.images.get(base_tag()).labels[ROLE_LABEL] == "base"


def _derived_image(client: docker.DockerClient, base: str, tag: str) -> str:
    """A new image (own id, same role label) committed from a container of ``base``; returns its id."""
    container = client.containers.create(base, labels=LABELS)
    try:
        return container.commit("artm-compose/redis", tag).id
    finally:
        container.remove(force=True)


def test_prune_untags_only_unused_images_outside_keep(client, built) -> None:
    tags, _, _ = built
    stale, in_use = "artm-compose/redis:prune-test-stale", "artm-compose/redis:prune-test-in-use"
    _derived_image(client, tags.redis, "prune-test-stale")
    _derived_image(client, tags.redis, "prune-test-in-use")
    holder = client.containers.create(in_use, labels=LABELS)
    try:
        # Keep every other tag on this machine, so that no one else's image is touched.
        keep = {tag for found in client.images.list() for tag in found.tags} - {stale, in_use}
        assert prune_images(client, keep=keep, echo=lambda line: None) == [stale]
        assert in_use in client.images.get(in_use).tags
        assert client.images.get(tags.redis)
    finally:
        holder.remove(force=True)
        for tag in (stale, in_use):
            if client.images.list(name=tag):
                client.images.remove(tag)


def _wait_healthy(container: Container) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while True:
        container.reload()
        state = container.attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if not state["Running"] or time.monotonic() > deadline:
            pytest.fail(f"container {container.name} not healthy within {HEALTH_TIMEOUT}s "
                        f"(state {state.get('Status')}, health {state.get('Health', {}).get('Status')}):\n"
                        f"{container.logs().decode(errors='replace')}")
        time.sleep(0.2)


@pytest.mark.parametrize("layout", ["bind-mounted node dir, image user", "tmpfs node dir, host-like uid"])
def test_redis_container_is_a_password_protected_cluster_node(client, built, tmp_path: Path, layout: str) -> None:
    tags, _, _ = built
    password_file = tmp_path / "redis_password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o644)
    mounts = {str(password_file): {"bind": "/run/secrets/redis_password", "mode": "ro"}}
    options: dict = {}
    node_dir = tmp_path / "node"
    if layout.startswith("bind"):
        node_dir.mkdir()
        node_dir.chmod(0o777)
        for stale in ("nodes.conf", "dump.rdb"):
            (node_dir / stale).write_text("stale\n")
        mounts[str(node_dir)] = {"bind": "/data", "mode": "rw"}
    else:
        options = {"tmpfs": {"/data": ""}, "user": "4321:4321"}
    container = client.containers.run(tags.redis, detach=True, labels=LABELS, environment={"REDIS_PORT": "7100"},
                                      volumes=mounts, **options)
    _wait_healthy(container)
    address = container.attrs["NetworkSettings"]["IPAddress"]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=address, port=7100, socket_timeout=5).ping()
    node = redis.Redis(host=address, port=7100, password=PASSWORD, socket_timeout=5)
    assert node.info("cluster")["cluster_enabled"] == 1
    assert node.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}

    config = container.attrs["Config"]
    assert PASSWORD not in repr((config["Env"], config["Cmd"], config["Entrypoint"]))
    command_line = container.exec_run(["cat", "/proc/1/cmdline"]).output.decode()
    assert command_line.startswith("redis-server") and PASSWORD not in command_line
    listing = container.exec_run(["ls", "/data"]).output.decode().split()
    assert sorted(listing) == ["nodes.conf", "redis.conf"]
    if layout.startswith("bind"):
        assert (node_dir / "nodes.conf").read_text() != "stale\n" and not (node_dir / "dump.rdb").exists()
    # redis-server is PID 1 (the entrypoint execs it): SIGTERM shuts it down cleanly, not a SIGKILL (137).
    container.stop(timeout=30)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode(errors="replace")


def _run_artm(client: docker.DockerClient, image: str, command: list[str], user: str | None = None) -> str:
    options = {"user": user} if user else {}
    output = client.containers.run(image, command, remove=True, labels=LABELS, network_disabled=True,
                                   stdout=True, stderr=True, **options)
    return output.decode()


def test_artm_container_has_the_package_and_engine_without_network(client, built) -> None:
    tags, _, _ = built
    output = _run_artm(client, tags.artm, ["python", "-c", "import artm_compose, numba, redis; print('imported')"])
    assert output.strip() == "imported"


@pytest.mark.parametrize("user", [None, "4321:4321"])
def test_numba_cache_is_writable_by_any_uid(client, built, user: str | None) -> None:
    tags, _, _ = built
    script = (f"cat > /tmp/kernel.py <<'EOF'\n{NUMBA_PROGRAM}\nEOF\n"
              "python /tmp/kernel.py && find \"$NUMBA_CACHE_DIR\" -name '*.nbi' | wc -l")
    output = _run_artm(client, tags.artm, ["sh", "-c", script], user=user).split()
    assert output[0] == "42" and int(output[-1]) >= 1, output


def test_engine_kernel_is_compiled_into_the_image(client, built) -> None:
    tags, _, _ = built
    warm = ["python", "-c", "from artm_compose.engine.kernel import warm_up; warm_up()"]
    loaded = client.containers.run(tags.artm, warm, remove=True, labels=LABELS, network_disabled=True,
                                   environment={"NUMBA_DEBUG_CACHE": "1"}, user="4321:4321").decode()
    assert "data loaded from" in loaded and "data saved to" not in loaded, loaded
    # Another CPU target misses the image's entries: numba compiles and rewrites the index as this uid.
    saved = client.containers.run(tags.artm, warm, remove=True, labels=LABELS, network_disabled=True,
                                  environment={"NUMBA_DEBUG_CACHE": "1", "NUMBA_CPU_NAME": "generic"},
                                  user="4321:4321").decode()
    assert "data saved to" in saved, saved


@pytest.mark.parametrize("program", ["artm-compose", "artm-compose-executor", "artm-compose-master"])
def test_artm_container_runs_every_console_script(client, built, program: str) -> None:
    tags, _, _ = built
    output = _run_artm(client, tags.artm, [program, "--help"])
    assert "usage" in output.lower(), output
