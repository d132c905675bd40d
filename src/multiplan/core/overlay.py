"""The vectorised overlay kernel: pairwise polygon intersection of two whole layers.

``overlay_intersection(a, b)`` returns every polygonal piece ``a[i] ∩ b[j]`` with positive
area. It works on whole arrays and does exact geometry only where it must:

1. **Candidates.** One bulk ``STRtree`` query of ``a`` against a tree of ``b`` gives every
   pair whose bounding boxes meet.
2. **Classify** each pair with prepared predicates. The side with fewer distinct geometries
   among the candidates is the *hub* (usually the zones: each is reused by ~150 parcels) and
   is prepared; the other side is tested against it:

   - hub ``covers`` other → the piece is the other geometry as it is, no intersection;
   - otherwise not ``intersects`` → disjoint, dropped;
   - otherwise, where the other's box contains the hub's box, hub ``covered_by`` other →
     the piece is the hub as it is;
   - everything else crosses a boundary and goes to the exact step.

   ``covers`` rather than ``contains_properly``: a parcel that shares an edge with its zone
   is still wholly inside it, and ``a ∩ b = a`` exactly when ``b`` covers ``a``.
3. **Exact** ``shapely.intersection`` of the crossing pairs only, then reduction to the
   polygonal part (GeometryCollections keep their polygons; lines and points — shared edges,
   touching corners — are no pieces) and removal of zero-area results.

Steps 2–3 run per chunk of candidate pairs on ``threads`` worker threads (shapely releases
the GIL). Each chunk prepares its **own copies** of its hub geometries, so no prepared
geometry is ever shared between threads (sharing them can crash: see platform notes); the
caller's geometries are never prepared or modified. Progress is reported and cancellation
checked once per finished chunk.

A GEOS error on a chunk never aborts the run: the chunk is redone pair by pair, a failing
pair is retried after ``make_valid`` of both inputs, then on a precision grid, and only if
that also fails is it recorded in ``OverlayResult.failures``. Pairs that needed a retry are
listed in ``OverlayResult.retried`` so reports can say so.

``sliver_metrics`` and ``is_sliver`` measure pieces for the sliver rule of domain.md §5.4.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.errors import ShapelyError

from multiplan.core.tasks import Task, ensure_task

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_GRID_SIZE",
    "OverlayResult",
    "is_sliver",
    "overlay_intersection",
    "sliver_metrics",
]

#: precision grid (metres) of the last retry for a pair that GEOS cannot intersect
DEFAULT_GRID_SIZE = 0.001

_POLYGON, _MULTIPOLYGON, _COLLECTION = 3, 6, 7


@dataclass
class OverlayResult:
    """The pieces of an overlay, one row per piece, sorted by ``(a_idx, b_idx)``.

    ``a_idx``/``b_idx`` are positions into the input arrays; ``geometry`` holds Polygons or
    MultiPolygons; ``area`` is planar, in squared CRS units (m² in a projected CRS);
    ``contained`` is True where the piece is an input geometry taken as-is because the other
    side covers it. ``failures`` lists ``(a_pos, b_pos, message)`` for pairs that could not
    be intersected even after repair; ``retried`` lists ``(a_pos, b_pos, how)`` for pairs
    that succeeded only after ``make_valid`` or on a precision grid.
    """

    a_idx: np.ndarray
    b_idx: np.ndarray
    geometry: np.ndarray
    area: np.ndarray
    contained: np.ndarray
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    retried: list[tuple[int, int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.a_idx)

    def to_frame(self, a_ids: Any = None, b_ids: Any = None, *, crs: Any = None,
                 geometry: bool = True) -> pd.DataFrame:
        """A table of the pieces: ``a_id``, ``b_id``, ``area``, ``contained`` (+ geometry).

        ``a_ids``/``b_ids`` are sequences aligned with the inputs (e.g. each feature's BSM);
        without them the ids are the positions. With ``geometry=True`` (default) the result
        is a GeoDataFrame in ``crs``; otherwise a plain DataFrame.
        """
        import pandas as pd

        a_col = self.a_idx if a_ids is None else np.asarray(a_ids)[self.a_idx]
        b_col = self.b_idx if b_ids is None else np.asarray(b_ids)[self.b_idx]
        data = {"a_id": a_col, "b_id": b_col, "area": self.area, "contained": self.contained}
        if not geometry:
            return pd.DataFrame(data)
        import geopandas as gpd

        return gpd.GeoDataFrame(data, geometry=gpd.array.from_shapely(self.geometry, crs=crs))


def overlay_intersection(a: Any, b: Any, *, task: Task | None = None, threads: int = 2,
                         chunk_size: int = 20000,
                         grid_size_retry: float | None = None) -> OverlayResult:
    """Every polygonal piece of ``a[i] ∩ b[j]`` with positive area.

    ``a`` and ``b`` are arrays (or sequences, or GeoSeries) of shapely Polygons/MultiPolygons
    in one projected CRS; the caller handles CRS. None and empty geometries yield no pieces.
    ``chunk_size`` is the number of candidate pairs per unit of work, of progress and of
    cancellation; ``threads`` the number of worker threads (1 runs in the calling thread).
    ``grid_size_retry`` is the precision grid of the last retry of a failing pair
    (default ``DEFAULT_GRID_SIZE`` = 0.001 m). Raises ``Cancelled`` when the task's token is
    set; never raises for a GEOS failure on individual pairs (see ``failures``).
    """
    task = ensure_task(task)
    grid = DEFAULT_GRID_SIZE if grid_size_retry is None else float(grid_size_retry)
    a, b = _as_geometry_array(a), _as_geometry_array(b)
    task.progress(0.0, "叠加求交：检索候选 / overlay: finding candidate pairs")
    pool = (ThreadPoolExecutor(max_workers=threads, thread_name_prefix="overlay")
            if threads > 1 else None)
    stop = threading.Event()
    try:
        result = _overlay(a, b, task, pool, stop, chunk_size, grid)
    except BaseException:
        # cancelled (or a bug): drop the chunks not started, let running ones finish
        stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    if pool is not None:
        pool.shutdown(wait=True)
    task.progress(1.0, "叠加求交完成 / overlay done")
    return result


def _overlay(a: np.ndarray, b: np.ndarray, task: Task, pool: ThreadPoolExecutor | None,
             stop: threading.Event, chunk_size: int, grid: float) -> OverlayResult:
    # cleaning ``a`` holds the GIL while the tree query releases it: run them side by side
    # (the query only reads envelopes, which empty rings do not change)
    # multi-part features are split into their polygons first, so that a feature whose parts
    # lie far apart (a red line stored as one MultiPolygon, a parcel in two places) does not
    # make a box that meets thousands of features it never touches; pieces are put back
    # together per pair of features at the end
    n_a, n_b = len(a), len(b)
    b, b_of, _ = _polygons(b)
    tree = shapely.STRtree(b)
    if pool is None:
        a, a_of, _ = _polygons(a)
        a_pos, b_pos = tree.query(a)
    else:
        # cleaning ``a`` holds the GIL while the tree query releases it: query with the raw
        # features meanwhile (empty rings do not change envelopes), then re-query only the
        # parts of the features that were split
        cleaned = pool.submit(lambda: _polygons(a))
        raw_a, raw_b = tree.query(a)
        a, a_of, several = cleaned.result()
        if a_of is None:
            a_pos, b_pos = raw_a, raw_b
        else:
            whole = np.ones(n_a, bool)
            whole[several] = False
            n_whole = int(whole.sum())
            remap = np.full(n_a, -1, np.int64)
            remap[whole] = np.arange(n_whole)
            m = whole[raw_a]
            part_a, part_b = tree.query(a[n_whole:])
            a_pos = np.concatenate([remap[raw_a[m]], part_a + n_whole])
            b_pos = np.concatenate([raw_b[m], part_b])
    if len(a_pos) == 0:
        return _empty_result()

    # the hub is the side reused by more pairs: it is the one worth preparing
    hub_is_a = (np.count_nonzero(np.bincount(a_pos, minlength=len(a)))
                < np.count_nonzero(np.bincount(b_pos, minlength=len(b))))
    hub, other = (a, b) if hub_is_a else (b, a)
    h_pos, o_pos = (a_pos, b_pos) if hub_is_a else (b_pos, a_pos)
    # a stable sort of 16-bit keys is a radix sort: ~10× faster than on int64
    key = h_pos.astype(np.uint16) if len(hub) <= np.iinfo(np.uint16).max else h_pos
    order = np.argsort(key, kind="stable")
    h_pos, o_pos = h_pos[order], o_pos[order]
    chunks = _chunk_bounds(h_pos, chunk_size)
    task.progress(0.05, "叠加求交 / overlay: intersecting")

    def work(lo: int, hi: int) -> _ChunkOut | None:
        if stop.is_set():
            return None
        return _process_chunk(hub, other, hub_is_a, h_pos[lo:hi], o_pos[lo:hi], grid)

    total = len(h_pos)

    def report(done: int) -> None:
        task.progress(0.05 + 0.9 * done / total,
                      f"叠加求交 / overlay: {done:,}/{total:,} 对 pairs")

    outs = _run_chunks(work, chunks, pool, report)
    return _assemble(outs, hub_is_a, a_of, b_of, n_a, n_b)


# --------------------------------------------------------------------------- internals


@dataclass
class _ChunkOut:
    h: np.ndarray
    o: np.ndarray
    geometry: np.ndarray
    area: np.ndarray
    as_is: np.ndarray  # _OTHER_INSIDE / _HUB_INSIDE where the piece is that input as-is, else 0
    failures: list[tuple[int, int, str]]
    retried: list[tuple[int, int, str]]


def _as_geometry_array(g: Any) -> np.ndarray:
    arr = np.asarray(g, dtype=object)
    if arr.ndim != 1:
        arr = arr.ravel()
    return arr


def _without_empty_parts(arr: np.ndarray) -> np.ndarray:
    """Drop empty rings and empty polygons inside (Multi)Polygons.

    GEOS 3.14 predicates (covers, covered_by, intersects, touches; prepared or not) can
    crash the process on a polygon with an EMPTY interior ring, e.g. GEOS ticket 234's
    ``MULTIPOLYGON (((1 1, 1 5, 5 5, 5 1, 1 1), EMPTY))``. Which calls crash depends on the
    other geometry, so every input is cleaned before any predicate sees it. Extracting the
    parts of MultiPolygons costs ≈1.6 µs each (≈0.25 s for a 150k layer read from a
    GeoPackage, where every feature is a MultiPolygon); polygons cost ≈0.3 µs.

    Only holes can be such rings: polygons without holes are skipped at once; of
    MultiPolygons only the parts with holes have their rings inspected. The few found are
    rebuilt (the same point set) in a copy of the array.
    """
    tid = shapely.get_type_id(arr)
    holed = np.flatnonzero((tid == _POLYGON) & (shapely.get_num_interior_rings(arr) > 0))
    multi = np.flatnonzero(tid == _MULTIPOLYGON)
    # most MultiPolygons read from files have one part: get_geometry is cheaper there
    n_parts = shapely.get_num_geometries(arr[multi])
    single, several = multi[n_parts == 1], multi[n_parts > 1]
    more, more_of = shapely.get_parts(arr[several], return_index=True)
    parts = np.concatenate([shapely.get_geometry(arr[single], 0), more])
    owner = np.concatenate([single, several[more_of]])
    bad_multi = [owner[shapely.is_empty(parts)]]
    with_holes = np.flatnonzero(shapely.get_num_interior_rings(parts) > 0)
    suspects = np.concatenate([holed, owner[with_holes]])
    rings, ring_of = shapely.get_rings(np.concatenate([arr[holed], parts[with_holes]]),
                                       return_index=True)
    bad = np.unique(np.concatenate(bad_multi + [suspects[ring_of[shapely.is_empty(rings)]]]))
    if not len(bad):
        return arr
    arr = arr.copy()
    for k in bad:
        polys = [shapely.Polygon(p.exterior, [r for r in p.interiors if not r.is_empty])
                 for p in shapely.get_parts(arr[k]) if not p.is_empty]
        arr[k] = (shapely.MultiPolygon(polys) if tid[k] == _MULTIPOLYGON
                  else polys[0] if polys else shapely.Polygon())
    return arr


def _polygons(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`_explode`, then :func:`_without_empty_parts` on the polygons (splitting first
    means every one-part MultiPolygon is unwrapped once, not twice)."""
    parts, owner, several = _explode(arr)
    return _without_empty_parts(parts), owner, several


def _explode(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The polygons of ``arr`` and, when any feature has several, the feature of each.

    Returns ``(parts, owner, several)``; ``owner`` is None when ``parts`` is aligned with
    ``arr`` (no feature has more than one polygon; one-part MultiPolygons — every feature
    read from a GeoPackage — are replaced by their polygon, the same point set). Otherwise
    the other features come first in their order, then the parts of the features listed in
    ``several`` (sorted).
    """
    none = np.empty(0, np.int64)
    tid = shapely.get_type_id(arr)
    multi = np.flatnonzero(tid == _MULTIPOLYGON)
    if not len(multi):
        return arr, None, none
    n_parts = shapely.get_num_geometries(arr[multi])
    out = arr.copy()
    single = multi[n_parts == 1]
    out[single] = shapely.get_geometry(arr[single], 0)
    out[multi[n_parts == 0]] = None
    several = multi[n_parts > 1]
    if not len(several):
        return out, None, none
    parts, of = shapely.get_parts(arr[several], return_index=True)
    solid = ~shapely.is_empty(parts)  # an EMPTY part is no polygon of the feature
    parts, of = parts[solid], of[solid]
    keep = np.ones(len(arr), bool)
    keep[several] = False
    owner = np.concatenate([np.flatnonzero(keep), several[of]])
    return np.concatenate([out[keep], parts]), owner, several


def _empty_result() -> OverlayResult:
    return OverlayResult(np.empty(0, np.int64), np.empty(0, np.int64),
                         np.empty(0, dtype=object), np.empty(0, np.float64),
                         np.empty(0, bool))


def _chunk_bounds(h_pos: np.ndarray, chunk_size: int) -> list[tuple[int, int]]:
    """Split the hub-sorted pairs into runs of about ``chunk_size``, cutting between hubs
    where that is possible (a hub with more pairs than a chunk is split; each chunk prepares
    its own copy of it)."""
    n = len(h_pos)
    chunk_size = max(int(chunk_size), 1)
    starts = np.flatnonzero(np.r_[True, h_pos[1:] != h_pos[:-1]])
    cuts = [0]
    while cuts[-1] < n:
        target = cuts[-1] + chunk_size
        if target >= n:
            cuts.append(n)
            break
        k = np.searchsorted(starts, target, side="right") - 1
        cut = int(starts[k])
        cuts.append(cut if cut > cuts[-1] else target)
    return list(itertools.pairwise(cuts))


def _run_chunks(work: Callable[[int, int], _ChunkOut | None],
                chunks: list[tuple[int, int]], pool: ThreadPoolExecutor | None,
                report: Callable[[int], None]) -> list[_ChunkOut | None]:
    """Run the chunks (on the pool if there is one); report from the calling thread as each
    one finishes, and at least every 0.25 s so that a cancel is seen during a long chunk."""
    outs: list[_ChunkOut | None] = [None] * len(chunks)
    done_pairs = 0
    if pool is None or len(chunks) == 1:
        for k, (lo, hi) in enumerate(chunks):
            outs[k] = work(lo, hi)
            done_pairs += hi - lo
            report(done_pairs)
        return outs
    futs: dict[Future[_ChunkOut | None], int] = {
        pool.submit(work, lo, hi): k for k, (lo, hi) in enumerate(chunks)}
    pending = set(futs)
    while pending:
        finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
        for f in finished:
            k = futs[f]
            outs[k] = f.result()
            done_pairs += chunks[k][1] - chunks[k][0]
        report(done_pairs)
    return outs


def _process_chunk(hub: np.ndarray, other: np.ndarray, hub_is_a: bool, h: np.ndarray,
                   o: np.ndarray, grid: float) -> _ChunkOut:
    # private prepared copies of this chunk's hubs: never shared with another thread
    uh, inv = np.unique(h, return_inverse=True)
    hub_copy = shapely.from_wkb(shapely.to_wkb(hub[uh]))
    shapely.prepare(hub_copy)
    hp = hub_copy[inv]
    og = other[o]

    kind = _classify(hp, og)
    failures: list[tuple[int, int, str]] = []
    retried: list[tuple[int, int, str]] = []

    geoms = np.full(len(h), None, dtype=object)
    in_hub = kind == _OTHER_INSIDE
    geoms[in_hub] = og[in_hub]
    hub_inside = kind == _HUB_INSIDE
    geoms[hub_inside] = hub[h[hub_inside]]

    cross = np.flatnonzero(kind == _CROSSING)
    if len(cross):
        hg = hub[h[cross]]
        first, second = (hg, og[cross]) if hub_is_a else (og[cross], hg)
        try:
            res = shapely.intersection(first, second)
        except ShapelyError:
            ai = h[cross] if hub_is_a else o[cross]
            bi = o[cross] if hub_is_a else h[cross]
            res = _intersect_pairwise(first, second, ai, bi, grid, failures, retried)
        geoms[cross] = polygonal_parts(res)

    area = shapely.area(geoms)  # NaN for None
    keep = area > 0
    as_is = np.where(in_hub | hub_inside, kind, 0).astype(np.int8)
    return _ChunkOut(h[keep], o[keep], geoms[keep], area[keep], as_is[keep], failures, retried)


_DISJOINT, _OTHER_INSIDE, _HUB_INSIDE, _CROSSING = 0, 1, 2, 3


def _classify(hp: np.ndarray, og: np.ndarray) -> np.ndarray:
    """Per pair: other inside hub, hub inside other, disjoint, or crossing.
    ``hp`` are prepared hub geometries (first argument of every predicate)."""
    try:
        return _classify_vectorised(hp, og)
    except ShapelyError:
        kind = np.empty(len(hp), np.int8)
        for k in range(len(hp)):
            try:
                kind[k] = _classify_vectorised(hp[k:k + 1], og[k:k + 1])[0]
            except ShapelyError:
                kind[k] = _CROSSING  # the exact step has its own repair path
        return kind


def _classify_vectorised(hp: np.ndarray, og: np.ndarray) -> np.ndarray:
    kind = np.full(len(hp), _DISJOINT, np.int8)
    inside = shapely.covers(hp, og)
    kind[inside] = _OTHER_INSIDE
    rest = np.flatnonzero(~inside)
    meets = shapely.intersects(hp[rest], og[rest])
    rest = rest[meets]
    kind[rest] = _CROSSING
    if not len(rest):
        return kind
    h_r, o_r = hp[rest], og[rest]
    # the hub can only lie inside the other where its box lies inside the other's box
    hb, ob = shapely.bounds(h_r), shapely.bounds(o_r)
    boxed = np.flatnonzero((ob[:, 0] <= hb[:, 0]) & (ob[:, 1] <= hb[:, 1])
                           & (ob[:, 2] >= hb[:, 2]) & (ob[:, 3] >= hb[:, 3]))
    if len(boxed):
        kind[rest[boxed[shapely.covered_by(h_r[boxed], o_r[boxed])]]] = _HUB_INSIDE
    _drop_touching(h_r, o_r, kind, rest)
    return kind


#: pairs sampled per chunk to decide whether testing for touch-only pairs pays off
_TOUCH_SAMPLE = 256
#: test every crossing candidate when at least this share of the sample only touches
_TOUCH_SHARE = 0.2


def _drop_touching(hp: np.ndarray, og: np.ndarray, kind: np.ndarray,
                   pos: np.ndarray) -> None:
    """Mark pairs that only touch (shared edge or corner: no area in common) as disjoint.

    Layers built from the same parcels (基本农田 from 现状 parcels, plans from plan units)
    meet mostly along shared edges; each such pair would cost a full intersection (25–40 µs)
    for no piece, where a prepared ``touches`` costs 2–9 µs. Independent layers have almost
    no touching pairs, so a sample decides per chunk whether the test is worth running.
    For valid polygons, touching means the interiors are disjoint, so no piece is lost.
    ``hp``/``og`` are the pairs at positions ``pos`` of ``kind``.
    """
    cand = np.flatnonzero(kind[pos] == _CROSSING)
    if not len(cand):
        return
    picked = np.zeros(len(cand), bool)
    picked[np.linspace(0, len(cand) - 1, min(len(cand), _TOUCH_SAMPLE)).astype(np.intp)] = True
    sample = cand[picked]
    hit = shapely.touches(hp[sample], og[sample])
    kind[pos[sample[hit]]] = _DISJOINT
    if hit.mean() >= _TOUCH_SHARE and not picked.all():
        rest = cand[~picked]
        kind[pos[rest[shapely.touches(hp[rest], og[rest])]]] = _DISJOINT


def _intersect_pairwise(first: np.ndarray, second: np.ndarray, a_pos: np.ndarray,
                        b_pos: np.ndarray, grid: float, failures: list[tuple[int, int, str]],
                        retried: list[tuple[int, int, str]]) -> np.ndarray:
    """The slow path after a chunk raised: pair by pair, with repair and a grid."""
    out = np.full(len(first), None, dtype=object)
    for k in range(len(first)):
        try:
            out[k] = shapely.intersection(first[k], second[k])
            continue
        except ShapelyError:
            pass
        pair = (int(a_pos[k]), int(b_pos[k]))
        try:
            f, s = shapely.make_valid(first[k]), shapely.make_valid(second[k])
        except ShapelyError as exc:
            failures.append((*pair, f"make_valid: {exc}"))
            continue
        for how, kw in (("make_valid", {}), (f"make_valid+grid_size={grid:g}",
                                             {"grid_size": grid})):
            try:
                out[k] = shapely.intersection(f, s, **kw)
            except ShapelyError as exc:
                last = str(exc)
                continue
            retried.append((*pair, how))
            break
        else:
            failures.append((*pair, last))
    return out


def polygonal_parts(g: np.ndarray) -> np.ndarray:
    """Keep only the polygonal part of each geometry; None where there is none."""
    g = np.asarray(g, dtype=object)
    out = np.full(len(g), None, dtype=object)
    if not len(g):
        return out
    tid = shapely.get_type_id(g)
    poly = (tid == _POLYGON) | (tid == _MULTIPOLYGON)
    out[poly] = g[poly]
    coll = np.flatnonzero(tid == _COLLECTION)
    if len(coll):
        parts, idx = shapely.get_parts(g[coll], return_index=True)
        parts, sub = shapely.get_parts(parts, return_index=True)  # flatten multi-parts
        idx = idx[sub]
        keep = shapely.get_type_id(parts) == _POLYGON
        parts, idx = parts[keep], idx[keep]
        if len(parts):
            groups, first, counts = np.unique(idx, return_index=True, return_counts=True)
            merged = np.empty(len(groups), dtype=object)
            single = counts == 1
            merged[single] = parts[first[single]]
            if (~single).any():
                multi = np.isin(idx, groups[~single])
                merged[~single] = shapely.multipolygons(parts[multi], indices=np.searchsorted(
                    groups[~single], idx[multi]))
            out[coll[groups]] = merged
    return out


def _assemble(outs: list[_ChunkOut | None], hub_is_a: bool, a_of: np.ndarray | None,
              b_of: np.ndarray | None, n_a: int, n_b: int) -> OverlayResult:
    """Pieces per pair of input features, sorted by (a, b).

    ``a_of``/``b_of`` map exploded polygons back to features (None: aligned). Where a pair
    of features has several pieces (from different parts), they become one MultiPolygon
    with the summed area; it is ``contained`` when it is one whole feature as-is: every
    piece is a part of that feature taken as-is and every part of it is there. Parts of a
    valid MultiPolygon meet at most in points, so the pieces of one pair never overlap.
    """
    got = [c for c in outs if c is not None]
    if not got:
        return _empty_result()
    h = np.concatenate([c.h for c in got]).astype(np.int64)
    o = np.concatenate([c.o for c in got]).astype(np.int64)
    as_is = np.concatenate([c.as_is for c in got])
    a_p, b_p = (h, o) if hub_is_a else (o, h)
    other_is_a = not hub_is_a
    a_whole = as_is == (_OTHER_INSIDE if other_is_a else _HUB_INSIDE)
    b_whole = as_is == (_HUB_INSIDE if other_is_a else _OTHER_INSIDE)
    a_idx = a_p if a_of is None else a_of[a_p]
    b_idx = b_p if b_of is None else b_of[b_p]

    def feature_pair(pair: tuple[int, int, str]) -> tuple[int, int, str]:
        ap, bp, msg = pair
        return (int(ap if a_of is None else a_of[ap]), int(bp if b_of is None else b_of[bp]),
                msg)

    failures = sorted(feature_pair(f) for c in got for f in c.failures)
    retried = sorted(feature_pair(r) for c in got for r in c.retried)
    order = np.lexsort((b_idx, a_idx))
    a_idx, b_idx, a_whole, b_whole = a_idx[order], b_idx[order], a_whole[order], b_whole[order]
    geometry = np.concatenate([c.geometry for c in got])[order]
    area = np.concatenate([c.area for c in got])[order]
    if a_of is None and b_of is None:
        return OverlayResult(a_idx, b_idx, geometry, area, a_whole | b_whole, failures,
                             retried)

    n = len(a_idx)
    if n == 0:
        empty = _empty_result()
        empty.failures, empty.retried = failures, retried
        return empty
    start = np.flatnonzero(np.r_[True, (a_idx[1:] != a_idx[:-1]) | (b_idx[1:] != b_idx[:-1])])
    count = np.diff(np.r_[start, n])
    parts_a = (np.ones(n_a, np.int64) if a_of is None
               else np.bincount(a_of, minlength=n_a))
    parts_b = (np.ones(n_b, np.int64) if b_of is None
               else np.bincount(b_of, minlength=n_b))
    ga, gb = a_idx[start], b_idx[start]
    contained = (((np.add.reduceat(a_whole, start) == count) & (count == parts_a[ga]))
                 | ((np.add.reduceat(b_whole, start) == count) & (count == parts_b[gb])))
    merged = geometry[start]
    several = np.flatnonzero(count > 1)
    if len(several):
        group = np.repeat(np.arange(len(start)), count)
        rows = np.flatnonzero(np.isin(group, several))
        polys, of = shapely.get_parts(geometry[rows], return_index=True)
        merged[several] = shapely.multipolygons(
            polys, indices=np.searchsorted(several, group[rows][of]))
    return OverlayResult(ga, gb, merged, np.add.reduceat(area, start), contained, failures,
                         retried)


# --------------------------------------------------------------------------- slivers


def sliver_metrics(geoms: Any, area: np.ndarray | None = None, *,
                   elongation: bool = False) -> dict[str, np.ndarray]:
    """Shape measures per geometry (planar, CRS units).

    Returns ``area``, ``perimeter``, ``mean_width`` = 2A/P, ``compactness`` = 4πA/P²
    (1 for a disc, → 0 for a thin strip) and ``shape_index`` = P / (2√(πA)) (1 for a disc).
    With ``elongation=True`` also ``elongation`` = L/W of the minimum rotated rectangle
    (costlier). Degenerate geometries get mean width 0, compactness 0, shape index inf.
    """
    g = _as_geometry_array(geoms)
    a = shapely.area(g) if area is None else np.asarray(area, dtype=np.float64)
    p = shapely.length(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_width = np.where(p > 0, 2.0 * a / p, 0.0)
        compactness = np.where(p > 0, 4.0 * np.pi * a / p**2, 0.0)
        shape_index = np.where(a > 0, p / (2.0 * np.sqrt(np.pi * a)), np.inf)
    out = {"area": a, "perimeter": p, "mean_width": mean_width, "compactness": compactness,
           "shape_index": shape_index}
    if elongation:
        out["elongation"] = _elongation(g)
    return out


def _elongation(g: np.ndarray) -> np.ndarray:
    rect = shapely.minimum_rotated_rectangle(g)
    xy, idx = shapely.get_coordinates(shapely.get_exterior_ring(rect), return_index=True)
    first = np.searchsorted(idx, np.arange(len(g)))
    res = np.full(len(g), np.inf)
    ok = (first + 2 < len(idx)) & (shapely.get_type_id(rect) == _POLYGON)
    f = first[ok]
    s1 = np.hypot(*(xy[f + 1] - xy[f]).T)
    s2 = np.hypot(*(xy[f + 2] - xy[f + 1]).T)
    long_, short = np.maximum(s1, s2), np.minimum(s1, s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        res[ok] = np.where(short > 0, long_ / short, np.inf)
    return res


def is_sliver(area: Any, mean_width: Any, *, max_area: float = 1000.0,
              max_width: float = 5.0, compactness: Any = None, elongation: Any = None,
              max_compactness: float = 0.25, min_shape_index: float = 2.0,
              min_p2a: float = 40.0, min_elongation: float = 5.0) -> np.ndarray:
    """The sliver rule of domain.md §5.4 (practitioner defaults [P], every one a parameter).

    **Scale test** (always): ``area ≤ max_area`` (1000 m²) **or** ``mean_width ≤ max_width``
    (5 m, mean width = 2A/P). §5.4 also lists "minimum-bounding-rectangle width ≤ 5 m"; it
    adds nothing to the *or*: for any polygon 2A/P ≤ its minimum width ≤ its MBR width, so
    an MBR width ≤ 5 m already implies a mean width ≤ 5 m.

    **Shape test** (only when ``compactness`` is given; pieces must then pass both tests):
    at least two of ``compactness ≤ 0.25``, ``shape index ≥ 2``, ``P²/A ≥ 40`` and, when
    ``elongation`` is given, ``L/W ≥ 5``. Shape index and P²/A are derived from compactness
    (SI = 1/√c, P²/A = 4π/c), so with the default thresholds a compactness ≤ 0.25 alone
    satisfies three of them.

    Without ``compactness`` this is the scale test alone, which flags every small piece
    (a 30 m × 30 m square is a "sliver" by area). Use it for "below threshold" reporting;
    pass ``compactness`` (from ``sliver_metrics``) to flag thin pieces only.
    """
    area = np.asarray(area, dtype=np.float64)
    mean_width = np.asarray(mean_width, dtype=np.float64)
    scale = (area <= max_area) | (mean_width <= max_width)
    if compactness is None:
        return scale
    c = np.asarray(compactness, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        hits = ((c <= max_compactness).astype(np.int8)
                + (np.where(c > 0, 1.0 / np.sqrt(c), np.inf) >= min_shape_index)
                + (np.where(c > 0, 4.0 * np.pi / c, np.inf) >= min_p2a))
    if elongation is not None:
        hits = hits + (np.asarray(elongation, dtype=np.float64) >= min_elongation)
    return scale & (hits >= 2)
