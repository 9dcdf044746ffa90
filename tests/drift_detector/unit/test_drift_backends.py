"""Both backends give the same verdicts (and p-values) on the tests' data."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from drift_detector.backends import make_backend
from drift_detector.backends.base import corrected
from drift_population import NAMES, Population

CATEGORICAL = (NAMES.index("sex"),)


def windows() -> list[tuple[str, np.ndarray]]:
    population = Population(seed=5)
    out = [(f"calm-{i}", population.rows(100)) for i in range(20)]
    out += [
        (f"{name}+{k}sd", population.rows(100, {name: k}))
        for name in ("age", "bmi", "glu")
        for k in (0.3, 1.0)
    ]
    sex_shifted = population.rows(100)
    sex_shifted[:80, CATEGORICAL[0]] = 1.0
    out.append(("sex 80% male", sex_shifted))
    unseen = population.rows(100)
    unseen[:5, CATEGORICAL[0]] = 2.0  # a category the reference never had
    out.append(("unseen category", unseen))
    return out


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_alibi_and_scipy_agree(reference: np.ndarray, correction: Literal["bonferroni", "fdr"]) -> None:
    alibi = make_backend("alibi", reference, categorical=CATEGORICAL, p_val=0.05, correction=correction)
    scipy = make_backend("scipy", reference, categorical=CATEGORICAL, p_val=0.05, correction=correction)
    verdicts = []
    for name, window in windows():
        a, s = alibi.test(window), scipy.test(window)
        assert a.drift == s.drift, name
        np.testing.assert_allclose(a.p_values, s.p_values, rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(a.distances, s.distances, rtol=1e-5, err_msg=name)
        assert a.threshold == pytest.approx(s.threshold), name
        assert list(a.feature_drift) == list(s.feature_drift), name
        verdicts.append((name, a.drift))
    drifted = {name for name, drift in verdicts if drift}
    assert {"age+1.0sd", "bmi+1.0sd", "glu+1.0sd", "sex 80% male"} <= drifted
    assert len([n for n in drifted if n.startswith("calm")]) <= 2


def test_one_sigma_shift_names_the_feature(reference: np.ndarray) -> None:
    backend = make_backend("scipy", reference, categorical=CATEGORICAL, p_val=0.05, correction="bonferroni")
    verdict = backend.test(Population(seed=9).rows(100, {"bp": 1.0}))
    assert verdict.drift
    assert [NAMES[i] for i in np.nonzero(verdict.feature_drift)[0]] == ["bp"]
    assert verdict.threshold == pytest.approx(0.01)


def test_prediction_backend_is_one_ks_test() -> None:
    population = Population(seed=3)
    ref = population.scores(250).reshape(-1, 1)
    for name in ("alibi", "scipy"):
        backend = make_backend(name, ref, categorical=(), p_val=0.05, correction="bonferroni")  # type: ignore[arg-type]
        assert not backend.test(population.scores(100).reshape(-1, 1)).drift
        shifted = backend.test(population.scores(100, shift=1.0).reshape(-1, 1))
        assert shifted.drift and shifted.threshold == pytest.approx(0.05)


def test_benjamini_hochberg_matches_the_textbook() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.2], dtype=np.float32)
    drift, threshold = corrected(p, 0.05, "fdr")
    assert drift and threshold == pytest.approx(0.02)  # 2nd smallest: 0.008 < 0.05*2/5
    assert corrected(np.array([0.5, 0.9]), 0.05, "fdr") == (False, pytest.approx(0.025))
    assert corrected(p, 0.05, "bonferroni") == (True, pytest.approx(0.01))
