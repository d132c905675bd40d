"""The overlay kernel against hand-computed answers and against geopandas.overlay."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon, box

from multiplan.core import overlay as overlay_mod
from multiplan.core.overlay import (
    OverlayResult,
    is_sliver,
    overlay_intersection,
    sliver_metrics,
)
from multiplan.core.tasks import Cancelled, CancelToken, Task

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import synthetic


def arr(*geoms: shapely.Geometry | None) -> np.ndarray:
    return np.array(list(geoms), dtype=object)


def pieces(res: OverlayResult) -> dict[tuple[int, int], float]:
    return {(int(i), int(j)): float(x) for i, j, x in zip(res.a_idx, res.b_idx, res.area,
                                                         strict=True)}


# ------------------------------------------------------------------ hand-computed cases


def test_overlapping_squares() -> None:
    res = overlay_intersection(arr(box(0, 0, 10, 10)), arr(box(5, 5, 15, 15)))
    assert pieces(res) == {(0, 0): 25.0}
    assert shapely.equals(res.geometry[0], box(5, 5, 10, 10))
    assert not res.contained[0]
    assert res.failures == [] and res.retried == []


def test_several_squares_known_overlaps() -> None:
    a = arr(box(0, 0, 4, 4), box(10, 0, 14, 4), box(20, 20, 21, 21))
    b = arr(box(2, 2, 12, 3), box(3, 0, 11, 1), box(100, 100, 101, 101))
    # a0∩b0: x 2..4, y 2..3 = 2; a0∩b1: x 3..4, y 0..1 = 1
    # a1∩b0: x 10..12, y 2..3 = 2; a1∩b1: x 10..11, y 0..1 = 1; a2, b2 meet nothing
    assert pieces(overlay_intersection(a, b)) == {(0, 0): 2.0, (0, 1): 1.0,
                                                  (1, 0): 2.0, (1, 1): 1.0}


def test_polygon_with_hole() -> None:
    holed = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(3, 3), (7, 3), (7, 7), (3, 7)]])
    assert holed.area == 84.0
    # left half x 0..5 is 50, minus the hole's part x 3..5, y 3..7 = 8
    res = overlay_intersection(arr(holed), arr(box(0, 0, 5, 10), box(4, 4, 6, 6)))
    assert pieces(res) == {(0, 0): 42.0}  # box(4,4,6,6) sits in the hole: no piece


def test_multipolygon_piece_is_one_row() -> None:
    multi = MultiPolygon([box(0, 0, 2, 2), box(10, 0, 12, 2)])
    res = overlay_intersection(arr(multi), arr(box(1, 0, 11, 1)))
    assert pieces(res) == {(0, 0): 2.0}
    assert res.geometry[0].geom_type == "MultiPolygon"
    assert shapely.equals(res.geometry[0], MultiPolygon([box(1, 0, 2, 1), box(10, 0, 11, 1)]))


def test_multipart_features_are_split_and_put_back_per_pair() -> None:
    # a0: two far-apart unit-4 squares; a1: a single square; b0 covers a0's west part and
    # half of a1; b1 is two parts: one covering a0's east part, one far away from everything
    a0 = MultiPolygon([box(0, 0, 2, 2), box(1000, 0, 1002, 2)])
    a1 = box(10, 0, 12, 2)
    b0 = box(-1, -1, 11, 3)
    b1 = MultiPolygon([box(999, -1, 1003, 3), box(5000, 5000, 5001, 5001)])
    res = overlay_intersection(arr(a0, a1), arr(b0, b1))
    # by hand: a0∩b0 = west square (4), a0∩b1 = east square (4), a1∩b0 = x 10..11 (2)
    assert pieces(res) == {(0, 0): 4.0, (0, 1): 4.0, (1, 0): 2.0}
    got = dict(zip(zip(res.a_idx.tolist(), res.b_idx.tolist()), res.contained.tolist(),
                   strict=True))
    # a part of a0 is not a0: only a whole feature as-is counts as contained
    assert got == {(0, 0): False, (0, 1): False, (1, 0): False}
    assert shapely.equals(res.geometry[0], box(0, 0, 2, 2))


def test_multipart_wholly_inside_is_contained_and_one_multipolygon() -> None:
    a0 = MultiPolygon([box(0, 0, 1, 1), box(5, 5, 6, 6), box(9, 0, 10, 1)])
    # b0 covers all three parts; b1 is itself two parts that together cover a0's first two
    b0 = box(-1, -1, 11, 11)
    b1 = MultiPolygon([box(-1, -1, 2, 2), box(4, 4, 7, 7)])
    res = overlay_intersection(arr(a0), arr(b0, b1))
    assert pieces(res) == {(0, 0): 3.0, (0, 1): 2.0}
    assert res.contained.tolist() == [True, False]
    assert shapely.equals(res.geometry[0], a0)
    assert res.geometry[1].geom_type == "MultiPolygon"
    assert shapely.equals(res.geometry[1], MultiPolygon([box(0, 0, 1, 1), box(5, 5, 6, 6)]))
    # the zone side as a whole multipart feature inside a parcel is contained too
    big = box(-10, -10, 10, 10)
    res = overlay_intersection(arr(big), arr(b1))
    assert pieces(res) == {(0, 0): 18.0} and res.contained.tolist() == [True]


def test_duplicate_geometries() -> None:
    p = Polygon([(0, 0), (6, 0), (5, 4), (1, 5)])
    q = Polygon([(0, 0), (6, 0), (5, 4), (1, 5)])  # equal, a different object
    inner = box(1, 0, 3, 1)  # inside p (its left edge is x = y/5)
    res = overlay_intersection(arr(p, q), arr(p, inner))
    assert set(pieces(res)) == {(0, 0), (1, 0), (0, 1), (1, 1)}
    for k in np.flatnonzero(res.b_idx == 0):
        assert res.contained[k] and res.area[k] == p.area == 22.5
        assert shapely.equals_exact(res.geometry[k], p, 0.0)
    for k in np.flatnonzero(res.b_idx == 1):
        assert res.contained[k] and res.area[k] == 2.0 and res.geometry[k] is inner


def test_shared_edge_only_is_no_piece() -> None:
    res = overlay_intersection(arr(box(0, 0, 1, 1)), arr(box(1, 0, 2, 1)))
    assert len(res) == 0


def test_touching_corner_only_is_no_piece() -> None:
    res = overlay_intersection(arr(box(0, 0, 1, 1)), arr(box(1, 1, 2, 2)))
    assert len(res) == 0


def test_contained_parcel_is_taken_as_is() -> None:
    parcel = Polygon([(2, 2), (3, 2), (3.5, 3), (2, 3)])
    res = overlay_intersection(arr(parcel), arr(box(0, 0, 10, 10)))
    assert pieces(res) == {(0, 0): parcel.area}
    assert res.contained[0]
    assert res.geometry[0] is parcel


def test_parcel_on_the_zone_edge_is_contained() -> None:
    # covered, not properly contained: shares two edges with the zone
    res = overlay_intersection(arr(box(0, 0, 1, 1)), arr(box(0, 0, 10, 10)))
    assert pieces(res) == {(0, 0): 1.0} and res.contained[0]


def test_zone_inside_parcel_is_taken_as_is() -> None:
    zone = box(2, 2, 3, 3)
    res = overlay_intersection(arr(box(0, 0, 10, 10)), arr(zone))
    assert pieces(res) == {(0, 0): 1.0} and res.contained[0]
    assert res.geometry[0] is zone


def test_collection_result_keeps_only_its_polygon() -> None:
    # overlap in box(3,3,4,4) plus a shared edge x=4, y 0..1: GEOS returns a collection
    a = box(0, 0, 4, 4)
    b = MultiPolygon([box(3, 3, 5, 5), box(4, 0, 5, 1)])
    assert shapely.intersection(a, b).geom_type == "GeometryCollection"
    res = overlay_intersection(arr(a), arr(b))
    assert pieces(res) == {(0, 0): 1.0}
    assert res.geometry[0].geom_type == "Polygon"
    assert shapely.equals(res.geometry[0], box(3, 3, 4, 4))


def test_none_and_empty_inputs_give_no_pieces() -> None:
    res = overlay_intersection(arr(None, Polygon(), box(0, 0, 2, 2)), arr(box(1, 1, 3, 3), None))
    assert pieces(res) == {(2, 0): 1.0}
    empty = overlay_intersection(arr(), arr(box(0, 0, 1, 1)))
    assert len(empty) == 0 and empty.a_idx.dtype == np.int64


@pytest.mark.parametrize("wkt", [
    "MULTIPOLYGON (((1 1, 1 5, 5 5, 5 1, 1 1), EMPTY))",  # GEOS ticket 234
    "POLYGON ((1 1, 1 5, 5 5, 5 1, 1 1), EMPTY)",
    "MULTIPOLYGON (((1 1, 1 5, 5 5, 5 1, 1 1)), EMPTY)",
    "MULTIPOLYGON (((9 9, 9 10, 10 10, 10 9, 9 9)), ((1 1, 1 5, 5 5, 5 1, 1 1), EMPTY))",
])
def test_empty_ring_does_not_crash(wkt: str) -> None:
    # a polygon with an EMPTY hole crashes GEOS 3.14 predicates (segfault, not an error)
    a = shapely.from_wkt(wkt)
    res = overlay_intersection(arr(box(3, 3, 4, 4), a), arr(a, box(0, 0, 2, 2)), threads=1)
    assert {k: v for k, v in pieces(res).items() if k[0] == 1 and k[1] == 1} == {(1, 1): 1.0}
    assert pieces(res)[(0, 0)] == 1.0 and res.contained[0]


def test_layers_sharing_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    # b is built from a's cells (like 基本农田 from 现状 parcels): most candidate pairs only
    # touch along shared edges, which the touch filter drops without intersecting them
    cells = np.array([box(x, y, x + 10, y + 10) for x in range(0, 300, 10)
                      for y in range(0, 300, 10)], dtype=object)
    blocks = np.array([box(x, y, x + 30, y + 20) for x in range(0, 300, 30)
                       for y in range(0, 300, 20)], dtype=object)
    shifted = np.array([box(x + 15, y, x + 45, y + 20) for x in range(0, 270, 30)
                        for y in range(0, 300, 20)], dtype=object)
    b = np.concatenate([blocks, shifted])
    expected = _geopandas_pieces(cells, b)
    real, intersected = shapely.intersection, []

    def counting(x, y, **kw):
        intersected.append(np.size(x))
        return real(x, y, **kw)

    monkeypatch.setattr(overlay_mod.shapely, "intersection", counting)
    res = overlay_intersection(cells, b, chunk_size=400)
    assert pieces(res) == pytest.approx(expected, rel=1e-12)
    # every cell lies in exactly one block and in one shifted block (whole or half)
    assert res.area.sum() == pytest.approx(300 * 300 + 270 * 300)
    assert res.contained.sum() == len(cells) + 9 * 15 * 4
    # only the half-covered cells (two columns per shifted block) need an intersection
    assert sum(intersected) == 9 * 15 * 4


def test_hub_on_either_side_gives_the_same_pieces() -> None:
    rng = np.random.default_rng(7)
    zones = synthetic.random_polygons(8, rng, extent=300.0, size=150.0)
    parcels = synthetic.random_polygons(150, rng, extent=300.0, size=20.0)
    ab = overlay_intersection(parcels, zones, chunk_size=37)
    ba = overlay_intersection(zones, parcels, chunk_size=37)
    swapped = {(j, i): x for (i, j), x in pieces(ba).items()}
    assert set(pieces(ab)) == set(swapped)
    for key, x in pieces(ab).items():
        assert x == pytest.approx(swapped[key], rel=1e-9)


def test_to_frame() -> None:
    res = overlay_intersection(arr(box(0, 0, 2, 2), box(5, 5, 6, 6)),
                               arr(box(1, 1, 3, 3), box(0, 0, 10, 10)))
    df = res.to_frame(["p0", "p1"], np.array([100, 200]), crs="EPSG:4549")
    assert isinstance(df, gpd.GeoDataFrame) and df.crs.to_epsg() == 4549
    assert list(df.columns) == ["a_id", "b_id", "area", "contained", "geometry"]
    assert list(zip(df.a_id, df.b_id, df.area, df.contained, strict=True)) == [
        ("p0", 100, 1.0, False), ("p0", 200, 4.0, True), ("p1", 200, 1.0, True)]
    plain = res.to_frame(geometry=False)
    assert "geometry" not in plain.columns and list(plain.a_id) == [0, 0, 1]


# ------------------------------------------------------------------ against geopandas


def _geopandas_pieces(a: np.ndarray, b: np.ndarray) -> dict[tuple[int, int], float]:
    da = gpd.GeoDataFrame({"i": np.arange(len(a))}, geometry=a)
    db = gpd.GeoDataFrame({"j": np.arange(len(b))}, geometry=b)
    out = gpd.overlay(da, db, how="intersection", keep_geom_type=True)
    return {(int(i), int(j)): float(x) for i, j, x in zip(out.i, out.j, out.area, strict=True)}


@pytest.mark.parametrize("threads, chunk_size", [(1, 20000), (2, 97)])
def test_random_layers_match_geopandas(threads: int, chunk_size: int) -> None:
    rng = np.random.default_rng(20261129)
    a = synthetic.random_polygons(400, rng, extent=1000.0, size=60.0)
    b = synthetic.random_polygons(120, rng, extent=1000.0, size=140.0)
    assert (shapely.get_num_interior_rings(shapely.get_parts(a)) > 0).any()
    assert (shapely.get_type_id(a) == 6).any()

    res = overlay_intersection(a, b, threads=threads, chunk_size=chunk_size)
    expected = _geopandas_pieces(a, b)
    tiny = 1e-6  # m²; both sides must agree on every piece above it
    ours = {k: v for k, v in pieces(res).items() if v > tiny}
    theirs = {k: v for k, v in expected.items() if v > tiny}
    assert set(ours) == set(theirs)
    for key, x in ours.items():
        assert x == pytest.approx(theirs[key], rel=1e-6)
    assert res.area.sum() == pytest.approx(sum(expected.values()), rel=1e-6)
    assert res.contained.any() and not res.contained.all()
    np.testing.assert_allclose(res.area, shapely.area(res.geometry))
    assert set(shapely.get_type_id(res.geometry)) <= {3, 6}
    order = np.lexsort((res.b_idx, res.a_idx))
    assert (order == np.arange(len(res))).all()


# ------------------------------------------------------------------ progress and cancel


def _layers(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return (synthetic.random_polygons(n, rng, extent=800.0, size=50.0),
            synthetic.random_polygons(n // 4, rng, extent=800.0, size=120.0))


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_reaches_one(threads: int) -> None:
    seen: list[float] = []
    a, b = _layers()
    overlay_intersection(a, b, task=Task(lambda f, m: seen.append(f)), threads=threads,
                         chunk_size=50)
    assert seen[-1] == 1.0
    assert seen == sorted(seen)
    assert len(seen) > 5


def test_cancelled_token_raises() -> None:
    token = CancelToken()
    token.cancel()
    a, b = _layers()
    with pytest.raises(Cancelled):
        overlay_intersection(a, b, task=Task(cancel=token))


@pytest.mark.parametrize("threads", [1, 2])
def test_cancel_during_run(threads: int) -> None:
    token = CancelToken()
    calls: list[float] = []

    def progress(f: float, msg: str) -> None:
        calls.append(f)
        if f > 0.1:
            token.cancel()

    a, b = _layers()
    before = threading.active_count()
    with pytest.raises(Cancelled):
        overlay_intersection(a, b, task=Task(progress, token), threads=threads, chunk_size=20)
    assert max(calls) < 0.9  # stopped early, not at the end
    assert threading.active_count() == before  # the pool is shut down


# ------------------------------------------------------------------ GEOS failures


def test_invalid_pair_is_retried_with_make_valid() -> None:
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    with pytest.raises(GEOSException):
        shapely.intersection(bowtie, box(5, -1, 15, 11))
    a = arr(bowtie, box(20, 0, 22, 2))
    b = arr(box(5, -1, 15, 11), box(21, 1, 30, 30))
    res = overlay_intersection(a, b)
    # make_valid splits the bow-tie into two triangles of 25; the right one is inside b
    assert pieces(res) == {(0, 0): pytest.approx(25.0), (1, 1): 1.0}
    assert res.retried == [(0, 0, "make_valid")]
    assert res.failures == []


def test_failing_pairs_are_recorded_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shapely.intersection
    never = box(100, 0, 103, 3)  # a[2] ∩ b[1] fails whatever is tried
    only_on_grid = box(200, 0, 203, 3)  # a[3] ∩ b[2] works on the precision grid only

    def flaky(x, y, grid_size=None, **kw):
        if np.ndim(x) > 0:  # a whole chunk: fail, forcing the pair-by-pair path
            raise GEOSException("TopologyException: simulated chunk failure")
        if shapely.equals(x, never):
            raise GEOSException("TopologyException: simulated pair failure")
        if shapely.equals(x, only_on_grid) and grid_size is None:
            raise GEOSException("TopologyException: needs a grid")
        return real(x, y, grid_size=grid_size, **kw)

    monkeypatch.setattr(overlay_mod.shapely, "intersection", flaky)
    a = arr(box(0, 0, 2, 2), box(10, 10, 11, 11), never, only_on_grid)
    b = arr(box(1, 1, 3, 3), box(101, 1, 110, 10), box(201, 1, 210, 10))
    res = overlay_intersection(a, b, grid_size_retry=0.5)
    assert pieces(res) == {(0, 0): 1.0, (3, 2): 4.0}
    assert res.failures == [(2, 1, "TopologyException: simulated pair failure")]
    assert res.retried == [(3, 2, "make_valid+grid_size=0.5")]


# ------------------------------------------------------------------ slivers


def test_sliver_metrics_hand_computed() -> None:
    strip, square = box(0, 0, 100, 2), box(0, 0, 30, 30)
    m = sliver_metrics(arr(strip, square), elongation=True)
    np.testing.assert_allclose(m["area"], [200.0, 900.0])
    np.testing.assert_allclose(m["perimeter"], [204.0, 120.0])
    np.testing.assert_allclose(m["mean_width"], [400 / 204, 15.0])
    np.testing.assert_allclose(m["compactness"], [4 * np.pi * 200 / 204**2, np.pi / 4])
    np.testing.assert_allclose(m["shape_index"], [204 / (2 * np.sqrt(200 * np.pi)),
                                                  120 / (2 * np.sqrt(900 * np.pi))])
    np.testing.assert_allclose(m["elongation"], [50.0, 1.0])


def test_is_sliver_rule() -> None:
    g = arr(box(0, 0, 100, 2),     # 200 m², 2 m wide: sliver by every test
            box(0, 0, 30, 30),     # 900 m² square: small, but not thin
            box(0, 0, 1000, 4),    # 4000 m² but 4 m wide: sliver by mean width
            box(0, 0, 100, 100))   # a real piece
    m = sliver_metrics(g)
    scale_only = is_sliver(m["area"], m["mean_width"])
    assert scale_only.tolist() == [True, True, True, False]
    with_shape = is_sliver(m["area"], m["mean_width"], compactness=m["compactness"])
    assert with_shape.tolist() == [True, False, True, False]
    strict = is_sliver(m["area"], m["mean_width"], max_area=100.0, max_width=1.0)
    assert strict.tolist() == [False, False, False, False]


# ------------------------------------------------------------------ benchmark smoke


def test_bench_smoke() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_overlay.py"),
                           "--smoke"], capture_output=True, text=True, timeout=120, cwd=REPO,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical pieces" in proc.stdout
