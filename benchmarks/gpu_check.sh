#!/usr/bin/env bash
# All GPU measurements in one call of at most 8 minutes (see benchmarks/gpu_check.py); installs nothing.
# Writes ${OUT:-outputs/benchmarks}/gpu_check.json. Exits 2 with a message when no CUDA device is present.
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then py=.venv/bin/python
else py=python3
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TQDM_DISABLE=1
exec timeout --signal=TERM --kill-after=10 470 "$py" -m benchmarks.gpu_check --budget-s 400 "$@"
