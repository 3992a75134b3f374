"""The chance-levels chapter (P19): exact chance levels of the MNIST tasks beside a simulation.

The agreement rule: the simulation agrees with the exact values when, on every task, the simulated accuracy
lies within three standard errors (of a proportion at the exact chance level over the n canvases) of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ipslib.data.chance import exact_chance_levels, simulated_chance_levels
from ipslib.data.megapixel_mnist import MegapixelMNIST

__all__ = ["ChanceLevels", "chance_levels", "with_standard_errors", "agreement", "digits_note", "CANVAS"]

CANVAS = {"canvas_size": 140, "digit_size": 28, "n_noise": 0}
"""The generator's setting for the simulation (noise and canvas size do not change the labels)."""
SMOKE_CANVASES, CANVASES = 300, 5000


@dataclass
class ChanceLevels:
    """The page's table (exact prediction and chance, simulated accuracy, three standard errors, in %),
    the number of simulated canvases, the digit source and how many test digits it holds."""

    table: pd.DataFrame
    n: int
    source: str
    n_digits: int

    @property
    def max_chance(self) -> float:
        return float(self.table.loc["max", "chance (%)"])


def with_standard_errors(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """``table`` (columns ``chance (%)``, ``simulated (%)``) with ``3 standard errors (%)`` of a proportion
    at the chance level over ``n`` draws."""
    p = table["chance (%)"] / 100
    return table.assign(**{"3 standard errors (%)": 300 * (p * (1 - p) / n) ** 0.5})


def agreement(table: pd.DataFrame) -> str:
    """Whether every task's simulated accuracy lies within three standard errors of the exact chance level."""
    gap = (table["simulated (%)"] - table["chance (%)"]).abs()
    if bool((gap <= table["3 standard errors (%)"]).all()):
        return "agrees with the exact values within three standard errors on every task"
    return "does NOT agree with the exact values within three standard errors"


def chance_levels(profile: str) -> ChanceLevels:
    """Exact chance levels on the test digits and their simulation over the first n generated test canvases
    (n = 300 on the ``sample`` digits for ``smoke``, 5000 on MNIST otherwise)."""
    n, source = (SMOKE_CANVASES, "sample") if profile == "smoke" else (CANVASES, "mnist")
    dataset = MegapixelMNIST({**CANVAS, "n_test": n, "digit_source": source}, split="test")
    exact = exact_chance_levels(dataset.digits.labels)
    simulated = simulated_chance_levels(dataset, n, exact["prediction"].to_dict())
    return ChanceLevels(with_standard_errors(exact.join(simulated), n), n, source, len(dataset.digits.labels))


def digits_note(levels: ChanceLevels) -> str:
    """The line above the table naming the digits and the canvases simulated."""
    return (
        f"Digits: **{levels.source}** test split ({levels.n_digits} digits); "
        f"simulation: the first {levels.n} generated test canvases."
    )
