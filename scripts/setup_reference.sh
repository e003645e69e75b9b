#!/usr/bin/env bash
# Create .venv-ref: the real BigARTM 0.9.2 for reference tests and benchmarks (idempotent).
#
# bigartm 0.9.2 needs protobuf 3.x (its generated messages_pb2 predates protobuf 4) and imports six
# without declaring it; its wheel's bundled libartm needs numpy 1.x ABI-wise for nothing, but pandas
# (used by ARTM.get_phi) must match numpy, so both are pinned to versions with Python 3.11 wheels.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ARTM_REFERENCE_VENV:-$root/.venv-ref}"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import artm, pandas' 2>/dev/null; then
    echo "reference venv ready: $venv"
    exit 0
fi

"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet \
    'bigartm==0.9.2' 'protobuf==3.20.3' 'six' 'numpy<2' 'pandas<2.2' 'scipy<1.14' 'tqdm'
"$venv/bin/python" -c 'import artm; print("bigartm", artm.version(), "ready in '"$venv"'")'
