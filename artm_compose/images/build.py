"""Build the Redis and artm images: only what is missing, tagged by content.

A tag is ``artm-compose/<role>:<hash>``, the hash covering the Dockerfile, every file of the build
context that comes from the source tree (entrypoints; the project's files for the artm image), and
the base image (the recipe of the registry-less base, or the id of a registry image). An image whose
tag exists is up to date, so a second build with nothing changed only hashes a few files.

Images are shared by every cluster (labelled ``artm-compose.image=<role>``, not with a cluster):
``down`` never removes them. The classic builder of the Docker SDK is used, as buildx may be missing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound

import artm_compose
from artm_compose.docker_access import docker_client
from artm_compose.errors import ImageBuildError, ImageBuildTimeout
from artm_compose.images.base import BASE_REPOSITORY, ROLE_LABEL, base_tag, build_base_image, image_exists
from artm_compose.images.fingerprint import Fingerprint
from artm_compose.images.progress import Progress
from artm_compose.images.wheelhouse import (build_requirements, build_wheels, dependency_wheels, project_files,
                                            project_requirements, project_wheel, python_target)
from artm_compose.waiting import wait_until

REPOSITORY_PREFIX = "artm-compose"
OUR_REPOSITORIES = (BASE_REPOSITORY, f"{REPOSITORY_PREFIX}/redis", f"{REPOSITORY_PREFIX}/artm")
REDIS_DOCKERFILE = "Dockerfile.redis"
ARTM_DOCKERFILE = "Dockerfile.artm"
# Context path -> source path, for the files of the Redis image's build context.
REDIS_CONTEXT = {
    "Dockerfile": REDIS_DOCKERFILE,
    "docker/artm-redis-entrypoint": "docker/artm-redis-entrypoint",
    "docker/artm-redis-healthcheck": "docker/artm-redis-healthcheck",
}
# The same for the artm image's files beyond the Dockerfile and the wheels.
ARTM_CONTEXT = {
    "docker/artm-entrypoint": "docker/artm-entrypoint",
}
BUILD_TIMEOUT = 900
LOCK_TIMEOUT = 3600
LOCK_POLL = 1.0
OUTPUT_TAIL = 25


@dataclass(frozen=True)
class ImageTags:
    """The images a cluster runs: one for the Redis nodes, one for executors, master and bootstrap."""

    redis: str
    artm: str


@dataclass(frozen=True)
class BaseImage:
    """A base image: the reference FROM uses, and the identity the content tag hashes."""

    reference: str
    identity: str
    registry_less: bool


def source_root() -> Path:
    """The source checkout holding the Dockerfiles (images are built from a checkout, not a wheel)."""
    root = Path(artm_compose.__file__).resolve().parent.parent
    missing = [name for name in (ARTM_DOCKERFILE, *REDIS_CONTEXT.values(), *ARTM_CONTEXT.values(),
                                 "pyproject.toml")
               if not (root / name).is_file()]
    if missing:
        raise ImageBuildError(f"{root} is not an artm-compose source checkout (missing {', '.join(missing)}): "
                              f"build images from a clone of the repository installed with pip install -e")
    return root


def default_cache_dir(root: Path) -> Path:
    """Where wheelhouses, build contexts and the base root filesystem go: ``$ARTM_COMPOSE_CACHE/images``.

    ``$ARTM_COMPOSE_CACHE`` defaults to ``<checkout>/.cache``, the project's cache for slow-to-make inputs.
    """
    return Path(os.environ.get("ARTM_COMPOSE_CACHE") or root / ".cache") / "images"


def redis_fingerprint(root: Path, base: BaseImage) -> str:
    """Content hash of the Redis image: its Dockerfile, entrypoints and base."""
    fingerprint = Fingerprint().add_text("base", base.identity)
    for name, source in REDIS_CONTEXT.items():
        fingerprint.add_file(name, root / source)
    return fingerprint.hexdigest()


def artm_fingerprint(root: Path, base: BaseImage) -> str:
    """Content hash of the artm image: its Dockerfile, the project's files (so its requirements) and base."""
    fingerprint = Fingerprint().add_text("base", base.identity).add_file("Dockerfile", root / ARTM_DOCKERFILE)
    for name, source in ARTM_CONTEXT.items():
        fingerprint.add_file(name, root / source)
    for path in project_files(root):
        fingerprint.add_file(path.relative_to(root).as_posix(), path)
    return fingerprint.hexdigest()


def resolve_base(image: str | None, client: docker.DockerClient | None) -> BaseImage:
    """The registry-less base (``image`` None; no daemon needed) or a registry image, pulled if absent."""
    if image is None:
        tag = base_tag()
        return BaseImage(reference=tag, identity=tag, registry_less=True)
    client = client or docker_client()
    try:
        found = client.images.get(image)
    except ImageNotFound:
        try:
            found = client.images.pull(image)
        except DockerException as error:
            raise ImageBuildError(f"base image {image} is not here and cannot be pulled ({error}); without "
                                  f"--base-image the registry-less base is built from Debian packages") from None
    return BaseImage(reference=image, identity=found.id, registry_less=False)


@dataclass(frozen=True)
class ImageSpec:
    """One image to have: its role, content tag and base."""

    role: str
    tag: str
    base: BaseImage


def image_specs(base_image: str | None = None, redis_base_image: str | None = None, *,
                client: docker.DockerClient | None = None, root: Path | None = None) -> tuple[ImageSpec, ImageSpec]:
    """The Redis and artm images for these bases, with their content tags (nothing is built)."""
    root = root or source_root()
    artm_base = resolve_base(base_image, client)
    redis_base = resolve_base(redis_base_image, client) if redis_base_image else artm_base
    return (ImageSpec("redis", f"{REPOSITORY_PREFIX}/redis:{redis_fingerprint(root, redis_base)}", redis_base),
            ImageSpec("artm", f"{REPOSITORY_PREFIX}/artm:{artm_fingerprint(root, artm_base)}", artm_base))


def image_tags(base_image: str | None = None, redis_base_image: str | None = None, *,
               client: docker.DockerClient | None = None, root: Path | None = None) -> ImageTags:
    """The tags ``build_images`` with the same arguments makes (no build; the daemon only for a registry base)."""
    redis, artm = image_specs(base_image, redis_base_image, client=client, root=root)
    return ImageTags(redis=redis.tag, artm=artm.tag)


def build_images(base_image: str | None = None, redis_base_image: str | None = None, *, force: bool = False,
                 no_cache: bool = False, cache_dir: Path | None = None, echo: Callable[[str], None] = print,
                 client: docker.DockerClient | None = None, root: Path | None = None) -> ImageTags:
    """Build whichever of the Redis and artm images is missing (and the base they need); return their tags.

    ``force`` rebuilds both images even if their tags exist (Docker's layer cache still applies);
    ``no_cache`` rebuilds everything from scratch: the registry-less base, the wheelhouse, and every layer.
    """
    progress = Progress(echo)
    client = client or docker_client(timeout=BUILD_TIMEOUT)
    root = root or source_root()
    cache_dir = cache_dir or default_cache_dir(root)
    specs = image_specs(base_image, redis_base_image, client=client, root=root)
    tags = ImageTags(redis=specs[0].tag, artm=specs[1].tag)
    if not force and not no_cache and all(image_exists(client, spec.tag) for spec in specs):
        progress.note(f"images up to date: {tags.redis}, {tags.artm}")
        return tags
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_dir / "build.lock", progress):
        # Another build may have made them while this one waited for the lock.
        wanted = [spec for spec in specs if force or no_cache or not image_exists(client, spec.tag)]
        if any(spec.base.registry_less for spec in wanted):
            _ensure_base(client, cache_dir, progress, rebuild=no_cache)
        for spec in wanted:
            with progress.step(f"{spec.role} image {spec.tag}"), \
                    tempfile.TemporaryDirectory(prefix=f"context-{spec.role}-", dir=cache_dir) as scratch:
                context = Path(scratch)
                if spec.role == "redis":
                    _copy_context(root, context, REDIS_CONTEXT)
                else:
                    _artm_context(client, root, context, spec.base, cache_dir, progress, refresh=no_cache)
                _docker_build(client, context, spec, no_cache, progress)
            progress.note(f"{spec.role} image {spec.tag}: {client.images.get(spec.tag).attrs['Size'] / 1e6:.0f} MB")
    return tags


@contextmanager
def _exclusive(lock_file: Path, progress: Progress) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file``: concurrent builds would share a root fs and wheelhouse."""
    with lock_file.open("w") as handle:
        def locked() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not locked():
            progress.note(f"waiting for another build to finish (lock {lock_file})")
            wait_until(locked, LOCK_TIMEOUT, f"another build to release {lock_file}", interval=LOCK_POLL,
                       error=ImageBuildTimeout)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prune_images(client: docker.DockerClient, keep: Iterable[str], echo: Callable[[str], None] = print) -> list[str]:
    """Untag base, Redis and artm images not in ``keep`` and used by no container; return the tags removed.

    Every change of the sources makes a new content tag; the old ones stay until pruned (their layers
    are mostly shared, so they cost little). An image a container still uses, even a stopped one, stays.
    """
    kept = set(keep)
    used = {container.attrs["Image"] for container in client.containers.list(all=True)}
    removed = []
    for image in client.images.list(filters={"label": ROLE_LABEL}):
        if image.id in used:
            continue
        for tag in image.tags:
            if tag.rpartition(":")[0] in OUR_REPOSITORIES and tag not in kept:
                try:
                    client.images.remove(tag)
                except APIError as error:  # e.g. a container was created from it meanwhile
                    echo(f"kept {tag}: {error.explanation}")
                    continue
                removed.append(tag)
    return removed


def _ensure_base(client: docker.DockerClient, cache_dir: Path, progress: Progress, rebuild: bool) -> None:
    tag = base_tag()
    if image_exists(client, tag) and not rebuild:
        progress.note(f"base image: cached ({tag})")
        return
    build_base_image(client, cache_dir / "base", progress)
    progress.note(f"base image {tag}: {client.images.get(tag).attrs['Size'] / 1e6:.0f} MB")


def _copy_context(root: Path, context: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, context / name)
        # COPY keeps the mode; a checkout made with a umask or core.fileMode=false may have lost the x bit.
        (context / name).chmod(0o755 if name.startswith("docker/") else 0o644)


def _artm_context(client: docker.DockerClient, root: Path, context: Path, base: BaseImage, cache_dir: Path,
                  progress: Progress, refresh: bool) -> None:
    target = python_target(client, base.reference, cache_dir)
    progress.note(f"artm image: base {base.reference} has Python {target.key()}")
    pyproject = root / "pyproject.toml"
    deps = dependency_wheels(project_requirements(pyproject), target, cache_dir, progress, refresh=refresh)
    tools = build_wheels(build_requirements(pyproject), cache_dir, progress, refresh=refresh)
    _place(root / ARTM_DOCKERFILE, context / "Dockerfile")
    _copy_context(root, context, ARTM_CONTEXT)
    for wheel in deps.iterdir():
        _place(wheel, context / "wheels" / "deps" / wheel.name)
    project_wheel(root, context / "wheels" / "project", tools, progress)


def _place(source: Path, destination: Path) -> None:
    """Hard-link ``source`` into a build context (copy across file systems)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _docker_build(client: docker.DockerClient, context: Path, spec: ImageSpec, no_cache: bool,
                  progress: Progress) -> None:
    tag, role, base = spec.tag, spec.role, spec.base
    output: deque[str] = deque(maxlen=OUTPUT_TAIL)
    stream = client.api.build(path=str(context), tag=tag, buildargs={"BASE_IMAGE": base.reference},
                              rm=True, forcerm=True,
                              nocache=no_cache, pull=False, decode=True)
    try:
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(f"building {tag} from {base.reference} failed: {chunk['error'].strip()}\n"
                                      + "\n".join(output))
            for line in chunk.get("stream", "").splitlines():
                if line.strip():
                    output.append(line)
                if line.startswith("Step "):
                    progress.note(f"{role} image: {line}")
    except DockerException as error:
        raise ImageBuildError(f"building {tag}: the Docker daemon failed ({error})\n" + "\n".join(output)) from None
    if not image_exists(client, tag):
        raise ImageBuildError(f"building {tag} ended without an image:\n" + "\n".join(output))
    # Images are found by their role label (set in the Dockerfile, so that hand builds carry it too).
    found = client.images.get(tag).labels.get(ROLE_LABEL)
    if found != role:
        raise ImageBuildError(f"{tag} is labelled {ROLE_LABEL}={found!r}, not {role!r}: see its Dockerfile")
