"""Benchmarks: each module has ``main(argv=None)`` and writes JSON under ``outputs/benchmarks/``."""
