#!/usr/bin/env bash
# The main job, end to end on a fresh machine: install what is needed, get a real corpus (Debian's
# package descriptions), build the images from nothing, bring up 4 virtual nodes x 2 executors,
# train with progress, print perplexity per pass and top tokens, export the model, tear down.
# Environment: RUNTIME=compose|local|swarm (default compose), NODES, EXECUTORS, TOPICS, ITERATIONS.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=${RUNTIME:-compose}
nodes=${NODES:-4}
executors=${EXECUTORS:-2}
topics=${TOPICS:-50}
iterations=${ITERATIONS:-10}
export ARTM_COMPOSE_CACHE="${ARTM_COMPOSE_CACHE:-$PWD/.cache}"
corpus="$ARTM_COMPOSE_CACHE/debian"
state="state/demo-$runtime"

scripts/setup.sh
cli=.venv/bin/artm-compose
$cli data debian --out "$corpus"
$cli data info "$corpus"
if [ "$runtime" != local ]; then
  $cli build
fi

common=(--name demo --runtime "$runtime" --state-dir "$state")
cleanup() { $cli down "${common[@]}" || true; }
trap cleanup EXIT
$cli up "${common[@]}" --nodes "$nodes" --executors-per-node "$executors" \
  --data "$corpus" --topics "$topics" --iterations "$iterations" --seed 1
$cli status "${common[@]}"
$cli export "${common[@]}" --out "$state/model.npz"
echo "demo: scores in $state/scores.json, model in $state/model.npz"
