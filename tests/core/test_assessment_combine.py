"""Combination exactly as domain.md §6.3, cell by cell.

The matrices below are typed again from domain.md §6.3 (rows = first factor grade 1–5,
columns = second), so the test checks the parameter file *and* the lookup code against the
reference, not against themselves.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from multiplan.core.assessment import combine as cb
from multiplan.core.assessment.params import default_parameters

P = default_parameters()

URBAN = [[1, 1, 1, 2, 3], [1, 1, 2, 2, 3], [2, 2, 3, 3, 4], [3, 4, 4, 5, 5], [5, 5, 5, 5, 5]]
AGRI = [[1, 1, 1, 2, 5], [1, 1, 2, 3, 5], [2, 2, 3, 4, 5], [3, 4, 4, 5, 5], [5, 5, 5, 5, 5]]
LIGHT_HEAT = [[1, 1, 1, 2, 5], [1, 2, 2, 3, 5], [2, 2, 3, 4, 5], [3, 4, 4, 5, 5],
              [5, 5, 5, 5, 5]]
# 极重要 1 · 重要 2 · 一般 3
ECO = [[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [2, 2, 2, 2, 3], [2, 2, 2, 3, 3], [3, 3, 3, 3, 3]]
# 适宜 1 · 一般适宜 2 · 不适宜 3
CONTIGUITY = [[1, 1, 1, 2, 3], [1, 1, 2, 2, 3], [2, 2, 2, 2, 3], [2, 2, 2, 2, 3],
              [3, 3, 3, 3, 3]]

PAIRS = list(itertools.product(range(1, 6), range(1, 6)))
ROWS = np.array([r for r, _ in PAIRS], "uint8")
COLS = np.array([c for _, c in PAIRS], "uint8")


def expected(table: list[list[int]]) -> list[int]:
    return [table[r - 1][c - 1] for r, c in PAIRS]


def test_urban_land_by_water_cell_by_cell() -> None:
    assert cb.urban_grade(ROWS, COLS, P).tolist() == expected(URBAN)


def test_agriculture_land_by_water_cell_by_cell() -> None:
    assert cb.agriculture_grade(ROWS, COLS, P).tolist() == expected(AGRI)


def test_light_heat_table_cell_by_cell() -> None:
    from multiplan.core.assessment.grading import lookup_matrix

    got = lookup_matrix(ROWS, COLS, P["matrices"]["agriculture_light_heat"]["table"])
    assert got.tolist() == expected(LIGHT_HEAT)
    # through agriculture_grade: land r × water 1 gives base AGRI[r][0], then × light-heat c
    for land in range(1, 6):
        base = AGRI[land - 1][0]
        lh = np.arange(1, 6, dtype="uint8")
        got = cb.agriculture_grade(np.full(5, land, "uint8"), np.ones(5, "uint8"), P,
                                   {"light_heat": lh})
        assert got.tolist() == LIGHT_HEAT[base - 1]
    # a cell without a light-heat grade (0) keeps its base
    assert cb.agriculture_grade(np.array([2], "uint8"), np.array([4], "uint8"), P,
                                {"light_heat": np.array([0], "uint8")}).tolist() == [3]


def test_ecology_concentration_cell_by_cell() -> None:
    assert cb.ecology_importance(ROWS, COLS, P).tolist() == expected(ECO)


def test_agriculture_contiguity_cell_by_cell() -> None:
    assert cb.contiguity_classes(ROWS, COLS, P).tolist() == expected(CONTIGUITY)
    two = dict(P, classes=dict(P["classes"], scheme="two"))
    assert cb.contiguity_classes(ROWS, COLS, two).tolist() == [
        1 if v in (1, 2) else 3 for v in expected(CONTIGUITY)]


def u(base: list[int], **codes: list[int]) -> list[int]:
    c = {k: np.array(v, "uint8") for k, v in codes.items()}
    return cb.apply_penalties(np.array(base, "uint8"), P["penalties"]["urban"], c).tolist()


def a(base: list[int], **codes: list[int]) -> list[int]:
    c = {k: np.array(v, "uint8") for k, v in codes.items()}
    return cb.apply_penalties(np.array(base, "uint8"), P["penalties"]["agriculture"], c).tolist()


def test_urban_penalties_one_by_one() -> None:
    # 风暴潮: code 1 → 5; 2 → +2; 3 → +1; other codes (and 0 = outside) unchanged
    assert u([1, 1, 1, 1, 1], storm_surge=[1, 2, 3, 4, 0]) == [5, 3, 2, 1, 1]
    # 地质灾害: code 1 → +1
    assert u([1, 4, 5, 2], geohazard=[1, 1, 1, 2]) == [2, 5, 5, 2]
    # 大气/水环境容量: one at grade 5 → +1, both → +2
    assert u([1, 1, 1, 1], air_capacity=[5, 5, 1, 4], water_env_capacity=[1, 5, 5, 4]) == \
        [2, 3, 2, 1]
    assert u([1, 1], air_capacity=[5, 3]) == [2, 1]  # only one layer present
    # 气候舒适度 (THI grade 5, the worst) → +1
    assert u([1, 1, 3], thi=[5, 4, 5]) == [2, 1, 4]
    # 区位优势度: 5 → +2; 4 → +1; 1 → −1 only when the grade is 2–4
    assert u([1, 1, 2, 3, 4, 5, 1, 3], location=[5, 4, 1, 1, 1, 1, 1, 3]) == \
        [3, 2, 1, 2, 3, 5, 1, 3]


def test_urban_penalties_in_order_with_clamp_after_each_step() -> None:
    # base 4: storm surge 2 → 6 → clamp 5; location 1 → 4 (5 is not in 2–4, so no: stays 5)
    assert u([4], storm_surge=[2], location=[1]) == [5]
    # base 3: geohazard +1 → 4; location 1 → 3 (4 is in 2–4)
    assert u([3], geohazard=[1], location=[1]) == [3]
    # base 5, storm surge 3 → 6 → 5, THI 5 → 5 (clamped after each step)
    assert u([5], storm_surge=[3], thi=[5]) == [5]
    # no data (0) is never penalised
    assert u([0], storm_surge=[1], geohazard=[1]) == [0]


def test_agriculture_penalties_chain() -> None:
    # 土壤环境: grade 5 → 5; grade 3 → +1; grade 4 left as written
    assert a([1, 1, 1, 2], soil_environment=[5, 3, 4, 1]) == [5, 2, 1, 2]
    # 盐渍化 code 1 → +1
    assert a([1, 3], salinisation=[1, 2]) == [2, 3]
    # 气象灾害 code 1 with grade 1 → 2; other grades untouched
    assert a([1, 2, 1], meteo_hazard=[1, 1, 2]) == [2, 2, 1]
    # chained: soil env 3 makes 1 → 2, so the meteorological rule (only for grade 1) no
    # longer applies — S4 computed both from the same base and kept the last (a bug)
    assert a([1], soil_environment=[3], meteo_hazard=[1]) == [2]
    # salinisation then meteo: 1 → 2 → (meteo needs 1) stays 2
    assert a([1], salinisation=[1], meteo_hazard=[1]) == [2]


def test_missing_penalty_factors_are_skipped() -> None:
    assert u([2, 3]) == [2, 3]
    assert a([2, 3]) == [2, 3]


def test_ecology_level_is_the_higher_importance() -> None:
    s1 = np.array([3, 1, 0, 5, 0], "uint8")
    s2 = np.array([2, 4, 4, 0, 0], "uint8")
    fr = np.array([5, 5, 3, 5, 0], "uint8")
    assert cb.ecology_level([s1, s2, fr], (5,)).tolist() == [2, 1, 3, 5, 5]
    assert cb.ecology_level([], (2,)).tolist() == [5, 5]


def test_land_grades() -> None:
    slope = np.array([1.0, 2.5, 7.0, 20.0, 30.0, np.nan])
    assert cb.agriculture_land(slope, P).tolist() == [1, 2, 3, 4, 5, 0]
    silt = np.array([85.0, 65.0, 10.0, np.nan, 65.0, 90.0])
    assert cb.agriculture_land(slope, P, silt).tolist() == [5, 3, 3, 4, 5, 0]
    elev = np.array([10.0, 3600.0, 100.0, 100.0, 5200.0, 10.0])
    rel = np.array([50.0, 50.0, 150.0, 250.0, 10.0, 10.0])
    # slope grades (urban): 1, 1, 2, 4, 5, 0; then elevation, then relief
    assert cb.urban_land(slope, elev, rel, P).tolist() == [1, 2, 3, 5, 5, 0]


@pytest.mark.parametrize("area_km2, level, want", [
    (3.0, 1, 1), (0.3, 1, 2), (0.1, 1, 3), (1.5, 3, 2), (0.3, 4, 3), (5.0, 5, 3),
])
def test_ecology_end_to_end_small_cases(area_km2: float, level: int, want: int) -> None:
    conc = cb.concentration_grade(np.array([area_km2]), P)
    assert cb.ecology_importance(np.array([level], "uint8"), conc, P).tolist() == [want]
