"""Statistical backends: one interface, two implementations with the same verdicts.

* ``alibi`` (:mod:`.alibi`): Alibi Detect's ``TabularDrift`` — Business Source License 1.1.
* ``scipy`` (:mod:`.scipy_stats`): the same tests on ``scipy.stats`` — BSD-3-Clause.

Both run a two-sample Kolmogorov-Smirnov test (asymptotic, two-sided) per numeric feature and
a chi-squared test of the contingency table (reference counts vs window counts over the union
of categories) per categorical feature, then correct for the number of features
(Bonferroni: any p < p_val / n; FDR: Benjamini-Hochberg at q = p_val).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from drift_detector.backends.base import Backend, Verdict

__all__ = ["Backend", "Verdict", "make_backend"]


def make_backend(
    name: Literal["alibi", "scipy"],
    reference: np.ndarray,
    *,
    categorical: Sequence[int],
    p_val: float,
    correction: Literal["bonferroni", "fdr"],
) -> Backend:
    """A fitted backend; imports Alibi Detect only when asked for it."""
    if name == "alibi":
        from drift_detector.backends.alibi import AlibiBackend

        return AlibiBackend(reference, categorical=categorical, p_val=p_val, correction=correction)
    from drift_detector.backends.scipy_stats import ScipyBackend

    return ScipyBackend(reference, categorical=categorical, p_val=p_val, correction=correction)
