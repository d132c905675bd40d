"""Raster layers for the canvas: a DEM as hillshade, class rasters in their class colours,
other single-band rasters as a colour ramp.

:func:`load_raster` reads the GeoTIFF (decimated to at most ``MAX_SIDE`` pixels a side) in a
worker thread and turns it into a small pyramid of ``QImage`` levels; the renderer draws the
level nearest the view's pixel size, cropped to the view. Project rasters are stored in the
project CRS (core/io.py reprojects on import), so drawing is an axis-aligned blit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

MAX_SIDE = 4096
MIN_LEVEL_SIDE = 256

#: Hypsometric tint for the DEM (fraction of the elevation range → RGB), shaded by the hillshade.
DEM_RAMP = [(0.0, (112, 164, 104)), (0.25, (170, 200, 120)), (0.5, (226, 214, 150)),
            (0.75, (190, 150, 100)), (1.0, (245, 240, 235))]
#: Ramp for continuous results (slope, relief): low = light yellow, high = dark red.
CONTINUOUS_RAMP = [(0.0, (255, 255, 204)), (0.33, (254, 204, 92)), (0.66, (240, 59, 32)),
                   (1.0, (128, 0, 38))]


@dataclass
class RasterData:
    kind: str  # "dem" | "classes" | "continuous"
    bounds: tuple[float, float, float, float]
    pixel_size: float  # map units per pixel of the finest level
    levels: list[tuple[QImage, tuple[float, float, float, float]]] = field(default_factory=list)
    legend: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    value_range: tuple[float, float] | None = None
    shape: tuple[int, int] = (0, 0)  # rows, cols as read
    source_shape: tuple[int, int] = (0, 0)

    def level_for(self, upp: float) -> tuple[QImage, tuple[float, float, float, float]] | None:
        """The coarsest level still at least as fine as ``upp`` (else the finest)."""
        if not self.levels:
            return None
        best = self.levels[0]
        size = self.pixel_size
        for lvl in self.levels[1:]:
            size *= 2
            if size > upp:
                break
            best = lvl
        return best

    def total_bounds(self) -> tuple[float, float, float, float]:
        return self.bounds


def _ramp(t: np.ndarray, ramp: list[tuple[float, tuple[int, int, int]]],
          steps: int = 256) -> np.ndarray:
    """Colours for ``t`` in [0, 1] from a ramp (via a 256-entry lookup table)."""
    xs = [s for s, _ in ramp]
    grid = np.linspace(0.0, 1.0, steps)
    lut = np.column_stack([np.interp(grid, xs, [c[k] for _, c in ramp]) for k in range(3)])
    idx = np.clip((t * (steps - 1)).astype(np.int32), 0, steps - 1)
    return lut.astype(np.float32)[idx]


def hillshade(z: np.ndarray, xres: float, yres: float, azimuth: float = 315.0,
              altitude: float = 45.0) -> np.ndarray:
    """Hillshade in [0, 1]: the cosine between the surface normal and the light from
    ``azimuth`` (degrees clockwise from north) at ``altitude`` (rows run north → south)."""
    z = np.asarray(z, dtype=np.float32)
    dz_drow, dz_dx = np.gradient(z, np.float32(yres), np.float32(xres))
    dz_dy = -dz_drow  # y grows northwards, rows southwards
    az, alt = np.radians(azimuth), np.radians(altitude)
    lx, ly, lz = np.cos(alt) * np.sin(az), np.cos(alt) * np.cos(az), np.sin(alt)
    shade = (lz - dz_dx * lx - dz_dy * ly) / np.sqrt(1.0 + dz_dx * dz_dx + dz_dy * dz_dy)
    return np.clip(shade, 0.0, 1.0, out=shade)


def _to_qimage(rgba: np.ndarray) -> QImage:
    h, w, _ = rgba.shape
    buf = np.ascontiguousarray(rgba, dtype=np.uint8)
    img = QImage(buf.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)  # owns a copy


def load_raster(path: str | Path, kind: str, *, classes: dict[int, tuple[str, tuple[int, ...]]]
                | None = None, check: Callable[[], None] | None = None) -> RasterData:
    """Read a single-band GeoTIFF for display.

    ``kind`` is ``"dem"`` (hillshade with a hypsometric tint), ``"classes"`` (``classes``
    maps each value to ``(label, rgba)``; other values are transparent) or
    ``"continuous"`` (a colour ramp over the 2–98 % range).
    """
    import rasterio
    from rasterio.enums import Resampling

    check = check or (lambda: None)
    with rasterio.open(path) as ds:
        scale = max(1.0, max(ds.width, ds.height) / MAX_SIDE)
        rows, cols = max(1, int(ds.height / scale)), max(1, int(ds.width / scale))
        resampling = Resampling.nearest if kind == "classes" else Resampling.average
        band = ds.read(1, out_shape=(rows, cols), resampling=resampling, masked=True)
        b = ds.bounds
        bounds = (float(b.left), float(b.bottom), float(b.right), float(b.top))
        source_shape = (ds.height, ds.width)
    check()
    xres = (bounds[2] - bounds[0]) / cols
    yres = (bounds[3] - bounds[1]) / rows
    mask = np.ma.getmaskarray(band)
    values = np.ma.getdata(band).astype(np.float32 if kind != "classes" else np.int64)
    rgba = np.zeros((rows, cols, 4), dtype=np.uint8)
    legend: list[tuple[str, tuple[int, ...]]] = []
    value_range = None
    if kind == "classes":
        for value, (label, colour) in sorted((classes or {}).items()):
            sel = (values == value) & ~mask
            col = tuple(colour) + (255,) * (4 - len(colour))
            rgba[sel] = col
            legend.append((label, col))
    else:
        valid = values[~mask]
        if valid.size:
            lo, hi = (np.percentile(valid, [2, 98]) if kind == "continuous"
                      else (float(valid.min()), float(valid.max())))
        else:
            lo, hi = 0.0, 1.0
        hi = hi if hi > lo else lo + 1.0
        value_range = (float(lo), float(hi))
        filled = np.where(mask, np.float32(lo), values)
        t = np.clip((filled - np.float32(lo)) / np.float32(hi - lo), 0, 1)
        check()
        if kind == "dem":
            shade = hillshade(filled, xres, yres)
            rgb = _ramp(t, DEM_RAMP)
            rgb *= (0.35 + 0.65 * shade)[..., None]
            legend = [(f"{lo:.0f}", (*DEM_RAMP[0][1], 255)), (f"{hi:.0f}", (*DEM_RAMP[-1][1], 255))]
        else:
            rgb = _ramp(t, CONTINUOUS_RAMP)
            legend = [(f"{lo:.3g}", (*CONTINUOUS_RAMP[0][1], 255)),
                      (f"{hi:.3g}", (*CONTINUOUS_RAMP[-1][1], 255))]
        rgba[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
        rgba[..., 3] = np.where(mask, 0, 255)
    check()
    levels = [(_to_qimage(rgba), bounds)]
    img = levels[0][0]
    mode = (Qt.TransformationMode.FastTransformation if kind == "classes"
            else Qt.TransformationMode.SmoothTransformation)
    while max(img.width(), img.height()) > MIN_LEVEL_SIDE:
        img = img.scaled(max(1, img.width() // 2), max(1, img.height() // 2),
                         Qt.AspectRatioMode.IgnoreAspectRatio, mode)
        levels.append((img, bounds))
    return RasterData(kind=kind, bounds=bounds, pixel_size=max(xres, yres), levels=levels,
                      legend=legend, value_range=value_range, shape=(rows, cols),
                      source_shape=source_shape)
