"""The ``build`` command: build the Redis and artm images that are missing."""

from __future__ import annotations

import click

from artm_compose.docker_access import docker_client
from artm_compose.images.base import base_tag
from artm_compose.images.build import BUILD_TIMEOUT, build_images, prune_images


@click.command("build")
@click.option("--base-image", metavar="IMAGE", default=None,
              help="Base of both images, from a registry (e.g. python:3.11-slim). "
                   "Default: a Debian bookworm base made here with debootstrap (no registry needed).")
@click.option("--redis-base-image", metavar="IMAGE", default=None,
              help="Base of the Redis image only (e.g. redis:7); default: the --base-image.")
@click.option("--force", is_flag=True, help="Rebuild both images even if their content tags exist.")
@click.option("--no-cache", is_flag=True,
              help="Rebuild everything from scratch: the base, the wheelhouse and every layer.")
@click.option("--prune", is_flag=True,
              help="Then untag older artm-compose images (earlier content) that no container uses.")
def build_command(base_image: str | None, redis_base_image: str | None, force: bool, no_cache: bool,
                  prune: bool) -> None:
    """Build the container images (only what is missing; tagged by content).

    Images are shared by all clusters; `down` does not remove them (`build --prune` removes old ones).
    """
    client = docker_client(timeout=BUILD_TIMEOUT)
    tags = build_images(base_image, redis_base_image, force=force, no_cache=no_cache, echo=click.echo,
                        client=client)
    removed = prune_images(client, keep=(tags.redis, tags.artm, base_tag()), echo=click.echo) if prune else []
    click.echo(f"redis image: {tags.redis}")
    click.echo(f"artm image:  {tags.artm}")
    if prune:
        click.echo(f"pruned {len(removed)} old image tags" + "".join(f"\n  {tag}" for tag in removed))
