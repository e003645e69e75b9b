"""The registry-less base image: a Debian root filesystem made by debootstrap, loaded with docker import.

No image can be pulled on a machine without a registry, but Debian's packages can be fetched from the
host's apt mirror. ``debootstrap --variant=minbase`` with redis-server, python3 and python3-venv makes
a root filesystem (about 40 s); security and point-release updates are applied in a chroot; caches,
apt lists, documentation and translations are removed; the tree is streamed as a tar into the daemon
(``docker import``). The result serves as ``BASE_IMAGE`` of both Dockerfiles.

The tag is a hash of this module (the recipe), so a changed recipe gives a new base while an
unchanged one is never rebuilt unless asked (``--no-cache``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import docker
from docker.errors import ImageNotFound

from artm_compose.errors import ImageBuildError, RuntimeUnavailable
from artm_compose.images.apt_sources import Mirrors, choose_mirrors, host_sources
from artm_compose.images.fingerprint import Fingerprint
from artm_compose.images.progress import Progress

SUITE = "bookworm"
PACKAGES = ("redis-server", "python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "artm-compose/base"
ROLE_LABEL = "artm-compose.image"
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    f"LABEL {ROLE_LABEL}=base",
    'CMD ["/bin/bash"]',
)
# Paths (relative to the root filesystem) whose contents the image does not need.
EMPTIED_DIRS = ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "usr/share/locale",
                "var/log")
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
DEBOOTSTRAP_TIMEOUT = 1800
DEBOOTSTRAP_ATTEMPTS = 3
APT_TIMEOUT = 900
CHUNK = 1 << 20
LOG_TAIL = 20


def base_tag() -> str:
    """The base image's tag: the suite plus a hash of this recipe."""
    recipe = Fingerprint().add_text("suite", SUITE).add_text("packages", " ".join(PACKAGES))
    recipe.add_file("recipe", Path(__file__))
    return f"{BASE_REPOSITORY}:{SUITE}-{recipe.hexdigest()}"


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    """Whether the daemon has an image under ``tag``."""
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def build_base_image(client: docker.DockerClient, work_dir: Path, progress: Progress,
                     mirrors: Mirrors | None = None) -> str:
    """Make the root filesystem under ``work_dir``, import it as :func:`base_tag`, and return the tag."""
    _check_prerequisites()
    tag = base_tag()
    mirrors = mirrors or choose_mirrors(host_sources(), SUITE)
    work_dir.mkdir(parents=True, exist_ok=True)
    rootfs = work_dir / f"rootfs-{tag.rpartition('-')[2]}"
    log = work_dir / "base-build.log"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    log.write_text("")
    try:
        with progress.step(f"base image: debootstrap {SUITE} from {mirrors.mirror} (log: {log})"):
            _debootstrap(rootfs, mirrors.mirror, log, progress)
        with progress.step("base image: security and point-release updates"):
            _upgrade(rootfs, mirrors, log)
        _slim(rootfs)
        with progress.step(f"base image: importing as {tag}"):
            _import(client, rootfs, tag)
    finally:
        if rootfs.exists():
            shutil.rmtree(rootfs)
    return tag


def _check_prerequisites() -> None:
    hint = "or build from a registry image: artm-compose build --base-image python:3.11-slim"
    if shutil.which("debootstrap") is None:
        raise RuntimeUnavailable(f"debootstrap is not installed (needed for the registry-less base image): "
                                 f"apt-get install debootstrap (scripts/setup.sh does it), {hint}")
    if os.geteuid() != 0:
        raise RuntimeUnavailable(f"the registry-less base image needs root (debootstrap uid={os.geteuid()}): "
                                 f"run the build as root, {hint}")


def _debootstrap(rootfs: Path, mirror: str, log: Path, progress: Progress) -> None:
    """debootstrap, tried again from an empty directory when it fails (mirrors drop connections)."""
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror]
    for attempt in range(1, DEBOOTSTRAP_ATTEMPTS + 1):
        try:
            _run(command, log, DEBOOTSTRAP_TIMEOUT, "debootstrap")
            return
        except ImageBuildError:
            if attempt == DEBOOTSTRAP_ATTEMPTS:
                raise
            progress.note(f"base image: debootstrap failed (attempt {attempt} of {DEBOOTSTRAP_ATTEMPTS}), "
                          f"trying again; see {log}")
            shutil.rmtree(rootfs, ignore_errors=True)


def _upgrade(rootfs: Path, mirrors: Mirrors, log: Path) -> None:
    (rootfs / "etc/apt/sources.list").write_text(mirrors.sources_list())
    # Package scripts must not try to start services inside the chroot.
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        retries = "-o=Acquire::Retries=3"
        for command in (["apt-get", "-q", retries, "update"], ["apt-get", "-q", "-y", retries, "upgrade"],
                        ["apt-get", "clean"]):
            _run(["chroot", str(rootfs), *command], log, APT_TIMEOUT, " ".join(command), env=CHROOT_ENV)
    finally:
        policy.unlink()


def _slim(rootfs: Path) -> None:
    for relative in EMPTIED_DIRS:
        for entry in (rootfs / relative).glob("*"):
            _remove(entry)
    # Licences stay (Debian ships them as usr/share/doc/<package>/copyright); the rest of the docs go.
    for entry in (rootfs / "usr/share/doc").glob("*/*"):
        if entry.name != "copyright":
            _remove(entry)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _import(client: docker.DockerClient, rootfs: Path, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    command = ["tar", "--numeric-owner", "-C", str(rootfs), "--exclude=./dev/*", "--exclude=./proc/*",
               "--exclude=./sys/*", "-cf", "-", "."]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tar:
        client.api.import_image(src=_chunks(tar.stdout), repository=repository, tag=version,
                                changes=list(IMAGE_CHANGES), stream_src=True)
        errors = tar.stderr.read().decode(errors="replace")
    if tar.returncode != 0 or not image_exists(client, tag):
        raise ImageBuildError(f"importing the base root filesystem {rootfs} as {tag} failed "
                              f"(tar exit {tar.returncode}): {errors.strip()[-500:]}")


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while data := stream.read(CHUNK):
        yield data


def _run(command: list[str], log: Path, timeout: int, what: str, env: dict[str, str] | None = None) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        try:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env=env,
                                    check=False)
        except subprocess.TimeoutExpired:
            raise ImageBuildError(f"base image: {what} did not finish within {timeout}s; "
                                  f"see {log}") from None
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL:])
        raise ImageBuildError(f"base image: {what} failed (exit {result.returncode}); last lines of {log}:\n{tail}")
