"""Swarm test helpers: Swarm mode for a test module, what a cluster left behind, and a Swarm of several
nodes on this one machine, each a Docker daemon in a container (Docker-in-Docker).

Docker-in-Docker normally runs with ``--privileged``. On an engine whose own capability bounding set
lacks some capabilities (this machine's dockerd runs without CAP_SYS_RESOURCE), ``--privileged`` fails
in runc ("unable to apply caps: operation not permitted"); the nodes then get every capability the
engine has, seccomp and AppArmor unconfined, no masked or read-only /proc paths, /dev/fuse and a
writable cgroup file system, which is what the inner daemon needs.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, DockerException

from artm_compose import labels
from artm_compose.images.base import base_tag, image_exists
from artm_compose.images.build import source_root
from artm_compose.images.fingerprint import Fingerprint
from artm_compose.runtimes.swarm.assign import label_prefix

GATEWAY_BRIDGE = "docker_gwbridge"
NODE_CONTEXT = Path("docker/dind")
NODE_REPOSITORY = "artm-compose/swarm-node"
NODE_READY_TIMEOUT = 90.0
LOAD_TIMEOUT = 600
# Capability names by number, as Docker 20.10 knows them (it refuses BPF, PERFMON, CHECKPOINT_RESTORE).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
)


@contextmanager
def swarm_mode(client: docker.DockerClient, advertise: str = "127.0.0.1") -> Iterator[str]:
    """The engine's Swarm node id; initialises a single-node Swarm if needed and leaves it afterwards."""
    if client.info()["Swarm"]["LocalNodeState"] == "active":
        yield client.info()["Swarm"]["NodeID"]
        return
    had_bridge = bool(client.networks.list(names=[GATEWAY_BRIDGE]))
    _docker("swarm", "init", "--advertise-addr", advertise)
    try:
        yield client.info()["Swarm"]["NodeID"]
    finally:
        _docker("swarm", "leave", "--force")
        if not had_bridge:
            # Swarm mode creates this bridge and leaves it behind when the node leaves.
            for network in client.networks.list(names=[GATEWAY_BRIDGE]):
                network.remove()


def swarm_leftovers(client: docker.DockerClient, cluster: str) -> list[str]:
    """Every Docker object and node label of ``cluster`` made by the swarm runtime."""
    selector = {"label": labels.selector(cluster, "swarm")}
    found = [f"service {s.name}" for s in client.services.list(filters=selector)]
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=selector, sparse=True)]
    for kind, collection in (("network", client.networks), ("secret", client.secrets), ("config", client.configs)):
        found += [f"{kind} {item.name}" for item in collection.list(filters=selector)]
    for node in client.nodes.list():
        found += [f"label {key} on {node.attrs['Description']['Hostname']}"
                  for key in node.attrs["Spec"].get("Labels") or {} if key.startswith(label_prefix(cluster))]
    return found


def _docker(*arguments: str) -> None:
    subprocess.run(["docker", *arguments], check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class SwarmNodeContainer:
    """One Docker-in-Docker Swarm node: its container, hostname, socket on the host and bridge address."""

    container: str
    hostname: str
    socket: Path
    address: str

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, timeout=120)


def node_image(client: docker.DockerClient) -> str:
    """The Swarm node image (base image + Debian's docker.io), built if missing; tagged by content."""
    root = source_root()
    context = root / NODE_CONTEXT
    base = base_tag()
    if not image_exists(client, base):
        raise RuntimeError(f"base image {base} is missing: build the project's images first (build_images)")
    tag = f"{NODE_REPOSITORY}:{Fingerprint().add_text('base', base).add_tree('context', context).hexdigest()}"
    if image_exists(client, tag):
        return tag
    output = []
    for chunk in client.api.build(path=str(context), tag=tag, buildargs={"BASE_IMAGE": base}, rm=True,
                                  forcerm=True, pull=False, decode=True):
        if "error" in chunk:
            raise RuntimeError(f"building {tag} failed: {chunk['error']}\n" + "".join(output[-20:]))
        output.append(chunk.get("stream", ""))
    return tag


def engine_capabilities() -> list[str]:
    """Capabilities in the engine's bounding set (the dockerd process must be on this machine)."""
    pid = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=True).stdout.split()[0]
    status = Path(f"/proc/{pid}/status").read_text()
    bounding = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")), 16)
    return [name for bit, name in enumerate(CAPABILITIES) if bounding >> bit & 1]


def privileged_works(client: docker.DockerClient, image: str, marks: dict[str, str]) -> str | None:
    """None if --privileged containers start on this engine, else the engine's error."""
    container = client.containers.create(image, ["true"], entrypoint=[], privileged=True, labels=marks)
    try:
        container.start()
        container.wait(timeout=60)
    except (APIError, DockerException) as error:
        return str(error)
    finally:
        container.remove(force=True)
    return None


@contextmanager
def dind_swarm(client: docker.DockerClient, count: int, name: str, work: Path, shared: list[Path],
               images: list[str]) -> Iterator[list[SwarmNodeContainer]]:
    """``count`` Docker-in-Docker nodes joined in one Swarm (node 0 is the manager), each with ``images``
    loaded and every path in ``shared`` mounted at the same path; everything is removed afterwards.

    All containers, volumes and the network carry ``artm-compose.cluster=<name>``.
    """
    image = node_image(client)
    marks = {labels.CLUSTER: name}
    with ExitStack() as cleanup:
        network = client.networks.create(f"{name}-nodes", driver="bridge", labels=marks)
        cleanup.callback(network.remove)
        refusal = privileged_works(client, image, marks)
        privileges = ({"privileged": True} if refusal is None else
                      {"cap_add": engine_capabilities(), "devices": ["/dev/fuse:/dev/fuse:rwm"],
                       "security_opt": ["seccomp=unconfined", "apparmor=unconfined"]})
        nodes = []
        for index in range(count):
            hostname = f"{name}-node-{index}"
            volume = client.volumes.create(f"{hostname}-docker", labels=marks)
            cleanup.callback(volume.remove, force=True)
            socket_dir = work / f"node-{index}"
            socket_dir.mkdir(parents=True)
            binds = [f"{volume.name}:/var/lib/docker", f"{socket_dir}:/dind", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                     *(f"{path}:{path}:rw" for path in shared)]
            host_config = client.api.create_host_config(binds=binds, tmpfs={"/run": ""}, network_mode=network.name,
                                                        **privileges)
            if refusal is not None:
                # What `--security-opt systempaths=unconfined` does (docker-py has no parameter for it).
                host_config.update(MaskedPaths=[], ReadonlyPaths=[])
            created = client.api.create_container(image, name=hostname, hostname=hostname, labels=marks,
                                                  host_config=host_config)
            cleanup.callback(_remove_container, client, created["Id"])
            client.api.start(created["Id"])
            container = client.containers.get(created["Id"])
            address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
            nodes.append(SwarmNodeContainer(hostname, hostname, socket_dir / "docker.sock", address))
        for node in nodes:
            _wait_ready(node, client)
        manager = nodes[0].client()
        manager.swarm.init(advertise_addr=nodes[0].address, listen_addr=f"{nodes[0].address}:2377")
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        for node in nodes[1:]:
            node.client().swarm.join(remote_addrs=[f"{nodes[0].address}:2377"], join_token=token,
                                     advertise_addr=node.address, listen_addr=f"{node.address}:2377")
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda node: _load_images(node, images), nodes))
        yield nodes


def _wait_ready(node: SwarmNodeContainer, outer: docker.DockerClient) -> None:
    deadline = time.monotonic() + NODE_READY_TIMEOUT
    while True:
        try:
            node.client().ping()
            return
        except DockerException as error:
            if time.monotonic() > deadline:
                logs = outer.containers.get(node.container).logs(tail=20).decode(errors="replace")
                raise RuntimeError(f"Docker in {node.container} did not answer within {NODE_READY_TIMEOUT:g} s "
                                   f"({error}); its last lines:\n{logs}") from None
            time.sleep(0.5)


def _load_images(node: SwarmNodeContainer, images: list[str]) -> None:
    """``docker save IMAGES | docker -H NODE load``: each node has its own image store."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout, capture_output=True, text=True,
                          timeout=LOAD_TIMEOUT, env={**os.environ, "DOCKER_HOST": node.docker_host}, check=False)
    save.stdout.close()
    if save.wait(timeout=LOAD_TIMEOUT) != 0 or load.returncode != 0:
        raise RuntimeError(f"loading {images} into {node.container} failed: {load.stderr.strip()}")


def _remove_container(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.containers.get(container_id).remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
