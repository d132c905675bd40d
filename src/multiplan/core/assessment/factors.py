"""Single-factor computations on arrays (pure numpy): slope, relief, THI, travel time.

Every neighbourhood function takes an array padded with the halo it needs and returns the
unpadded interior, so the windowed engine can feed it a block plus its overlap.
"""

from __future__ import annotations

import numpy as np

from .grading import interval_index

#: Halo (overlap) that Horn's slope needs on every side.
SLOPE_HALO = 1


def slope_horn(z: np.ndarray, xres: float, yres: float | None = None) -> np.ndarray:
    """Slope in degrees by Horn's (1981) method, as ``gdaldem slope`` computes it.

    ``z`` is padded by one cell on every side; the result has shape ``z.shape - 2``.
    With cells a b c / d e f / g h i::

        dz/dx = ((c + 2f + i) − (a + 2d + g)) / (8 · xres)
        dz/dy = ((g + 2h + i) − (a + 2b + c)) / (8 · yres)
        slope = atan(√(dz/dx² + dz/dy²))

    A cell whose 3 × 3 window holds a NaN gets NaN.
    """
    yres = xres if yres is None else yres
    z = np.asarray(z, dtype="float64")
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * xres)
    dy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8.0 * yres)
    out = np.degrees(np.arctan(np.hypot(dx, dy)))
    return out.astype("float32")


def relief_window(cell_size: float, rule: dict) -> int:
    """Moving-window size (cells) for relief at this cell size, per ``relief_window``."""
    idx = int(interval_index(np.array([cell_size]), rule["cell_size_breaks_m"],
                             rule["closed"])[0])
    return int(rule["window_cells"][idx])


def window_offsets(n: int) -> tuple[int, int]:
    """Cells before and after the processing cell in an ``n``-cell window, ArcGIS style:
    the processing cell is at ``(n + 1) // 2`` (1-based) from the upper-left, so an even
    window reaches one cell further right/down (12 → 5 before, 6 after)."""
    before = (n + 1) // 2 - 1
    return before, n - 1 - before


def _moving(z: np.ndarray, n: int, axis: int, acc: np.ufunc) -> np.ndarray:
    """Moving max (``acc = np.maximum``) or min over ``n`` cells along ``axis``, output
    length ``len - n + 1``: van Herk / Gil-Werman — prefix and suffix accumulations inside
    blocks of ``n`` cells, so the cost does not grow with the window."""
    if n == 1:
        return z.copy()
    z = np.moveaxis(z, axis, -1)
    length = z.shape[-1]
    nb = -(-length // n)
    fill = -np.inf if acc is np.maximum else np.inf
    pad = np.full(z.shape[:-1] + (nb * n - length,), fill, dtype=z.dtype)
    blocks = np.concatenate([z, pad], axis=-1).reshape(z.shape[:-1] + (nb, n))
    g = acc.accumulate(blocks, axis=-1).reshape(z.shape[:-1] + (nb * n,))
    h = acc.accumulate(blocks[..., ::-1], axis=-1)[..., ::-1].reshape(z.shape[:-1] + (nb * n,))
    out = acc(h[..., :length - n + 1], g[..., n - 1:length])
    return np.moveaxis(out, -1, axis)


def relief(z: np.ndarray, n: int) -> np.ndarray:
    """Moving-window max − min over an ``n × n`` window (NaN cells ignored inside the window;
    a NaN processing cell gives NaN). ``z`` is padded by :func:`window_offsets` on each side
    (before on top/left, after on bottom/right); the result drops the padding."""
    before, after = window_offsets(n)
    z = np.asarray(z, dtype="float32")
    nan = np.isnan(z)
    hi = np.where(nan, -np.inf, z)
    lo = np.where(nan, np.inf, z)
    mx = _moving(_moving(hi, n, 0, np.maximum), n, 1, np.maximum)
    mn = _moving(_moving(lo, n, 0, np.minimum), n, 1, np.minimum)
    out = (mx - mn).astype("float32")
    h, w = z.shape
    centre = nan[before:h - after, before:w - after]
    out[centre | ~np.isfinite(out)] = np.nan
    return out


def thi(temp_c: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Temperature-humidity index: THI = T_F − 0.55 (1 − RH) (T_F − 58), T_F in °F, RH a
    fraction (input in %)."""
    tf = np.asarray(temp_c, dtype="float32") * np.float32(1.8) + np.float32(32.0)
    rh = np.asarray(rh_pct, dtype="float32") / np.float32(100.0)
    return tf - np.float32(0.55) * (np.float32(1.0) - rh) * (tf - np.float32(58.0))


def travel_time_hours(x: np.ndarray, y: np.ndarray, seat: tuple[float, float],
                      speed_kmh: float, detour: float) -> np.ndarray:
    """Travel-time proxy to the county seat: straight-line km × detour ÷ speed."""
    d_km = np.hypot(x - seat[0], y - seat[1]) / 1000.0
    return (d_km * detour / speed_kmh).astype("float32")
