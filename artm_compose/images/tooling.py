"""The Docker command-line tools the compose runtime drives: the Compose v2 plugin."""

from __future__ import annotations

import shutil
import subprocess

from artm_compose.errors import RuntimeUnavailable

INSTALL_HINT = "install it with scripts/install_docker_tools.sh, or run without containers: --runtime local"
VERSION_TIMEOUT = 30


def ensure_compose_plugin() -> str:
    """The version of ``docker compose`` (v2 plugin); RuntimeUnavailable saying how to get it otherwise."""
    if shutil.which("docker") is None:
        raise RuntimeUnavailable("the docker command is not installed: install Docker, or run without "
                                 "containers: --runtime local")
    try:
        result = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True,
                                timeout=VERSION_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeUnavailable(f"`docker compose version` did not answer within {VERSION_TIMEOUT}s") from None
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeUnavailable(f"the Docker Compose v2 plugin is missing (`docker compose version`: "
                                 f"{reason[0] if reason else 'exit ' + str(result.returncode)}): {INSTALL_HINT}")
    return result.stdout.strip()
