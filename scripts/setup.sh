#!/usr/bin/env bash
# Installs everything artm-compose needs on a fresh Debian/Ubuntu machine, idempotently:
# apt packages (redis-server for the local runtime, debootstrap for registry-less images),
# the project venv (.venv) with the package, its test tools and pandas/matplotlib, and the Docker Compose v2 plugin.
# Usage: scripts/setup.sh [--reference]   (--reference also makes .venv-ref with BigARTM 0.9.2)
set -euo pipefail
cd "$(dirname "$0")/.."

want_reference=0
for arg in "$@"; do
  case "$arg" in
    --reference) want_reference=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# chromium: the dashboard's browser test runs it headless.
apt_packages=(redis-server redis-tools debootstrap chromium)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing apt packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The local runtime starts its own redis-server processes; the distribution's service is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server || true
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/pip ]; then
  # --clear: a venv left half-made by an interrupted run has python but no pip
  echo "setup: creating .venv"
  "$python" -m venv --clear .venv
fi
stamp=.venv/.artm-compose-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the package and test tools into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test,analysis]'
  touch "$stamp"
fi

if command -v docker >/dev/null 2>&1; then
  scripts/install_docker_tools.sh
else
  echo "setup: docker not found: only the local runtime (--runtime local) will work"
fi

if [ "$want_reference" -eq 1 ]; then
  scripts/setup_reference.sh
fi
echo "setup: done"
