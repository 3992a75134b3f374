"""Chance levels of the megapixel-MNIST tasks under the generator's actual sampling rule (spec §6, §8.1).

Each canvas has a target class t ~ U{0..9}, three digits of class t and two digits drawn uniformly from the
digit images of the other classes (so a negative has class c ≠ t with probability f_c / (1 − f_t), f the
class frequencies of the split's digits; the two negatives may share a class). The top digit is any of the
five with equal probability. "Chance" is the accuracy of the best constant prediction.
The dissertation (§9.2) derives 30 % for Max from three *distinct* digits (C(10, 3)); the rule above gives
0.1 + 0.9·(1 − (1 − q)²) for predicting 9, q ≈ 1/9 (spec §6, P19).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

__all__ = ["exact_chance_levels", "simulated_chance_levels"]


def _negative_probs(freqs: np.ndarray) -> np.ndarray:
    """(10, 10): row t gives the class distribution of one negative digit when the target is t."""
    probs = np.tile(freqs, (10, 1)).astype(float)
    np.fill_diagonal(probs, 0.0)
    return probs / probs.sum(axis=1, keepdims=True)


def _label_distributions(freqs: np.ndarray) -> dict[str, dict]:
    neg = _negative_probs(freqs)
    dists: dict[str, dict] = {"majority": {}, "max": {}, "top": {}, "multi": {}}
    for t, a, b in itertools.product(range(10), repeat=3):
        p = 0.1 * neg[t, a] * neg[t, b]
        if p == 0:
            continue
        for key, value in (("majority", t), ("max", max(t, a, b)), ("multi", frozenset((t, a, b)))):
            dists[key][value] = dists[key].get(value, 0.0) + p
        for value, share in ((t, 0.6), (a, 0.2), (b, 0.2)):
            dists["top"][value] = dists["top"].get(value, 0.0) + p * share
    return dists


def exact_chance_levels(labels: np.ndarray) -> pd.DataFrame:
    """Best constant prediction and its accuracy per task, for digits with these class labels.

    Args:
        labels: (n,) class labels of the digit pool the generator draws from (one split of MNIST).
    """
    freqs = np.bincount(np.asarray(labels, dtype=np.int64), minlength=10) / len(labels)
    rows = []
    for task, dist in _label_distributions(freqs).items():
        best = max(dist, key=dist.get)
        shown = sorted(best) if isinstance(best, frozenset) else int(best)
        rows.append({"task": task, "prediction": shown, "chance (%)": 100 * dist[best]})
    return pd.DataFrame(rows).set_index("task")


def simulated_chance_levels(dataset, n: int, predictions: dict) -> pd.Series:
    """Accuracy (%) of the constant ``predictions`` on the first ``n`` canvases of a generated dataset."""
    hits = {task: 0 for task in predictions}
    for index in range(n):
        labels = dataset[index].labels
        for task, guess in predictions.items():
            value = labels[task]
            if task == "multi":
                hits[task] += int(set(np.flatnonzero(value).tolist()) == set(guess))
            else:
                hits[task] += int(value == guess)
    return pd.Series({task: 100 * h / n for task, h in hits.items()}, name="simulated (%)")
