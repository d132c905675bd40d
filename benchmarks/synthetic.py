"""Synthetic county-scale layers for the overlay benchmark and tests.

Until the sample county builder lands this stands in for real data. It makes, in EPSG:4549
(CGCS2000 3-degree Gauss-Krüger, central meridian 120°E) coordinates:

- ``parcels``: a jittered-grid Voronoi tiling (≈150k cells over 40×40 km by default), with a
  few real-data oddities: about 1 % of parcels carry a hole that is itself another parcel
  (a homestead inside a field), about 0.5 % are two-part MultiPolygons, and about 0.1 % are
  exact duplicates of another parcel (a digitising error that overlays must survive);
- ``zones``: a second, independent Voronoi tiling (≈5k cells) of the same square, drawn on
  a grid rotated by 17° so its edges never line up with the parcels';
- ``redlines``: a few hundred pairwise-disjoint, irregular control-line polygons (buffered
  random walks, some with holes) that cover only part of the square.

Everything is deterministic for a given seed. The layers are synthetic and labelled so: they
have the sizes and the topology (tilings, holes, multiparts, duplicates) of county data, not
its shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

#: south-west corner of the default square, in EPSG:4549 metres (near 长兴县)
ORIGIN = (450_000.0, 3_300_000.0)
EPSG = 4549


@dataclass
class County:
    parcels: np.ndarray
    zones: np.ndarray
    redlines: np.ndarray
    side: float
    epsg: int = EPSG


def _jittered_voronoi(n: int, side: float, rng: np.random.Generator, *, angle: float = 0.0,
                      origin: tuple[float, float] = ORIGIN) -> np.ndarray:
    """About ``n`` Voronoi cells of jittered grid points tiling the square, in point order."""
    x0, y0 = origin
    # a rotated grid needs a larger lattice to cover the square; keep the cell size fixed
    cell = side / math.sqrt(n)
    c, s = math.cos(angle), math.sin(angle)
    half = side * (abs(c) + abs(s)) / 2.0
    k = np.arange(-half, half, cell) + cell / 2.0
    gx, gy = np.meshgrid(k, k)
    u = gx.ravel() + rng.uniform(-0.35, 0.35, gx.size) * cell
    v = gy.ravel() + rng.uniform(-0.35, 0.35, gy.size) * cell
    x = x0 + side / 2.0 + c * u - s * v
    y = y0 + side / 2.0 + s * u + c * v
    keep = (x > x0) & (x < x0 + side) & (y > y0) & (y < y0 + side)
    pts = shapely.multipoints(np.column_stack([x[keep], y[keep]]))
    frame = shapely.box(x0, y0, x0 + side, y0 + side)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame, ordered=True))
    cells = shapely.intersection(cells, frame)
    return cells[shapely.area(cells) > 0]


def _shrunk(polys: np.ndarray, factor: float) -> np.ndarray:
    """Each simple polygon's exterior scaled by ``factor`` about its own centroid."""
    rings = shapely.get_exterior_ring(polys)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    cen = shapely.get_coordinates(shapely.centroid(polys))
    coords = cen[idx] + factor * (coords - cen[idx])
    return shapely.polygons(shapely.linearrings(coords, indices=idx))


def make_parcels(cells: np.ndarray, rng: np.random.Generator, *, hole_rate: float = 0.01,
                 multi_rate: float = 0.005, dup_rate: float = 0.001) -> np.ndarray:
    n = len(cells)
    out = cells.copy()
    # holes: the inner part becomes a parcel of its own, so the layer still tiles
    holed = rng.choice(n, int(n * hole_rate), replace=False)
    inner = _shrunk(cells[holed], 0.45)
    out[holed] = shapely.polygons(shapely.get_exterior_ring(cells[holed]),
                                  holes=shapely.get_exterior_ring(inner)[:, None])
    # multiparts: parcel i absorbs a far-away cell j (j is then no parcel of its own)
    free = np.setdiff1d(np.arange(n), holed)
    pick = rng.choice(free, 2 * int(n * multi_rate), replace=False)
    i, j = pick[::2], pick[1::2]
    out[i] = shapely.multipolygons(np.column_stack([cells[i], cells[j]]))
    keep = np.ones(n, bool)
    keep[j] = False
    out = np.concatenate([out[keep], inner])
    # exact duplicates
    dup = rng.choice(len(out), int(len(out) * dup_rate), replace=False)
    return np.concatenate([out, out[dup]])


def make_redlines(n: int, side: float, rng: np.random.Generator, *,
                  origin: tuple[float, float] = ORIGIN) -> np.ndarray:
    """``n`` disjoint irregular polygons: buffered random walks, every fifth with a hole."""
    x0, y0 = origin
    out: list[shapely.Geometry] = []
    tree_geoms: list[shapely.Geometry] = []
    tries = 0
    while len(out) < n and tries < 20 * n:
        tries += 1
        start = rng.uniform([x0 + 500, y0 + 500], [x0 + side - 500, y0 + side - 500])
        steps = rng.normal(0, 250, (rng.integers(2, 7), 2))
        walk = np.vstack([start, start + np.cumsum(steps, axis=0)])
        g = shapely.buffer(shapely.linestrings(walk), rng.uniform(40, 300), quad_segs=4)
        if len(out) % 5 == 4:
            g = shapely.difference(g, shapely.buffer(shapely.points(start), 25, quad_segs=4))
        g = shapely.intersection(g, shapely.box(x0, y0, x0 + side, y0 + side))
        if tree_geoms and shapely.intersects(g, np.array(tree_geoms, dtype=object)).any():
            continue
        out.append(g)
        tree_geoms.append(shapely.buffer(g, 5.0, quad_segs=2))
    return np.array(out, dtype=object)


def make_county(parcels: int = 150_000, zones: int = 5_000, redlines: int = 300, *,
                side: float | None = None, seed: int = 20261129) -> County:
    """A synthetic county. ``side`` defaults to 40 km × √(parcels / 150k), so that a run with
    4× the parcels is a county 4× as large at the same parcel density."""
    if side is None:
        side = 40_000.0 * math.sqrt(parcels / 150_000)
    rng = np.random.default_rng(seed)
    cells = _jittered_voronoi(parcels, side, rng)
    par = make_parcels(cells, rng)
    zon = _jittered_voronoi(zones, side, rng, angle=math.radians(17))
    red = make_redlines(redlines, side, rng)
    return County(par, zon, red, side)


def random_polygons(n: int, rng: np.random.Generator, *, extent: float = 1000.0,
                    size: float = 60.0) -> np.ndarray:
    """Small random layers for tests: overlapping star-shaped polygons (some with holes),
    some two-part MultiPolygons, and a few exact duplicates."""
    k = rng.integers(5, 12, n)
    out = []
    for i in range(n):
        cx, cy = rng.uniform(0, extent, 2)
        # angles spread round the centre keep the polygon simple (star-shaped)
        ang = (np.arange(k[i]) + rng.uniform(0, 0.8, k[i])) * (2 * np.pi / k[i])
        r = rng.uniform(0.3, 1.0, k[i]) * size
        shell = np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)])
        g = shapely.Polygon(shell)
        if rng.random() < 0.2:  # a hole: a small square around the centre, if it fits
            h = 0.12 * size
            holed = shapely.Polygon(shell, [[(cx - h, cy - h), (cx + h, cy - h),
                                             (cx + h, cy + h), (cx - h, cy + h)]])
            g = holed if holed.is_valid else g
        if rng.random() < 0.15:  # a second part far enough away not to touch
            g = shapely.MultiPolygon([g, shapely.box(cx + 2.2 * size, cy, cx + 2.8 * size,
                                                     cy + 0.5 * size)])
        out.append(g)
    arr = np.array(out, dtype=object)
    dup = rng.choice(n, max(1, n // 50), replace=False)
    return np.concatenate([arr, arr[dup]])
