"""Patches across blocks: labelling against a brute-force flood fill, seams, compactness
against shapely's minimum bounding circle of the unioned cells."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import shapely

from multiplan.core.assessment.patches import PatchAccumulator, label_block, union_edges


def flood(v: np.ndarray, conn: int) -> tuple[np.ndarray, int]:
    h, w = v.shape
    lab = np.zeros((h, w), int)
    n = 0
    nb = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if conn == 8:
        nb += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    for r in range(h):
        for c in range(w):
            if v[r, c] > 0 and lab[r, c] == 0:
                n += 1
                lab[r, c] = n
                q = deque([(r, c)])
                while q:
                    a, b = q.popleft()
                    for dr, dc in nb:
                        x, y = a + dr, b + dc
                        if 0 <= x < h and 0 <= y < w and not lab[x, y] and v[x, y] == v[a, b]:
                            lab[x, y] = n
                            q.append((x, y))
    return lab, n


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    m = a > 0
    if not np.array_equal(m, b > 0):
        return False
    pairs = set(zip(a[m].tolist(), b[m].tolist(), strict=True))
    return len(pairs) == len(set(a[m].tolist())) == len(set(b[m].tolist()))


@pytest.mark.parametrize("conn", [4, 8])
def test_label_block_matches_flood_fill(conn: int) -> None:
    rng = np.random.default_rng(11)
    for _ in range(25):
        v = rng.integers(0, 4, size=rng.integers(1, 30, size=2)).astype("uint8")
        bl = label_block(v, conn)
        ref, n = flood(v, conn)
        assert bl.n == n and same_partition(bl.labels, ref)
        assert np.bincount(bl.labels.ravel(), minlength=n + 1)[1:].tolist() == \
            bl.area[1:].tolist()


@pytest.mark.parametrize("conn", [4, 8])
def test_blocks_and_seams_give_the_whole_raster_patches(conn: int) -> None:
    rng = np.random.default_rng(12)
    for _ in range(15):
        v = rng.integers(0, 3, size=rng.integers(5, 40, size=2)).astype("uint8")
        h, w = v.shape
        bs = int(rng.integers(2, 9))
        acc = PatchAccumulator(h, w, conn, compactness=True)
        prov = np.zeros((h, w), np.int64)
        for r in range(0, h, bs):
            for c in range(0, w, bs):
                prov[r:r + bs, c:c + bs] = acc.add_block(v[r:r + bs, c:c + bs], r, c)
        res = acc.finish()
        ref, n = flood(v, conn)
        assert res.n_patches == n
        assert same_partition(res.root[prov], ref)
        whole = PatchAccumulator(h, w, conn, compactness=True)
        p2 = whole.add_block(v, 0, 0)
        r2 = whole.finish()
        m = v > 0
        assert np.allclose(res.compactness[res.root[prov]][m], r2.compactness[r2.root[p2]][m])
        assert np.array_equal(res.area[res.root[prov]][m], r2.area[r2.root[p2]][m])


def shapely_compactness(cells: list[tuple[int, int]]) -> float:
    """Independent route: union of the cell squares, shapely's minimum bounding radius."""
    poly = shapely.union_all([shapely.box(c, r, c + 1, r + 1) for r, c in cells])
    return len(cells) / (np.pi * shapely.minimum_bounding_radius(poly) ** 2)


@pytest.mark.parametrize("shape", [
    [(0, 0)],                                   # one cell: 2/π
    [(0, 0), (0, 1)],                           # domino
    [(r, c) for r in range(3) for c in range(3)],
    [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2)],   # L
    [(r, c) for r in range(9) for c in range(9) if (r - 4) ** 2 + (c - 4) ** 2 <= 16],  # disc
    [(0, c) for c in range(12)],                # a thin line
])
def test_compactness_against_shapely(shape: list[tuple[int, int]]) -> None:
    h = max(r for r, _ in shape) + 3
    w = max(c for _, c in shape) + 3
    v = np.zeros((h, w), "uint8")
    for r, c in shape:
        v[r + 1, c + 1] = 2
    acc = PatchAccumulator(h, w, 4, compactness=True)
    prov = acc.add_block(v, 0, 0)
    res = acc.finish()
    r, c = shape[0]
    got = res.compactness[res.root[prov[r + 1, c + 1]]]
    assert got == pytest.approx(shapely_compactness(shape), rel=1e-9)


def test_known_compactness_values() -> None:
    assert shapely_compactness([(0, 0)]) == pytest.approx(2 / np.pi)
    assert shapely_compactness([(0, 0), (0, 1)]) == pytest.approx(2 / (np.pi * 1.25))


def test_union_edges() -> None:
    roots = union_edges(6, np.array([5, 3, 1]), np.array([4, 4, 0]))
    assert roots.tolist() == [0, 0, 2, 3, 3, 3]
    assert union_edges(3, np.array([], int), np.array([], int)).tolist() == [0, 1, 2]
