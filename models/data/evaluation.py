"""How rows are chosen and made model-ready for evaluation: a seeded subset, a fixed binarisation.

torch-free (numpy only), so the ONNX diagnosis and the trainer share one rule: the validation
rows of a Bernoulli model are binarised once with ``VAL_BINARIZE_SEED``, whatever the run's seed,
so runs (and models trained elsewhere) are scored on the same binary images.
"""

from __future__ import annotations

import numpy as np

from models.errors import DataError

#: The evaluation rows are binarised with this seed (whatever the run's seed).
VAL_BINARIZE_SEED = 0


def pick_rows(n: int, limit: int | None, seed: int) -> tuple[np.ndarray, str]:
    """At most ``limit`` of the rows 0..n-1, a sorted seeded random choice; and the words for it
    (``"all "`` or ``"1000 (random, seed 0) of "``)."""
    rows = np.arange(n)
    if limit is None or limit >= n:
        return rows, "all "
    pick = np.random.default_rng(seed).choice(n, size=limit, replace=False)
    return np.sort(pick), f"{limit} (random, seed {seed}) of "


def binarize_for_evaluation(x: np.ndarray, mode: str = "dynamic") -> np.ndarray:
    """Binary float32 rows for a Bernoulli likelihood: ``x > 0.5`` for ``"threshold"``, else one
    fixed draw ``u < x`` with ``u ~ U(0, 1)`` seeded by ``VAL_BINARIZE_SEED`` (the trainer's rule).
    Values outside [0, 1] raise ``DataError``."""
    x = np.asarray(x, dtype=np.float32)
    if x.size and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise DataError(
            f"the data range over [{float(x.min()):g}, {float(x.max()):g}], but a Bernoulli "
            "likelihood needs values in [0, 1]"
        )
    if mode == "threshold":
        return (x > 0.5).astype(np.float32)
    rng = np.random.default_rng(VAL_BINARIZE_SEED)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
