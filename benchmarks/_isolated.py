"""Run a benchmark case in a fresh Python process, so that its peak memory is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_isolated(module: str, case: dict[str, Any], *, threads: int | None = None) -> dict[str, Any]:
    """``module.measure(case)`` in a child process; returns its JSON result (errors carry the child's stderr)."""
    code = (
        f"import json, sys; from {module} import measure; "
        "print('RESULT ' + json.dumps(measure(json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(case)], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"benchmark case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])
