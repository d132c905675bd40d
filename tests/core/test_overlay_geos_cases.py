"""GEOS's published area–area overlay cases run through multiplan's overlay kernel.

The cases live outside the repository, in ``../shared/data/geos-overlay-cases`` (GEOS XML test
suite, LGPL-2.1; see the README there). Two kinds of test are used:

- ``intersection`` (and its ``NG``/``SR``/``SIN`` variants): the kernel's pieces for the
  single pair (A, B) must match the expected geometry's polygonal part. The measure is the
  area of the symmetric difference, and the difference of areas. On a floating precision
  model the tolerance is 1e-6 of area(A)+area(B) (the normalisation GEOS uses); where the
  expected result was computed on a precision grid (a ``precisionModel scale`` or ``arg3``)
  the kernel still computes in floating point, so the tolerance is what snap-rounding can
  move: grid size × the longer boundary of the two results.
- ``overlayAreaTest``: no expected geometry; the area identities of GEOS's ``areaDelta``
  (A = A∩B + A−B, B = A∩B + B−A, A∪B = A∩B + A−B + B−A, ...) must hold within 1e-6 of
  area(A)+area(B), with A∩B taken from the kernel and the other terms from shapely.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import shapely

from multiplan.core.overlay import overlay_intersection

CASES_DIR = Path(__file__).parents[2].parent / "shared" / "data" / "geos-overlay-cases"

pytestmark = pytest.mark.skipif(
    not CASES_DIR.is_dir(), reason=f"GEOS overlay cases not found at {CASES_DIR}")

_HEX = re.compile(r"[0-9A-Fa-f]+")
_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class Case:
    id: str
    op: str
    a: shapely.Geometry
    b: shapely.Geometry
    expected: shapely.Geometry | None
    grid: float | None  # grid size of the expected result; None for floating precision


def _geom(text: str) -> shapely.Geometry:
    text = text.strip()
    if _HEX.fullmatch(text):
        return shapely.from_wkb(bytes.fromhex(text))
    return shapely.from_wkt(text)


def _grid_of(pm: ET.Element | None, arg3: str | None) -> float | None:
    if arg3 is not None:
        return 1.0 / float(arg3)
    if pm is not None and pm.get("scale") is not None:
        return 1.0 / float(pm.get("scale"))
    return None


def _load_cases() -> tuple[list[Case], list[Case]]:
    inter: list[Case] = []
    area_tests: list[Case] = []
    if not CASES_DIR.is_dir():
        return inter, area_tests
    for path in sorted(CASES_DIR.glob("*.xml")):
        if path.stat().st_size == 0:  # TestOverlay-stmlf.xml ships empty
            continue
        root = ET.parse(path).getroot()
        pm = root.find("precisionModel")
        for n, case in enumerate(root.iter("case")):
            a_el, b_el = case.find("a"), case.find("b")
            if a_el is None or b_el is None:
                continue
            a, b = _geom(a_el.text), _geom(b_el.text)
            if a.geom_type not in _POLYGONAL or b.geom_type not in _POLYGONAL:
                continue  # area–area cases only
            for op in case.iter("op"):
                name = op.get("name", "").lower()
                if (op.get("arg1"), op.get("arg2")) != ("A", "B"):
                    continue
                cid = f"{path.stem}#{n}:{op.get('name')}"
                if name.startswith("intersection"):
                    inter.append(Case(cid, name, a, b, _geom(op.text),
                                      _grid_of(pm, op.get("arg3"))))
                elif name == "overlayareatest":
                    area_tests.append(Case(cid, name, a, b, None, None))
    return inter, area_tests


INTERSECTION_CASES, AREA_TEST_CASES = _load_cases()


def _polygonal_part(g: shapely.Geometry) -> shapely.Geometry:
    parts = shapely.get_parts(shapely.get_parts(g))
    polys = [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
    return shapely.MultiPolygon(polys)


def _kernel_intersection(a: shapely.Geometry, b: shapely.Geometry) -> shapely.Geometry:
    res = overlay_intersection(np.array([a]), np.array([b]), threads=1)
    assert not res.failures, res.failures
    assert len(res) <= 1 and (len(res) == 0 or (res.a_idx[0], res.b_idx[0]) == (0, 0))
    np.testing.assert_allclose(res.area, shapely.area(res.geometry))
    return res.geometry[0] if len(res) else shapely.MultiPolygon()


def test_cases_were_found() -> None:
    assert len(INTERSECTION_CASES) >= 50
    assert len(AREA_TEST_CASES) >= 100


@pytest.mark.parametrize("case", INTERSECTION_CASES, ids=lambda c: c.id)
def test_geos_intersection_case(case: Case) -> None:
    ours = _kernel_intersection(case.a, case.b)
    expected = _polygonal_part(case.expected)
    if case.grid is None:
        tol = 1e-6 * (case.a.area + case.b.area)
    else:
        tol = case.grid * max(ours.length, expected.length)
    assert abs(ours.area - expected.area) <= tol
    assert shapely.symmetric_difference(ours, expected).area <= tol


@pytest.mark.parametrize("case", AREA_TEST_CASES, ids=lambda c: c.id)
def test_geos_overlay_area_identities(case: Case) -> None:
    a, b = case.a, case.b
    area_i = _kernel_intersection(a, b).area
    area_u = shapely.union(a, b).area
    area_ab = shapely.difference(a, b).area
    area_ba = shapely.difference(b, a).area
    area_sd = shapely.symmetric_difference(a, b).area
    deltas = [
        abs(a.area - area_i - area_ab),
        abs(b.area - area_i - area_ba),
        abs(area_ab + area_ba - area_sd),
        abs(area_i + area_sd - area_u),
        abs(area_u - area_i - area_ab - area_ba),
    ]
    assert max(deltas) / (a.area + b.area) < 1e-6
