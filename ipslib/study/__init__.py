"""The reproducibility study and its book: experiments from ``params/``, the runner, results, claims,
verdicts, the dissertation's reference numbers, tables, figures and the Jupyter Book build.

Layer 7: everything below it is a library anyone can use; this package is the book's machinery.
"""
