"""Python wheels for the artm image, fetched on the host so that the image build needs no network.

The dependency wheels are downloaded (``pip download --only-binary``) for the base image's Python:
its version, machine and glibc are asked from the image itself, so a wheelhouse made on this host
(Python 3.11.7) fits a base with Python 3.11.2 or a ``python:3.12-slim`` alike. The requirements are
read from ``pyproject.toml`` (never duplicated here). The project's own wheel is built from a copy of
exactly the files whose content tags the image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import ContainerError, DockerException

from artm_compose.errors import ImageBuildError
from artm_compose.images.closure import missing_requirements, read_wheelhouse
from artm_compose.images.fingerprint import Fingerprint, tree_files
from artm_compose.images.progress import Progress

# Prints the interpreter's PEP 508 marker environment and C library (stdlib only: bases lack packaging).
PROBE = """
import json, os, platform, sys
info = sys.implementation.version
implementation_version = f"{info.major}.{info.minor}.{info.micro}"
if info.releaselevel != "final":
    implementation_version += info.releaselevel[0] + str(info.serial)
print(json.dumps({"libc": platform.libc_ver(), "markers": {
    "implementation_name": sys.implementation.name, "implementation_version": implementation_version,
    "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(), "python_version": ".".join(platform.python_version_tuple()[:2]),
    "platform_python_implementation": platform.python_implementation(), "sys_platform": sys.platform}}))
"""
PROBE_LABELS = {"artm-compose.build": "python-probe"}
OLDEST_MANYLINUX_GLIBC = 17
LEGACY_MANYLINUX = (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5))
LEGACY_MACHINES = ("x86_64", "i686")  # manylinux2010 and manylinux1 exist only for these
PROJECT_TOP_FILES = ("pyproject.toml", "README.md", "LICENSE")
PACKAGE = "artm_compose"
PIP_TIMEOUT = 900
MAX_TOP_UPS = 4
OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class PythonTarget:
    """The interpreter wheels must fit: its PEP 508 marker environment and its glibc version."""

    markers: tuple[tuple[str, str], ...]
    glibc: tuple[int, int]

    @property
    def environment(self) -> dict[str, str]:
        """The marker environment, for evaluating requirements' markers as the target would."""
        return dict(self.markers)

    @property
    def machine(self) -> str:
        """The CPU architecture, e.g. ``x86_64``."""
        return self.environment["platform_machine"]

    def key(self) -> str:
        """A short name, e.g. ``cp3.11.2-x86_64-glibc2.36``."""
        return (f"cp{self.environment['python_full_version']}-{self.machine}"
                f"-glibc{self.glibc[0]}.{self.glibc[1]}")


def platform_tags(target: PythonTarget) -> list[str]:
    """The manylinux platform tags ``target`` accepts, newest first (pip does not expand them itself)."""
    major, minor = target.glibc
    if major != 2:
        raise ImageBuildError(f"glibc {major}.{minor} of the base image is not a glibc 2.x: no manylinux wheels")
    tags = [f"manylinux_2_{m}_{target.machine}" for m in range(minor, OLDEST_MANYLINUX_GLIBC - 1, -1)]
    tags += [f"{name}_{target.machine}" for name, oldest in LEGACY_MANYLINUX
             if minor >= oldest and (name == "manylinux2014" or target.machine in LEGACY_MACHINES)]
    return tags


def python_target(client: docker.DockerClient, image: str, cache_dir: Path) -> PythonTarget:
    """The Python of ``image``, probed once per image id (a probe starts a container)."""
    image_id = client.images.get(image).id
    record = cache_dir / "python-targets" / f"{image_id.replace(':', '-')}.json"
    if record.is_file():
        found = json.loads(record.read_text())
        return PythonTarget(markers=tuple(sorted(found["markers"].items())),
                            glibc=(found["glibc"][0], found["glibc"][1]))
    target = probe_python_target(client, image)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"markers": target.environment, "glibc": target.glibc}))
    return target


def probe_python_target(client: docker.DockerClient, image: str) -> PythonTarget:
    """Run ``python3`` in ``image`` (no network, removed afterwards) and read its version and platform."""
    try:
        output = client.containers.run(image, ["python3", "-c", PROBE], entrypoint=[], remove=True,
                                       network_disabled=True, labels=PROBE_LABELS, stdout=True, stderr=True)
    except ContainerError as error:
        raise ImageBuildError(f"base image {image} cannot run python3 ({error.stderr!r}); Dockerfile.artm needs "
                              f"a base with python3 and its venv module, e.g. python:3.11-slim") from None
    except DockerException as error:
        raise ImageBuildError(f"base image {image}: starting python3 to read its version failed: {error}") from None
    found = json.loads(output.decode().strip().splitlines()[-1])
    libc, libc_version = found["libc"]
    markers = found["markers"]
    if markers["implementation_name"] != "cpython":
        raise ImageBuildError(f"base image {image} runs {markers['implementation_name']}, not CPython")
    if libc != "glibc":
        raise ImageBuildError(f"base image {image} uses {libc or 'an unknown C library'}, not glibc: "
                              f"only glibc (manylinux) bases are supported, e.g. python:3.11-slim")
    glibc = tuple(int(part) for part in libc_version.split(".")[:2])
    return PythonTarget(markers=tuple(sorted(markers.items())), glibc=(glibc[0], glibc[1]))


def project_requirements(pyproject: Path) -> list[str]:
    """The runtime requirements ``[project].dependencies`` of ``pyproject``."""
    with pyproject.open("rb") as stream:
        return list(tomllib.load(stream)["project"]["dependencies"])


def project_files(root: Path) -> list[Path]:
    """The files the project's wheel is built from: top-level metadata and the package tree."""
    tops = [root / name for name in PROJECT_TOP_FILES if (root / name).is_file()]
    return tops + tree_files(root / PACKAGE)


def build_requirements(pyproject: Path) -> list[str]:
    """What building the project needs, ``[build-system].requires`` (PEP 518's default if absent)."""
    with pyproject.open("rb") as stream:
        return list(tomllib.load(stream).get("build-system", {}).get("requires", ["setuptools>=40.8.0", "wheel"]))


def dependency_wheels(requirements: list[str], target: PythonTarget, cache_dir: Path, progress: Progress,
                      refresh: bool = False) -> Path:
    """A directory of wheels for ``requirements`` on ``target`` plus ``requirements.txt``; cached by both."""
    key = Fingerprint().add_text("requirements", "\n".join(requirements)).add_text("target", target.key())
    destination = cache_dir / "wheelhouse" / f"{target.key()}-{key.hexdigest()}"
    if (destination / "requirements.txt").is_file() and not refresh:
        count = len(list(destination.glob("*.whl")))
        progress.note(f"dependency wheels: cached ({count} wheels in {destination})")
        return destination
    with progress.step(f"dependency wheels for {target.key()}: pip download"), _staging(destination) as staging:
        _download_for_target(requirements, target, staging, progress)
        (staging / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements))
    return destination


def build_wheels(requirements: list[str], cache_dir: Path, progress: Progress, refresh: bool = False) -> Path:
    """Wheels of the project's build requirements for this interpreter, so that wheel builds run offline."""
    key = Fingerprint().add_text("requirements", "\n".join(requirements)).add_text("python", sys.version)
    destination = cache_dir / "build-wheels" / key.hexdigest()
    if destination.is_dir() and not refresh:
        return destination
    with progress.step(f"build requirements ({', '.join(requirements)}): pip download"), \
            _staging(destination) as staging:
        listing = staging / "requirements.txt"
        listing.write_text("".join(f"{line}\n" for line in requirements))
        _pip(["download", "--only-binary=:all:", "--dest", str(staging), "-r", str(listing)],
             "downloading the build requirements")
        listing.unlink()
    return destination


def project_wheel(root: Path, destination: Path, build_wheels_dir: Path, progress: Progress) -> Path:
    """Build the project's wheel from a copy of :func:`project_files`, offline; return its path."""
    destination.mkdir(parents=True, exist_ok=True)
    with progress.step("project wheel: pip wheel"), tempfile.TemporaryDirectory(prefix="artm-wheel-") as scratch:
        source = Path(scratch) / "source"
        for path in project_files(root):
            copy = source / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        _pip(["wheel", "--no-deps", "--no-index", "--find-links", str(build_wheels_dir), "--wheel-dir",
              str(destination), str(source)], "building the project wheel")
    wheels = sorted(destination.glob("artm_compose-*.whl"))
    if len(wheels) != 1:
        raise ImageBuildError(f"building the project wheel left {len(wheels)} wheels in {destination}, expected 1")
    return wheels[0]


def _download_for_target(requirements: list[str], target: PythonTarget, directory: Path,
                         progress: Progress) -> None:
    """Download ``requirements`` for ``target``, then top up what pip's host markers left out."""
    platforms = [arg for tag in platform_tags(target) for arg in ("--platform", tag)]
    wanted = requirements
    for _ in range(MAX_TOP_UPS):
        listing = directory / "pip-requirements.txt"
        listing.write_text("".join(f"{line}\n" for line in wanted))
        _pip(["download", "--only-binary=:all:", "--python-version", target.environment["python_full_version"],
              "--implementation", "cp", *platforms, "--dest", str(directory), "-r", str(listing)],
             f"downloading wheels for {target.key()}")
        listing.unlink()
        wanted = missing_requirements(requirements, read_wheelhouse(directory), target.environment)
        if not wanted:
            return
        progress.note(f"dependency wheels: the target also needs {', '.join(wanted)}")
    raise ImageBuildError(f"the wheelhouse for {target.key()} still lacks {', '.join(wanted)} "
                          f"after {MAX_TOP_UPS} downloads")


@contextmanager
def _staging(destination: Path) -> Iterator[Path]:
    """A scratch directory that replaces ``destination`` only if the block succeeds (no half caches)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{destination.name}.", dir=destination.parent))
    try:
        yield staging
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _pip(arguments: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False,
                                env={**os.environ, "PIP_NO_INPUT": "1"})
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"{what}: pip did not finish within {PIP_TIMEOUT}s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise ImageBuildError(f"{what} failed (pip exit {result.returncode}):\n{output[-OUTPUT_TAIL:]}")
