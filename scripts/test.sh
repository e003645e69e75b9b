#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every test group,
# the slow ones included (integration: local redis-server processes; containers: Docker;
# swarm: a one-node Docker Swarm; reference: the real BigARTM 0.9.2).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not containers and not swarm".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --reference
export ARTM_COMPOSE_CACHE="${ARTM_COMPOSE_CACHE:-$PWD/.cache}"
exec .venv/bin/pytest -m "" -ra --durations=15 "$@"
