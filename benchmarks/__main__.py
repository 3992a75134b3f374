"""Run every benchmark: ``python -m benchmarks`` (``make bench``). Each writes JSON under outputs/benchmarks/.

Individual benchmarks: ``python -m benchmarks.<name>`` for each name in BENCHMARKS; ``benchmarks/gpu_check.sh``
runs the GPU measurements in one call where a GPU is available.
"""

import importlib
import sys

BENCHMARKS = [
    "benchmarks.canvas",
    "benchmarks.train_step",
    "benchmarks.bf16",
    "benchmarks.inference_scale",
    "benchmarks.data_throughput",
]


def main(argv: list[str] | None = None) -> int:
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
