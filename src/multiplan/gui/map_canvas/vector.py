"""A vector layer prepared for fast drawing: spatial chunks, coordinate buffers, LOD cache.

Built once per layer (in a worker thread, see :func:`VectorData.build`):

* features are ordered into **spatial chunks** of ``chunk_size`` (sort-tile-recursive
  packing of the bounding-box centres) and, inside a chunk, by **class**, so that every
  (chunk, class) is one contiguous run of features and of coordinates;
* all coordinates are extracted **once** into one float64 array (relative to the layer's
  origin, so Qt works with small numbers), with ring offsets, the feature of each ring and
  whether it is an exterior ring;
* an STRtree over the chunk boxes culls chunks against the view; per-chunk STRtrees (built
  lazily, small) answer identify and selection queries.

Level of detail, per zoom band (``tol`` = the pixel size rounded down to a power of two, so
one band covers a zoom range of 2×): coordinates are snapped to a ``tol`` grid and
consecutive duplicates are dropped — a vectorised vertex-clustering simplification that never
moves a vertex by more than half a pixel. A polygon whose exterior collapses (smaller than a
pixel) is drawn cheaply as one small square in its class colour; collapsed holes and
sub-pixel lines are skipped. The resulting paths, one per (chunk, class), are cached per band
in an LRU bounded by a total element budget. The chunks a view needs that are not cached yet
are built together, a batch of up to ``BATCH`` features at a time (one ``lod_records`` call, one
byte buffer framed with numpy and one ``QDataStream`` for all their paths): a zoomed view's
first render pays those overheads per batch, not per chunk and class. When the render thread
is idle it warms the cache around the last view and one band finer and coarser
(:meth:`VectorData.warm`, ``render.warm_steps``), so the next pan or zoom step finds its paths
built.

Every step works on numpy arrays of at most a few thousand features at a time, so no single
call holds the GIL for long (platform notes: PySide6 holds it while Qt draws).
"""

from __future__ import annotations

import gc
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import shapely
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainterPath

from .paths import ELEMENT, LINE_TO, MOVE_TO, path_from_records, paths_from_stream

POLYGON, LINE, POINT = "polygon", "line", "point"
_POLYGON_TYPES = (3, 6)
_LINE_TYPES = (1, 2, 5)
_POINT_TYPES = (0, 4)

#: Features per spatial chunk: small, so zoomed views draw little beyond their edges (at
#: 256, only ≈ 40 % of the features drawn in a 4 km × 2.5 km view of the county sample were
#: in the view; benchmarks/bench_canvas.py).
CHUNK_SIZE = 64
#: Features per chunk group: when many chunks are in view (far out), paths are built and
#: drawn per group of consecutive chunks, so a full-extent view is a few thousand paths, not
#: tens of thousands (benchmarks/bench_canvas.py).
GROUP_FEATURES = 2048
#: Above this many features in visible chunks the view is drawn by groups.
GROUP_AT_FEATURES = 12_288
#: Features per step while preparing a layer (bounds GIL hold times; see module doc).
STEP = 2000
#: Features per batch when building the paths of chunks that are not cached yet.
BATCH = 2048
#: Path elements kept in the LOD cache per layer (≈ 24 bytes each in Qt).
CACHE_BUDGET = 6_000_000
#: Idle-time warming (:meth:`VectorData.warm`) builds paths only while the LOD cache holds
#: less than this fraction of ``CACHE_BUDGET``.
WARM_FILL = 0.5
#: Points are drawn as squares of this many pixels.
POINT_PX = 5.0


def band_of(upp: float) -> int:
    """Zoom band of a pixel size (map units per device pixel)."""
    return math.floor(math.log2(max(upp, 1e-9)))


@dataclass
class ChunkPaths:
    """The paths of one chunk at one band: (class index, path) in class order."""

    paths: list[tuple[int, QPainterPath]]
    elements: int


class VectorData:
    """Immutable drawing data of one vector layer plus its LOD cache (thread-safe)."""

    def __init__(self) -> None:  # use build()
        self.kind = POLYGON
        self.geoms = np.empty(0, dtype=object)
        self.fids = np.empty(0, dtype=np.int64)
        self.classes = np.empty(0, dtype=np.int32)
        self.bounds = np.empty((0, 4))
        self.origin = (0.0, 0.0)
        self.coords = np.empty((0, 2))
        self.coord_offsets = np.zeros(1, dtype=np.int64)
        self.ring_offsets = np.zeros(1, dtype=np.int64)
        self.ring_feature = np.empty(0, dtype=np.int64)
        self.ring_exterior = np.empty(0, dtype=bool)
        self.feature_rings = np.zeros(1, dtype=np.int64)
        self.chunk_offsets = np.zeros(1, dtype=np.int64)
        self.chunk_bounds = np.empty((0, 4))
        self.chunk_tree: shapely.STRtree | None = None
        self.group_offsets = np.zeros(1, dtype=np.int64)  # feature offsets of chunk groups
        self.group = 1  # chunks per group
        self.group_at = 1  # more visible chunks than this: draw by groups
        self.typical_size = 0.0
        self.dropped = 0  # features that could not be drawn (empty or of another family)
        self._fid_pos: dict[int, int] | None = None
        self._trees: dict[int, shapely.STRtree] = {}
        self._cache: OrderedDict[tuple[int, int], ChunkPaths] = OrderedDict()
        self._cache_elements = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, geoms: np.ndarray, fids: np.ndarray | None = None,
              classes: np.ndarray | None = None, *, chunk_size: int = CHUNK_SIZE,
              check: Callable[[], None] | None = None) -> VectorData:
        """Prepare ``geoms`` (shapely array, map units) for drawing.

        ``fids`` identify the features (default: 0..n-1); ``classes`` is the class index of
        each feature (fill colour / legend entry; default all 0). ``check`` is called between
        steps and may raise to abandon the build (cancel).
        """
        check = check or (lambda: None)
        geoms = np.asarray(geoms, dtype=object)
        n0 = len(geoms)
        fids = np.arange(n0, dtype=np.int64) if fids is None else np.asarray(fids, np.int64)
        classes = (np.zeros(n0, dtype=np.int32) if classes is None
                   else np.asarray(classes, dtype=np.int32))
        self = cls()
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        types = shapely.get_type_id(geoms)
        if np.isin(types[ok], _POLYGON_TYPES).any():
            self.kind, family = POLYGON, _POLYGON_TYPES
        elif np.isin(types[ok], _LINE_TYPES).any():
            self.kind, family = LINE, _LINE_TYPES
        else:
            self.kind, family = POINT, _POINT_TYPES
        ok &= np.isin(types, family)
        self.dropped = int(n0 - ok.sum())
        geoms, fids, classes = geoms[ok], fids[ok], classes[ok]
        n = len(geoms)
        check()
        bounds = np.empty((n, 4))
        for i in range(0, n, STEP * 5):
            bounds[i:i + STEP * 5] = shapely.bounds(geoms[i:i + STEP * 5])
        check()
        order, chunk_offsets = _str_chunks(bounds, classes, chunk_size)
        self.geoms, self.fids = geoms[order], fids[order]
        self.classes, self.bounds = classes[order], bounds[order]
        self.chunk_offsets = chunk_offsets
        if n:
            tb = (self.bounds[:, 0].min(), self.bounds[:, 1].min(),
                  self.bounds[:, 2].max(), self.bounds[:, 3].max())
            self.origin = ((tb[0] + tb[2]) / 2, (tb[1] + tb[3]) / 2)
        self._extract_coordinates(check)
        m = len(chunk_offsets) - 1
        if m:
            starts = chunk_offsets[:-1]
            cb = np.column_stack([np.minimum.reduceat(self.bounds[:, 0], starts),
                                  np.minimum.reduceat(self.bounds[:, 1], starts),
                                  np.maximum.reduceat(self.bounds[:, 2], starts),
                                  np.maximum.reduceat(self.bounds[:, 3], starts)])
            self.chunk_bounds = cb
            self.chunk_tree = shapely.STRtree(shapely.box(*cb.T))
            self.group = max(1, GROUP_FEATURES // chunk_size)
            self.group_at = max(1, GROUP_AT_FEATURES // chunk_size)
            self.group_offsets = np.r_[chunk_offsets[:-1:self.group], chunk_offsets[-1]]
        sizes = np.maximum(self.bounds[:, 2] - self.bounds[:, 0],
                           self.bounds[:, 3] - self.bounds[:, 1])
        self.typical_size = float(np.median(sizes)) if n else 0.0
        return self

    def _extract_coordinates(self, check: Callable[[], None]) -> None:
        geoms = self.geoms
        n = len(geoms)
        ncoord = shapely.get_num_coordinates(geoms).astype(np.int64)
        coff = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(ncoord, out=coff[1:])
        coords = np.empty((int(coff[-1]), 2))
        for i in range(0, n, STEP):
            check()
            coords[coff[i]:coff[min(i + STEP, n)]] = shapely.get_coordinates(geoms[i:i + STEP])
        ox, oy = self.origin
        coords[:, 0] -= ox
        coords[:, 1] -= oy
        self.coords, self.coord_offsets = coords, coff
        check()
        # rings (polygons) or parts (lines); points: every coordinate its own part
        if self.kind == POINT:
            self.ring_offsets = np.arange(len(coords) + 1, dtype=np.int64)
            self.ring_feature = np.repeat(np.arange(n, dtype=np.int64), ncoord)
            self.ring_exterior = np.ones(len(coords), dtype=bool)
        else:
            nparts = shapely.get_num_geometries(geoms)
            complex_ = nparts > 1
            if self.kind == POLYGON and n:
                # a single-ring polygon repeats its first coordinate exactly once, as its last
                # one; otherwise it has holes (or touches itself: then it is handled exactly)
                firsts = np.repeat(coords[coff[:-1]], ncoord, axis=0)
                eq = (coords[:, 0] == firsts[:, 0]) & (coords[:, 1] == firsts[:, 1])
                complex_ |= np.add.reduceat(eq.astype(np.int64), coff[:-1]) != 2
                complex_ |= ~eq[coff[1:] - 1]
            sizes_per_feature: list[np.ndarray] = []
            ext_per_feature: list[np.ndarray] = []
            cidx = np.flatnonzero(complex_)
            for i in range(0, len(cidx), STEP):
                check()
                sub = geoms[cidx[i:i + STEP]]
                parts, pidx = shapely.get_parts(sub, return_index=True)
                if self.kind == POLYGON:
                    rings, ridx = shapely.get_rings(parts, return_index=True)
                    sizes = shapely.get_num_coordinates(rings)
                    ext = np.r_[True, ridx[1:] != ridx[:-1]] if len(ridx) else ridx.astype(bool)
                    feat = pidx[ridx]
                else:
                    sizes = shapely.get_num_coordinates(parts)
                    ext = np.ones(len(parts), dtype=bool)
                    feat = pidx
                counts = np.bincount(feat, minlength=len(sub))
                splits = np.cumsum(counts)[:-1]
                sizes_per_feature.extend(np.split(sizes.astype(np.int64), splits))
                ext_per_feature.extend(np.split(ext, splits))
            nrings = np.ones(n, dtype=np.int64)
            nrings[cidx] = [len(s) for s in sizes_per_feature]
            fro = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(nrings, out=fro[1:])
            ring_sizes = np.empty(int(fro[-1]), dtype=np.int64)
            ring_ext = np.ones(int(fro[-1]), dtype=bool)
            ring_feature = np.repeat(np.arange(n, dtype=np.int64), nrings)
            simple = ~complex_
            ring_sizes[fro[:-1][simple]] = ncoord[simple]
            if len(cidx):
                mask = complex_[ring_feature]
                ring_sizes[mask] = np.concatenate(sizes_per_feature)
                ring_ext[mask] = np.concatenate(ext_per_feature)
            roff = np.zeros(len(ring_sizes) + 1, dtype=np.int64)
            np.cumsum(ring_sizes, out=roff[1:])
            self.ring_offsets, self.ring_feature, self.ring_exterior = roff, ring_feature, ring_ext
            self.feature_rings = fro
        if self.kind == POINT:
            self.feature_rings = coff.copy()

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.geoms)

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_offsets) - 1

    def total_bounds(self) -> tuple[float, float, float, float] | None:
        if not len(self.bounds):
            return None
        b = self.bounds
        return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
                float(b[:, 3].max()))

    def positions_of(self, fids: np.ndarray) -> np.ndarray:
        """Positions (draw order) of the given fids; unknown fids are left out."""
        if self._fid_pos is None:
            self._fid_pos = {int(f): i for i, f in enumerate(self.fids.tolist())}
        pos = self._fid_pos
        out = [pos.get(int(f), -1) for f in np.asarray(fids).ravel().tolist()]
        arr = np.asarray(out, dtype=np.int64)
        return arr[arr >= 0]

    def visible_chunks(self, box: tuple[float, float, float, float]) -> np.ndarray:
        if self.chunk_tree is None:
            return np.empty(0, dtype=np.int64)
        return np.sort(self.chunk_tree.query(shapely.box(*box)))

    def _chunk_tree(self, c: int) -> shapely.STRtree:
        with self._lock:
            tree = self._trees.get(c)
            if tree is None:
                a, b = self.chunk_offsets[c], self.chunk_offsets[c + 1]
                tree = shapely.STRtree(self.geoms[a:b])
                self._trees[c] = tree
            return tree

    def query(self, geom: shapely.Geometry, predicate: str | None = "intersects",
              distance: float | None = None) -> np.ndarray:
        """Positions of features meeting ``geom`` (``predicate`` as in STRtree.query)."""
        b = shapely.bounds(geom)
        if distance:
            b = b + np.array([-distance, -distance, distance, distance])
        out = []
        for c in self.visible_chunks(tuple(b)):
            tree = self._chunk_tree(int(c))
            kw = {"distance": distance} if predicate == "dwithin" else {}
            hits = tree.query(geom, predicate=predicate, **kw)
            out.append(hits + self.chunk_offsets[c])
        return np.sort(np.concatenate(out)) if out else np.empty(0, dtype=np.int64)

    # ------------------------------------------------------------------ level of detail
    def draw_units(self, box: tuple[float, float, float, float]) -> tuple[bool, np.ndarray]:
        """What to draw for a view: ``(grouped, ids)`` — the visible chunks, or, when there
        are many, the groups holding them."""
        chunks = self.visible_chunks(box)
        if len(chunks) > self.group_at:
            return True, np.unique(chunks // self.group)
        return False, chunks

    def chunk_paths(self, chunk: int, band: int, grouped: bool = False) -> ChunkPaths:
        """The cached paths of ``chunk`` (or chunk group) at ``band``, built on first use."""
        return next(self.iter_paths(np.array([chunk]), band, grouped))[1]

    def cached(self, unit: int, band: int, grouped: bool = False) -> bool:
        with self._lock:
            return (band, -1 - unit if grouped else unit) in self._cache

    def iter_paths(self, units: np.ndarray, band: int, grouped: bool = False,
                   batch: int = BATCH) -> Iterator[tuple[int, ChunkPaths]]:
        """``(unit, paths)`` for each chunk (or group) in ``units``, in order.

        Cached paths are yielded as they are; missing ones are built a batch at a time (up to
        ``batch`` features per batch, one :func:`lod_records` call and one path stream per
        batch), so a first render pays the numpy and Qt call overheads once per batch, not
        once per chunk and class, while every step stays short (the caller may stop between
        yields).
        """
        offsets = self.group_offsets if grouped else self.chunk_offsets
        units = [int(u) for u in np.asarray(units).tolist()]
        i, n = 0, len(units)
        while i < n:
            with self._lock:
                hit = self._cache.get((band, -1 - units[i] if grouped else units[i]))
                if hit is not None:
                    self._cache.move_to_end((band, -1 - units[i] if grouped else units[i]))
            if hit is not None:
                yield units[i], hit
                i += 1
                continue
            # a batch: this unit and the following missing ones, up to ``batch`` features
            todo = [units[i]]
            size = int(offsets[units[i] + 1] - offsets[units[i]])
            j = i + 1
            while j < n and size < batch and not self.cached(units[j], band, grouped):
                size += int(offsets[units[j] + 1] - offsets[units[j]])
                todo.append(units[j])
                j += 1
            built = self._build_and_store(todo, band, grouped)
            yield from zip(todo, built, strict=True)
            i = j

    def _build_and_store(self, todo: list[int], band: int, grouped: bool) -> list[ChunkPaths]:
        offsets = self.group_offsets if grouped else self.chunk_offsets
        built = self._build_many(offsets[todo], offsets[np.asarray(todo, dtype=np.int64) + 1],
                                 2.0 ** band)
        with self._lock:
            for u, cp in zip(todo, built, strict=True):
                key = (band, -1 - u if grouped else u)
                if key not in self._cache:
                    self._cache[key] = cp
                    self._cache_elements += cp.elements
            while self._cache_elements > CACHE_BUDGET and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_elements -= old.elements
        return built

    def warm(self, view_box: tuple[float, float, float, float],
             around: tuple[float, float, float, float], band: int,
             batch: int = BATCH) -> Iterator[int]:
        """Build, ahead of need, the paths of the chunks meeting ``around`` at ``band`` —
        what a pan away from ``view_box`` would draw — nearest to the view first.

        A generator: each ``next()`` builds one batch (≤ ``batch`` features, a few
        milliseconds) and yields the number of units built, so the caller can stop between
        batches. Units are chunks, or groups when ``view_box`` itself is drawn by groups.
        Warming stops while the cache holds more than ``WARM_FILL`` of its budget, so it never
        evicts what is on screen.
        """
        grouped, _ = self.draw_units(view_box)
        chunks = self.visible_chunks(around)
        if not len(chunks):
            return
        units = np.unique(chunks // self.group) if grouped else chunks
        offsets = self.group_offsets if grouped else self.chunk_offsets
        # nearest first: distance of the unit's first chunk box centre to the view centre
        first_chunk = units * self.group if grouped else units
        cb = self.chunk_bounds[first_chunk]
        vx, vy = (view_box[0] + view_box[2]) / 2, (view_box[1] + view_box[3]) / 2
        d = np.hypot((cb[:, 0] + cb[:, 2]) / 2 - vx, (cb[:, 1] + cb[:, 3]) / 2 - vy)
        todo = [int(u) for u in units[np.argsort(d, kind="stable")].tolist()
                if not self.cached(int(u), band, grouped)]
        i = 0
        while i < len(todo):
            if self.cache_elements() > WARM_FILL * CACHE_BUDGET:
                return
            part, size = [], 0
            while i < len(todo) and size < batch:
                u = todo[i]
                i += 1
                if self.cached(u, band, grouped):
                    continue
                part.append(u)
                size += int(offsets[u + 1] - offsets[u])
            if part:
                self._build_and_store(part, band, grouped)
                yield len(part)

    def cached_bands(self) -> set[int]:
        with self._lock:
            return {b for b, _ in self._cache}

    def cache_elements(self) -> int:
        with self._lock:
            return self._cache_elements

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._cache_elements = 0

    def _build_many(self, f0s: np.ndarray, f1s: np.ndarray, tol: float) -> list[ChunkPaths]:
        """Paths of the feature ranges [f0s[k], f1s[k]) (chunks or groups), one per class
        and range, with one :func:`lod_records` call for all ranges.

        A chunk has one run of features per class, a group one per chunk and class; the runs
        of a class are joined, records before squares, in feature order.
        """
        f0s = np.asarray(f0s, dtype=np.int64)
        f1s = np.asarray(f1s, dtype=np.int64)
        k = len(f0s)
        fr = self.feature_rings
        r0s, r1s = fr[f0s], fr[f1s]
        rings = _ranges(r0s, r1s)
        ro = self.ring_offsets
        rsizes = ro[rings + 1] - ro[rings]
        roff = np.zeros(len(rings) + 1, dtype=np.int64)
        np.cumsum(rsizes, out=roff[1:])
        xy = self.coords[_ranges(ro[rings], ro[rings + 1])]
        nfeat = f1s - f0s
        fstart = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(nfeat, out=fstart[1:])
        rrange = np.repeat(np.arange(k), r1s - r0s)
        rfeat_local = self.ring_feature[rings] - f0s[rrange] + fstart[:-1][rrange]
        rec, rfeat, rstart, sq, sqfeat = lod_records(
            xy, roff, self.ring_exterior[rings], rfeat_local, tol, self.kind)
        nf = int(fstart[-1])
        if nf == 0:
            return [ChunkPaths([], 0) for _ in range(k)]
        classes = self.classes[_ranges(f0s, f1s)]
        new_run = np.ones(nf, dtype=bool)
        new_run[1:] = classes[1:] != classes[:-1]
        new_run[fstart[:-1][nfeat > 0]] = True
        run_starts = np.flatnonzero(new_run)
        run_ends = np.r_[run_starts[1:], nf]
        rec_bounds = np.r_[rstart, len(rec)]
        ra = rec_bounds[np.searchsorted(rfeat, run_starts, "left")]
        rb = rec_bounds[np.searchsorted(rfeat, run_ends, "left")]
        sa = np.searchsorted(sqfeat, run_starts, "left") * 5
        sb = np.searchsorted(sqfeat, run_ends, "left") * 5
        run_class = classes[run_starts]
        run_unit = np.searchsorted(fstart, run_starts, "right") - 1
        # (unit, class) groups of runs, in unit, class, feature order
        order = np.lexsort((run_starts, run_class, run_unit))
        nel = (rb - ra) + (sb - sa)
        key_unit, key_class = run_unit[order], run_class[order]
        first = np.r_[True, (key_unit[1:] != key_unit[:-1]) | (key_class[1:] != key_class[:-1])]
        gstart = np.flatnonzero(first)
        gcount = np.add.reduceat(nel[order], gstart) if len(order) else np.empty(0, np.int64)
        # every path's elements contiguous: records of its runs, then squares of its runs
        nruns = len(order)
        gid = np.cumsum(first) - 1
        lo = np.r_[ra[order], len(rec) + sa[order]]
        hi = np.r_[rb[order], len(rec) + sb[order]]
        o2 = np.lexsort((np.r_[np.arange(nruns), np.arange(nruns)],
                         np.r_[np.zeros(nruns, np.int8), np.ones(nruns, np.int8)],
                         np.r_[gid, gid]))
        void = np.dtype((np.void, ELEMENT.itemsize))
        body = np.concatenate([rec.view(void), sq.view(void)])[_ranges(lo[o2], hi[o2])]
        keep = gcount > 0
        counts = gcount[keep]
        made_unit = key_unit[gstart[keep]].tolist()
        made_class = key_class[gstart[keep]].tolist()
        stream = _serialise(body.view(np.uint8), counts)
        per_unit: list[list[tuple[int, QPainterPath]]] = [[] for _ in range(k)]
        for u, cls, path in zip(made_unit, made_class, paths_from_stream(stream, len(counts)),
                                strict=True):
            per_unit[u].append((cls, path))
        unit_of_rec = np.searchsorted(fstart, rfeat, "right") - 1
        rec_units = np.bincount(unit_of_rec, weights=np.diff(rec_bounds), minlength=k)
        sq_units = np.bincount(np.searchsorted(fstart, sqfeat, "right") - 1,
                               minlength=k) * 5
        return [ChunkPaths(per_unit[u], int(rec_units[u] + sq_units[u])) for u in range(k)]

    def subset_paths(self, positions: np.ndarray, band: int) -> list[tuple[int, QPainterPath]]:
        """Paths (one per class) for an arbitrary set of features (selection overlay)."""
        positions = np.unique(np.asarray(positions, dtype=np.int64))
        if not len(positions):
            return []
        r_lo, r_hi = self.feature_rings[positions], self.feature_rings[positions + 1]
        rings = _ranges(r_lo, r_hi)
        c_lo, c_hi = self.ring_offsets[rings], self.ring_offsets[rings + 1]
        cidx = _ranges(c_lo, c_hi)
        sizes = c_hi - c_lo
        roff = np.zeros(len(rings) + 1, dtype=np.int64)
        np.cumsum(sizes, out=roff[1:])
        local_feat = np.searchsorted(positions, self.ring_feature[rings])
        rec, _rfeat, _rstart, sq, _sqfeat = lod_records(
            self.coords[cidx], roff, self.ring_exterior[rings], local_feat, 2.0 ** band,
            self.kind)
        if not len(rec) and not len(sq):
            return []
        return [(0, path_from_records(rec, sq))]


_TAIL = struct.pack(">ii", 0, int(Qt.FillRule.OddEvenFill.value))


def freeze_long_lived() -> None:
    """Take every object the cyclic garbage collector tracks now out of its future full
    passes (``gc.freeze``); called when a vector layer is added to the canvas.

    A layer's shapely geometries are GC-tracked and live as long as the layer. With the
    county sample loaded, a full collection walks about 240k objects and holds the GIL for
    about 140 ms in whichever thread triggers it — the render thread while it builds paths
    (idle warming builds many), or the UI thread — longer than the UI may stall
    (benchmarks/bench_canvas.py; with the freeze, under 15 ms). Frozen objects are still
    freed by reference counting when a layer goes; the young generations are collected first
    so fresh garbage cycles are not frozen, and :func:`thaw` (when the canvas is cleared, e.g.
    a project closes) hands everything back to the collector.
    """
    gc.collect(1)
    gc.freeze()


def thaw() -> None:
    """Undo :func:`freeze_long_lived`: frozen objects go back to the oldest generation."""
    gc.unfreeze()


def _serialise(body: np.ndarray, counts: np.ndarray) -> bytes:
    """QDataStream bytes of consecutive paths: ``body`` (uint8) holds the element records of
    all paths one after the other, ``counts`` the number of elements of each (all > 0).
    Each path is framed by its element count before and the tail (subpath start, fill rule)
    after, inserted with one numpy call."""
    p = len(counts)
    if p == 0:
        return b""
    sep = np.empty((p + 1, 12), dtype=np.uint8)  # tail of path g-1, then head of path g
    sep[:, :8] = np.frombuffer(_TAIL, dtype=np.uint8)
    sep[:-1, 8:] = np.asarray(counts, dtype=">i4").view(np.uint8).reshape(p, 4)
    values = sep.ravel()[8:-4]
    ends = np.zeros(p + 1, dtype=np.int64)
    np.cumsum(counts, out=ends[1:])
    reps = np.full(p + 1, 12)
    reps[0], reps[-1] = 4, 8
    at = np.repeat(ends * ELEMENT.itemsize, reps)
    return np.insert(body, at, values).tobytes()


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) for all i, without a Python loop."""
    sizes = hi - lo
    total = int(sizes.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.repeat(lo - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    return np.arange(total, dtype=np.int64) + starts


def lod_records(xy: np.ndarray, roff: np.ndarray, rext: np.ndarray, rfeat: np.ndarray,
                tol: float, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                np.ndarray, np.ndarray]:
    """Snap coordinates to the ``tol`` grid and drop consecutive duplicates.

    ``roff`` are ring offsets into ``xy`` (len = rings + 1), ``rext`` marks exterior rings,
    ``rfeat`` is the (sorted) feature of each ring. Returns ``(records, ring_feature,
    ring_record_start, squares, square_feature)``: path element records of the rings that
    survive, the feature and first record of each surviving ring, and 5-element square
    records (one per polygon feature part that collapsed below a pixel) with their features.
    """
    n = len(xy)
    nr = len(roff) - 1
    empty_sq = np.empty(0, dtype=ELEMENT)
    if n == 0 or nr == 0:
        return (np.empty(0, dtype=ELEMENT), np.empty(0, np.int64), np.empty(0, np.int64),
                empty_sq, np.empty(0, np.int64))
    inv = 1.0 / tol
    q = np.rint(xy * inv)
    starts, ends = roff[:-1], roff[1:] - 1
    keep = np.ones(n, dtype=bool)
    if kind != POINT:
        keep[1:] = (q[1:, 0] != q[:-1, 0]) | (q[1:, 1] != q[:-1, 1])
        keep[starts] = True
        keep[ends] = True
    kept = np.add.reduceat(keep.astype(np.int64), starts)
    if kind == POLYGON:
        alive = kept > 3  # start, ≥ 2 other distinct vertices, closing vertex
        square = ~alive & rext
    elif kind == LINE:
        # a line survives if it is not one snapped point
        last_differs = (q[ends, 0] != q[starts, 0]) | (q[ends, 1] != q[starts, 1])
        alive = (kept > 2) | last_differs
        square = np.zeros(nr, dtype=bool)
    else:
        alive = np.zeros(nr, dtype=bool)
        square = np.ones(nr, dtype=bool)
    # drop every coordinate of rings that do not survive
    ring_of = np.repeat(np.arange(nr), roff[1:] - roff[:-1])
    keep &= alive[ring_of]
    out = q[keep] * tol
    rec = np.empty(len(out), dtype=ELEMENT)
    rec["x"] = out[:, 0]
    rec["y"] = out[:, 1]
    rec["type"] = LINE_TO
    kept_alive = kept[alive]
    rstart = np.zeros(len(kept_alive), dtype=np.int64)
    if len(kept_alive):
        np.cumsum(kept_alive[:-1], out=rstart[1:])
        rec["type"][rstart] = MOVE_TO
    # squares for collapsed exteriors (and points)
    sq_idx = np.flatnonzero(square)
    if len(sq_idx):
        cx, cy = q[starts[sq_idx], 0] * tol, q[starts[sq_idx], 1] * tol
        h = tol * (POINT_PX / 2 if kind == POINT else 1.0)
        sq = np.empty((len(sq_idx), 5), dtype=ELEMENT)
        sq["type"] = LINE_TO
        sq["type"][:, 0] = MOVE_TO
        for k, (dx, dy) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))):
            sq["x"][:, k] = cx + dx * h
            sq["y"][:, k] = cy + dy * h
        sq = sq.ravel()
        sqfeat = rfeat[sq_idx]
    else:
        sq, sqfeat = empty_sq, np.empty(0, np.int64)
    return rec, rfeat[alive], rstart, sq, sqfeat


def _str_chunks(bounds: np.ndarray, classes: np.ndarray,
                chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort-tile-recursive order into chunks of ``chunk_size``; class order inside a chunk.

    Returns ``(order, chunk_offsets)``.
    """
    n = len(bounds)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    cx = (bounds[:, 0] + bounds[:, 2]) / 2
    cy = (bounds[:, 1] + bounds[:, 3]) / 2
    nchunks = math.ceil(n / chunk_size)
    slices = max(1, math.ceil(math.sqrt(nchunks)))
    per_slice = slices * chunk_size
    by_x = np.argsort(cx, kind="stable")
    slice_of = np.empty(n, dtype=np.int64)
    slice_of[by_x] = np.arange(n) // per_slice
    # inside a slice, by y; then chunk = consecutive runs of chunk_size
    order = np.lexsort((cy, slice_of))
    chunk_of = np.empty(n, dtype=np.int64)
    pos_in_slice = np.arange(n) - np.searchsorted(slice_of[order], slice_of[order], "left")
    chunk_of[order] = slice_of[order] * (per_slice // chunk_size + 1) + pos_in_slice // chunk_size
    # renumber chunks densely, and order by (chunk, class)
    _, chunk_dense = np.unique(chunk_of, return_inverse=True)
    order = np.lexsort((classes, chunk_dense))
    counts = np.bincount(chunk_dense)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return order.astype(np.int64), offsets
