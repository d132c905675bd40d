"""Patches (connected components of equal grade) over a raster processed block by block.

A patch is a 4- (or 8-) connected set of cells holding the same non-zero value. Labelling
is done per block with a run-based union-find in numpy (no scipy): each row is cut into
runs of equal value, runs touching the next row are joined, and a vectorised
hook-and-compress union-find settles the components. Every block gives *provisional*
labels that are unique over the whole raster; the block's edge rows and columns are kept
(O(perimeter) memory), and when all blocks are done the seams are joined with the same
union-find, so a patch that crosses blocks gets one root. Per patch we keep the cell
count and, for the compactness rule (area ÷ minimum-bounding-circle area, domain.md
§6.3), the radius of the minimum bounding circle of its cell squares: patches that stay
inside their block get it at once, those that touch a block edge keep their convex-hull
vertices until the seams are joined.

Memory is O(block) + O(number of patches) — never O(cells).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import shapely


# ------------------------------------------------------------------------ union-find
def compress(parent: np.ndarray) -> np.ndarray:
    """Point every node straight at its root (pointer jumping)."""
    while True:
        pp = parent[parent]
        if np.array_equal(pp, parent):
            return parent
        parent = pp


def union_edges(n: int, a: np.ndarray, b: np.ndarray,
                parent: np.ndarray | None = None) -> np.ndarray:
    """Roots (the smallest member id) of ``n`` nodes joined by the edges ``a[i]–b[i]``."""
    parent = np.arange(n, dtype=np.int64) if parent is None else parent
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    while a.size:
        parent = compress(parent)
        ra, rb = parent[a], parent[b]
        diff = ra != rb
        if not diff.any():
            break
        ra, rb, a, b = ra[diff], rb[diff], a[diff], b[diff]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
    return compress(parent)


# ------------------------------------------------------------------------ one block
@dataclass
class BlockLabels:
    labels: np.ndarray  # int64, 0 = no patch, else 1..n (local)
    n: int
    area: np.ndarray  # cells per local label (index 0 unused)
    value: np.ndarray  # value per local label
    run_label: np.ndarray  # local label per run
    run_row: np.ndarray
    run_c0: np.ndarray
    run_c1: np.ndarray  # inclusive


def label_block(values: np.ndarray, connectivity: int = 4) -> BlockLabels:
    """Connected components of equal non-zero values in one 2-D array."""
    v = np.ascontiguousarray(values)
    h, w = v.shape
    valid = v > 0
    start = valid.copy()
    start[:, 1:] &= v[:, 1:] != v[:, :-1]
    flat_start = start.ravel()
    run_id = np.cumsum(flat_start, dtype=np.int64) - 1
    n_runs = int(flat_start.sum())
    if n_runs == 0:
        z = np.zeros(0, dtype=np.int64)
        return BlockLabels(np.zeros((h, w), np.int64), 0, np.zeros(1, np.int64),
                           np.zeros(1, v.dtype), z, z, z, z)
    rid = run_id.reshape(h, w)
    starts = np.flatnonzero(flat_start)
    run_row = starts // w
    run_c0 = starts % w
    vidx = np.flatnonzero(valid.ravel())
    vr = run_id[vidx]
    last = np.ones(vr.size, dtype=bool)
    last[:-1] = vr[1:] != vr[:-1]
    run_c1 = vidx[last] % w
    # joins between runs of consecutive rows, taken where an overlap begins
    pairs_a, pairs_b = [], []
    eq = valid[:-1] & valid[1:] & (v[:-1] == v[1:])
    m = eq & (start[:-1] | start[1:])
    pairs_a.append(rid[:-1][m])
    pairs_b.append(rid[1:][m])
    if connectivity == 8:
        d = valid[:-1, :-1] & valid[1:, 1:] & (v[:-1, :-1] == v[1:, 1:])
        d &= start[:-1, :-1] | start[1:, 1:]
        pairs_a.append(rid[:-1, :-1][d])
        pairs_b.append(rid[1:, 1:][d])
        e = valid[:-1, 1:] & valid[1:, :-1] & (v[:-1, 1:] == v[1:, :-1])
        e &= start[:-1, 1:] | start[1:, :-1]
        pairs_a.append(rid[:-1, 1:][e])
        pairs_b.append(rid[1:, :-1][e])
    roots = union_edges(n_runs, np.concatenate(pairs_a), np.concatenate(pairs_b))
    uniq, run_label = np.unique(roots, return_inverse=True)
    run_label = run_label.astype(np.int64) + 1
    n = int(uniq.size)
    labels = np.zeros(h * w, dtype=np.int64)
    labels[vidx] = run_label[vr]
    labels = labels.reshape(h, w)
    area = np.bincount(run_label, weights=run_c1 - run_c0 + 1, minlength=n + 1).astype(np.int64)
    value = np.zeros(n + 1, dtype=v.dtype)
    value[run_label] = v.ravel()[starts]
    return BlockLabels(labels, n, area, value, run_label, run_row, run_c0, run_c1)


def _run_corners(lab: np.ndarray, row: np.ndarray, c0: np.ndarray, c1: np.ndarray,
                 row_off: int, col_off: int) -> tuple[np.ndarray, np.ndarray]:
    """Corner points (x = column, y = row, in cells) that can lie on a patch's convex hull:
    the outer corners of its leftmost and rightmost cell in every row. Sorted by label."""
    order = np.lexsort((row, lab))
    lab, row, c0, c1 = lab[order], row[order], c0[order], c1[order]
    start = np.ones(lab.size, dtype=bool)
    start[1:] = (lab[1:] != lab[:-1]) | (row[1:] != row[:-1])
    idx = np.flatnonzero(start)
    lab, row = lab[idx], row[idx] + row_off
    left = np.minimum.reduceat(c0, idx) + col_off
    right = np.maximum.reduceat(c1, idx) + col_off + 1
    xs = np.stack([left, left, right, right], axis=1).ravel().astype("float64")
    ys = np.stack([row, row + 1, row, row + 1], axis=1).ravel().astype("float64")
    return np.repeat(lab, 4), np.column_stack([xs, ys])


def mbc_radius(labels_sorted: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-bounding-circle radius per label of points grouped by (sorted) label."""
    if labels_sorted.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    uniq, idx = np.unique(labels_sorted, return_inverse=True)
    mp = shapely.multipoints(coords, indices=idx)
    return uniq, np.asarray(shapely.minimum_bounding_radius(mp), dtype="float64")


def hull_points(labels_sorted: np.ndarray,
                coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convex-hull vertices per label (fewer points to keep for patches that cross blocks)."""
    if labels_sorted.size == 0:
        return labels_sorted, coords
    uniq, idx = np.unique(labels_sorted, return_inverse=True)
    hulls = shapely.convex_hull(shapely.multipoints(coords, indices=idx))
    pts, which = shapely.get_coordinates(hulls, return_index=True)
    return uniq[which], pts


# ------------------------------------------------------------------------ whole raster
@dataclass
class PatchResult:
    """Per provisional label: ``root``; per root: ``area`` (cells), ``value`` and
    ``compactness`` (area ÷ area of the minimum bounding circle; NaN when not computed)."""

    root: np.ndarray
    area: np.ndarray
    value: np.ndarray
    compactness: np.ndarray
    n_patches: int

    def per_cell(self, prov: np.ndarray, stat: np.ndarray) -> np.ndarray:
        """Look a per-root statistic up for a block of provisional labels (0 → 0)."""
        return stat[self.root[prov]]


@dataclass
class PatchAccumulator:
    """Collects block labellings; :meth:`finish` joins the seams."""

    height: int
    width: int
    connectivity: int = 4
    compactness: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next: int = 1
    _area: list = field(default_factory=list)
    _value: list = field(default_factory=list)
    _radius: list = field(default_factory=list)
    _hull_lab: list = field(default_factory=list)
    _hull_xy: list = field(default_factory=list)
    _rows: dict = field(default_factory=dict)  # (row) -> (labels, values) along full width
    _cols: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._area.append(np.zeros(1, np.int64))
        self._value.append(np.zeros(1, np.uint8))
        self._radius.append(np.full(1, np.nan))

    def add_block(self, values: np.ndarray, row_off: int, col_off: int) -> np.ndarray:
        """Label one block; return its provisional labels (int64, unique over the raster)."""
        bl = label_block(values, self.connectivity)
        h, w = values.shape
        radius = np.full(bl.n + 1, np.nan)
        keep_lab = keep_xy = None
        if self.compactness and bl.n:
            lab_s, xy = _run_corners(bl.run_label, bl.run_row, bl.run_c0, bl.run_c1,
                                     row_off, col_off)
            edge = np.zeros(bl.n + 1, dtype=bool)
            for line in (bl.labels[0], bl.labels[-1], bl.labels[:, 0], bl.labels[:, -1]):
                edge[line] = True
            edge[0] = False
            inner = ~edge[lab_s]
            u, r = mbc_radius(lab_s[inner], xy[inner])
            radius[u] = r
            keep_lab, keep_xy = hull_points(lab_s[~inner], xy[~inner])
        with self._lock:
            base = self._next - 1
            self._next += bl.n
            self._area.append(bl.area[1:])
            self._value.append(bl.value[1:].astype(np.uint8))
            self._radius.append(radius[1:])
            if keep_lab is not None and keep_lab.size:
                self._hull_lab.append(keep_lab + base)
                self._hull_xy.append(keep_xy)
        prov = np.where(bl.labels > 0, bl.labels + base, 0)
        vals = np.asarray(values)
        with self._lock:
            self._store_line(self._rows, row_off, col_off, prov[0], vals[0])
            self._store_line(self._rows, row_off + h - 1, col_off, prov[-1], vals[-1])
            self._store_line(self._cols, col_off, row_off, prov[:, 0], vals[:, 0])
            self._store_line(self._cols, col_off + w - 1, row_off, prov[:, -1], vals[:, -1])
        return prov

    def _store_line(self, store: dict, key: int, off: int, lab: np.ndarray,
                    val: np.ndarray) -> None:
        length = self.width if store is self._rows else self.height
        if key not in store:
            store[key] = (np.zeros(length, np.int64), np.zeros(length, np.uint8))
        store[key][0][off:off + lab.size] = lab
        store[key][1][off:off + lab.size] = val

    def _seam_pairs(self, store: dict) -> tuple[list, list]:
        pa, pb = [], []
        keys = sorted(store)
        for k in keys:
            if k + 1 not in store:
                continue
            la, va = store[k]
            lb, vb = store[k + 1]
            shifts = [0] if self.connectivity == 4 else [-1, 0, 1]
            for s in shifts:
                if s == 0:
                    a_l, a_v, b_l, b_v = la, va, lb, vb
                elif s == 1:
                    a_l, a_v, b_l, b_v = la[:-1], va[:-1], lb[1:], vb[1:]
                else:
                    a_l, a_v, b_l, b_v = la[1:], va[1:], lb[:-1], vb[:-1]
                m = (a_v > 0) & (a_v == b_v) & (a_l != b_l) & (a_l > 0) & (b_l > 0)
                pa.append(a_l[m])
                pb.append(b_l[m])
        return pa, pb

    def finish(self) -> PatchResult:
        n = self._next
        area = np.concatenate(self._area)
        value = np.concatenate(self._value)
        radius = np.concatenate(self._radius)
        ra, rb = self._seam_pairs(self._rows)
        ca, cb = self._seam_pairs(self._cols)
        a = np.concatenate(ra + ca) if ra or ca else np.zeros(0, np.int64)
        b = np.concatenate(rb + cb) if rb or cb else np.zeros(0, np.int64)
        root = union_edges(n, a, b)
        root_area = np.bincount(root, weights=area, minlength=n).astype(np.int64)
        comp = np.full(n, np.nan)
        if self.compactness:
            inner = ~np.isnan(radius)
            comp[inner] = area[inner] / (np.pi * radius[inner] ** 2)
            if self._hull_lab:
                hl = root[np.concatenate(self._hull_lab)]
                xy = np.concatenate(self._hull_xy)
                order = np.argsort(hl, kind="stable")
                u, r = mbc_radius(hl[order], xy[order])
                comp[u] = root_area[u] / (np.pi * r ** 2)
        root_area[0] = 0
        n_patches = int(np.count_nonzero(root[1:] == np.arange(1, n)))
        self._rows.clear()
        self._cols.clear()
        return PatchResult(root=root, area=root_area, value=value, compactness=comp,
                           n_patches=n_patches)
