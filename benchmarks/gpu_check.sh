#!/usr/bin/env bash
# The one script a GPU session runs (about 8 minutes; see benchmarks/gpu_check.py): training steps at the
# author's 1500² setting against the logged 375 ms and 1.84 GB, the largest canvas and batch that fit, the
# packing factor, then the `gpu` profile's campaign. Installs nothing. Writes outputs/gpu/gpu_check.json and
# the campaign's run records under outputs/gpu/runs/ (and a copy of the JSON in outputs/benchmarks/ for the
# Performance chapter); with $OUT set (a device session) also copies gpu_check.json and outputs/gpu as
# gpu_outputs.tar.gz (no checkpoints) there, to be committed (tar -xzf it in the repository root, and copy
# outputs/gpu/gpu_check.json to outputs/benchmarks/).
# Exits 2 with one line when no CUDA device is present, writing nothing.
#   bash benchmarks/gpu_check.sh [--budget-s 450] [--phases steps,canvas,batch,packing,campaign]
# The campaign needs MNIST: $IPSLIB_DATA, or its four IDX files (.gz is fine, 11 MB) in data/mnist/, which a
# device session carries (data/ is git-ignored): mkdir -p data/mnist && gzip -c ~/.cache/ipslib/mnist/X > data/mnist/X.gz
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then py=.venv/bin/python
else py=python3
fi
if [[ -z "${IPSLIB_DATA:-}" && -d data/mnist ]]; then export IPSLIB_DATA="$PWD/data"; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TQDM_DISABLE=1 PYTHONUNBUFFERED=1
timeout --signal=TERM --kill-after=20 500 "$py" -m benchmarks.gpu_check "$@"
rc=$?
if [[ $rc -ne 2 && -n "${OUT:-}" && -f outputs/gpu/gpu_check.json ]]; then
  cp outputs/gpu/gpu_check.json "$OUT/"
  tar -czf "$OUT/gpu_outputs.tar.gz" --exclude='checkpoint*.pt' --exclude='.train.lock' --exclude='.packing' outputs/gpu
fi
exit $rc
