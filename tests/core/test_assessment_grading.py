"""Every threshold boundary of every factor, modifier and correction, on both sides.

The expected grades are typed here from domain.md §6.2 and the parameter file's stated
boundary rule ("boundary" on each table), not computed by the code under test. Each case is
value → grade; ``EPS`` is a small step to either side of a break. Values are tested as
float64 and float32 rasters (a float32 raster holding exactly a break equals it).
"""

from __future__ import annotations

import numpy as np
import pytest

from multiplan.core.assessment import combine as cb
from multiplan.core.assessment import grading as G
from multiplan.core.assessment.factors import relief_window
from multiplan.core.assessment.params import default_parameters

P = default_parameters()
EPS = 1e-3

# (table, [(value, expected grade), ...]); "right" tables: a break takes the lower interval,
# "left" tables: the upper one — both are "the better grade" except THI's warm side.
CASES = {
    "slope_agriculture": [(0, 1), (2, 1), (2 + EPS, 2), (6, 2), (6 + EPS, 3), (15, 3),
                          (15 + EPS, 4), (25, 4), (25 + EPS, 5), (89, 5)],
    "slope_urban": [(0, 1), (3, 1), (3 + EPS, 2), (8, 2), (8 + EPS, 3), (15, 3), (15 + EPS, 4),
                    (25, 4), (25 + EPS, 5)],
    "precipitation": [(0, 5), (200 - EPS, 5), (200, 4), (400 - EPS, 4), (400, 3), (800 - EPS, 3),
                      (800, 2), (1200 - EPS, 2), (1200, 1), (1300, 1)],
    "aridity": [(0.1, 1), (0.5, 1), (0.5 + EPS, 2), (1.0, 2), (1.0 + EPS, 3), (3.0, 3),
                (3.0 + EPS, 4), (7.0, 4), (7.0 + EPS, 5)],
    "water_modulus": [(0, 5), (30000 - EPS, 5), (30000, 4), (80000 - EPS, 4), (80000, 3),
                      (130000 - EPS, 3), (130000, 2), (250000 - EPS, 2), (250000, 1)],
    "water_total_modulus": [(50000 - EPS, 5), (50000, 4), (100000 - EPS, 4), (100000, 3),
                            (200000 - EPS, 3), (200000, 2), (500000 - EPS, 2), (500000, 1)],
    "thi": [(20, 5), (35 - EPS, 5), (35, 4), (40 - EPS, 4), (40, 3), (45 - EPS, 3), (45, 2),
            (50 - EPS, 2), (50, 1), (60, 1), (70 - EPS, 1), (70, 2), (75 - EPS, 2), (75, 3),
            (80 - EPS, 3), (80, 4), (85 - EPS, 4), (85, 5), (95, 5)],
    "travel_time": [(0, 1), (1, 1), (1 + EPS, 2), (2, 2), (2 + EPS, 3), (3.5, 3),
                    (3.5 + EPS, 4), (5, 4), (5 + EPS, 5)],
    "contiguity_plain": [(10, 5), (150 - EPS, 5), (150, 4), (400 - EPS, 4), (400, 3),
                         (600 - EPS, 3), (600, 2), (900 - EPS, 2), (900, 1)],
    "contiguity_hilly": [(80 - EPS, 5), (80, 4), (150 - EPS, 4), (150, 3), (250 - EPS, 3),
                         (250, 2), (400 - EPS, 2), (400, 1)],
    "concentration": [(0.1, 5), (0.25 - EPS, 5), (0.25, 4), (0.5 - EPS, 4), (0.5, 3),
                      (1 - EPS, 3), (1, 2), (2 - EPS, 2), (2, 1), (10, 1)],
}


def _near(v: float, breaks: list[float], dtype: str) -> float:
    """In float32, "just below/above a break" is the next representable value."""
    if dtype == "float64":
        return v
    b = min(breaks, key=lambda x: abs(x - v))
    if 0 < abs(v - b) <= 2 * EPS:
        return float(np.nextafter(np.float32(b), np.float32(np.inf if v > b else -np.inf)))
    return v


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_factor_boundaries(name: str, dtype: str) -> None:
    assert set(CASES) == set(P["factors"])  # every factor table is covered
    vals = np.array([_near(v, P["factors"][name]["breaks"], dtype) for v, _ in CASES[name]],
                    dtype=dtype)
    want = np.array([g for _, g in CASES[name]], dtype="uint8")
    got = G.grade(vals, P["factors"][name])
    assert got.tolist() == want.tolist(), list(zip(vals.tolist(), got.tolist()))


def test_nan_grades_zero() -> None:
    assert G.grade(np.array([np.nan, 3.0]), P["factors"]["slope_urban"]).tolist() == [0, 1]


# modifier: (value, grade before, grade after)
MODIFIERS = {
    "soil_silt": [(59.99, 1, 1), (60, 1, 2), (79.99, 1, 2), (80, 1, 5), (100, 2, 5),
                  (60, 5, 5), (np.nan, 2, 2)],
    "elevation": [(3499.9, 2, 2), (3500, 2, 3), (4999.9, 2, 3), (5000, 1, 5), (6000, 3, 5)],
    "relief": [(100, 1, 1), (100 + EPS, 1, 2), (200, 1, 2), (200 + EPS, 1, 3), (500, 4, 5),
               (0, 3, 3)],
}


@pytest.mark.parametrize("name", sorted(MODIFIERS))
def test_modifier_boundaries(name: str) -> None:
    assert set(MODIFIERS) == set(P["modifiers"])
    vals = np.array([c[0] for c in MODIFIERS[name]])
    before = np.array([c[1] for c in MODIFIERS[name]], dtype="uint8")
    want = [c[2] for c in MODIFIERS[name]]
    assert G.apply_modifier(before, vals, P["modifiers"][name]).tolist() == want


def test_modifier_never_touches_no_data() -> None:
    out = G.apply_modifier(np.array([0, 0], "uint8"), np.array([90.0, 65.0]),
                           P["modifiers"]["soil_silt"])
    assert out.tolist() == [0, 0]


@pytest.mark.parametrize("cell, window", [(10, 15), (29.9, 15), (30, 12), (49.9, 12),
                                          (50, 9), (99.9, 9), (100, 3), (120, 3), (500, 3)])
def test_relief_window_rule(cell: float, window: int) -> None:
    assert relief_window(cell, P["relief_window"]) == window


# compactness → action on a grade-3 patch (and on 1 and 5 to show the clamps)
@pytest.mark.parametrize("comp, g3, g1, g5", [
    (1.0, 1, 1, 1), (0.8, 1, 1, 1), (0.8 - EPS, 2, 1, 4), (0.6, 2, 1, 4), (0.6 - EPS, 3, 1, 5),
    (0.4, 3, 1, 5), (0.4 - EPS, 4, 2, 5), (0.2, 4, 2, 5), (0.2 - EPS, 5, 5, 5), (0.0, 5, 5, 5),
])
def test_compactness_boundaries(comp: float, g3: int, g1: int, g5: int) -> None:
    act = cb.compactness_action(np.array([comp] * 3), P)
    got = cb.apply_compactness(np.array([3, 1, 5], "uint8"), act, P)
    assert got.tolist() == [g3, g1, g5]


def test_compactness_nan_means_no_correction() -> None:
    act = cb.compactness_action(np.array([np.nan]), P)
    assert act.tolist() == [-1]
    assert cb.apply_compactness(np.array([3], "uint8"), act, P).tolist() == [3]


def test_five_to_three_and_two() -> None:
    g = np.array([0, 1, 2, 3, 4, 5], "uint8")
    assert cb.suitability_classes(g, P).tolist() == [0, 1, 1, 2, 2, 3]
    two = dict(P, classes=dict(P["classes"], scheme="two"))
    assert cb.suitability_classes(g, two).tolist() == [0, 1, 1, 1, 1, 3]
    excl = np.array([False, True, False, False, False, True])
    assert cb.suitability_classes(g, P, excl).tolist() == [0, 4, 1, 2, 2, 4]


def test_modal_grade_ties_go_to_the_worse_grade() -> None:
    m = np.array([[1], [1], [2], [2], [3]], "uint8")  # tie 1/2 → 2
    assert G.modal_grade(m, "worse").ravel().tolist() == [2]
    assert G.modal_grade(m, "better").ravel().tolist() == [1]
    m = np.array([[5], [5], [5], [1], [0]], "uint8")
    assert G.modal_grade(m).ravel().tolist() == [5]
    assert G.modal_grade(np.zeros((12, 1), "uint8")).ravel().tolist() == [0]


def test_lookup_matrix_zero_is_no_data() -> None:
    t = P["matrices"]["urban_land_water"]["table"]
    assert G.lookup_matrix(np.array([0, 1]), np.array([1, 0]), t).tolist() == [0, 0]
