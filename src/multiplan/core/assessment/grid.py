"""The assessment grid and the factor inputs aligned to it, read block by block.

One grid in the project CRS: cells of ``assessment_cell_size_m`` (default 30 m) covering the
county's bounding box; its origin sits on a multiple of the cell size, or on the DEM's own
cell corners when the DEM already has the grid's cell size (so the DEM is not resampled
by a fraction of a cell for nothing). Cells count as inside the county when their centre
is (GDAL's rasterisation rule).

Raster factors are read through a ``WarpedVRT`` onto the grid, bilinear for continuous
values and nearest for classes; vector factors are rasterised per block. Every read takes
a block window plus a halo and returns NaN (continuous) or 0 (classes) where the source
has no data. Each worker thread opens its own dataset handles (GDAL handles are not
thread-safe).
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

# rasterize() builds its in-memory dataset before giving it the transform we pass; in a
# worker thread rasterio reports that intermediate state as "no geotransform". Harmless.
warnings.filterwarnings("ignore", message="Dataset has no geotransform",
                        category=NotGeoreferencedWarning, module=r"rasterio\.features")


@dataclass(frozen=True)
class Block:
    index: int
    row: int
    col: int
    height: int
    width: int


@dataclass(frozen=True)
class Grid:
    """A north-up grid: ``transform`` maps (col, row) to project coordinates."""

    epsg: int
    transform: Affine
    width: int
    height: int

    @property
    def cell(self) -> float:
        return float(self.transform.a)

    @property
    def cell_area_m2(self) -> float:
        return self.cell * self.cell

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y1 = self.transform.c, self.transform.f
        return (x0, y1 - self.height * self.cell, x0 + self.width * self.cell, y1)

    def window_transform(self, row: int, col: int) -> Affine:
        return self.transform @ Affine.translation(col, row)

    def blocks(self, size: int) -> list[Block]:
        out = []
        for r in range(0, self.height, size):
            for c in range(0, self.width, size):
                out.append(Block(len(out), r, c, min(size, self.height - r),
                                 min(size, self.width - c)))
        return out

    def centres(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates (x row vector, y column vector) of a block."""
        t = self.transform
        x = t.c + (np.arange(block.col, block.col + block.width) + 0.5) * t.a
        y = t.f + (np.arange(block.row, block.row + block.height) + 0.5) * t.e
        return x[None, :], y[:, None]

    def to_dict(self) -> dict[str, Any]:
        return {"epsg": self.epsg, "cell_size_m": self.cell, "width": self.width,
                "height": self.height, "origin": [self.transform.c, self.transform.f],
                "bounds": list(self.bounds)}


def make_grid(epsg: int, bounds: tuple[float, float, float, float], cell: float,
              align: tuple[float, float] | None = None) -> Grid:
    """Grid covering ``bounds`` with square cells of ``cell`` metres; its corners sit on
    ``align + k·cell`` (default: multiples of ``cell``)."""
    ax, ay = align if align is not None else (0.0, 0.0)
    minx, miny, maxx, maxy = bounds
    x0 = ax + math.floor((minx - ax) / cell + 1e-9) * cell
    y1 = ay + math.ceil((maxy - ay) / cell - 1e-9) * cell
    width = max(1, math.ceil((maxx - x0) / cell - 1e-9))
    height = max(1, math.ceil((y1 - miny) / cell - 1e-9))
    return Grid(epsg, Affine(cell, 0.0, x0, 0.0, -cell, y1), width, height)


# ---------------------------------------------------------------------- inputs
class RasterInput:
    """A raster factor resampled onto the grid (bilinear or nearest), read per window."""

    def __init__(self, path: str, grid: Grid, margin: int, kind: str = "continuous") -> None:
        import rasterio

        self.path = str(path)
        self.grid = grid
        self.margin = margin
        self.kind = kind
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        with rasterio.open(self.path) as src:
            self.count = src.count
            self.src_nodata = src.nodata
            self.src_res = src.res
            self.src_transform = src.transform
            self.src_shape = (src.width, src.height)
            same_crs = src.crs is not None and src.crs.to_epsg() == grid.epsg
        st = self.src_transform
        # GDAL's warper widens its bilinear kernel when it shrinks an image; the direct path
        # is taken only where that does not happen (source cells at least the grid's size)
        north_up = same_crs and st.b == 0 and st.d == 0 and st.a > 0 and st.e < 0
        coarser = st.a >= grid.cell - 1e-9 and -st.e >= grid.cell - 1e-9
        self.direct = north_up and (coarser or kind != "continuous")

    def read(self, block: Block, halo: int = 0, bands: list[int] | None = None) -> np.ndarray:
        """``(bands, h + 2·halo, w + 2·halo)`` for the block plus its halo."""
        if halo > self.margin:
            raise ValueError("halo larger than the input margin")
        bands = bands or list(range(1, self.count + 1))
        if self.direct:
            return self._read_direct(block, halo, bands)
        return self._read_warped(block, halo, bands)

    def _read_warped(self, block: Block, halo: int, bands: list[int]) -> np.ndarray:
        """GDAL's warper onto the block window (for sources finer than the grid, or in
        another CRS); GDAL reads only the source region it needs."""
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.warp import reproject

        g = self.grid
        h, w = block.height + 2 * halo, block.width + 2 * halo
        cont = self.kind == "continuous"
        out = np.full((len(bands), h, w), np.nan if cont else 0,
                      dtype="float32" if cont else "int32")
        src = self._src()
        for i, b in enumerate(bands):
            reproject(rasterio.band(src, b), out[i], src_nodata=self.src_nodata,
                      dst_transform=g.window_transform(block.row - halo, block.col - halo),
                      dst_crs=f"EPSG:{g.epsg}", dst_nodata=np.nan if cont else 0,
                      resampling=Resampling.bilinear if cont else Resampling.nearest)
        return out

    # -- direct path: same CRS, north-up, source cells not finer than the grid -------------
    def _src(self) -> Any:
        src = getattr(self._local, "src", None)
        if src is None:
            import rasterio

            src = self._local.src = rasterio.open(self.path)
            with self._lock:
                self._opened.append(src)
        return src

    def _read_direct(self, block: Block, halo: int, bands: list[int]) -> np.ndarray:
        """Resample by hand: GDAL's pixel-centre convention, bilinear with the weights of
        missing neighbours dropped (as GDAL does), or nearest. Only the source window the
        block needs is read."""
        from rasterio.windows import Window

        g, st = self.grid, self.src_transform
        h, w = block.height + 2 * halo, block.width + 2 * halo
        t = g.window_transform(block.row - halo, block.col - halo)
        xc = t.c + (np.arange(w) + 0.5) * t.a
        yc = t.f + (np.arange(h) + 0.5) * t.e
        u = (xc - st.c) / st.a  # continuous source column of each cell centre
        v = (yc - st.f) / st.e
        sw, sh = self.src_shape
        cont = self.kind == "continuous"
        fill = np.nan if cont else 0
        if cont:
            c0 = np.floor(u - 0.5).astype(np.int64)
            r0 = np.floor(v - 0.5).astype(np.int64)
            lo_c, hi_c = c0.min(), c0.max() + 1
            lo_r, hi_r = r0.min(), r0.max() + 1
        else:
            c0 = np.floor(u).astype(np.int64)
            r0 = np.floor(v).astype(np.int64)
            lo_c, hi_c, lo_r, hi_r = c0.min(), c0.max(), r0.min(), r0.max()
        wc0, wc1 = max(lo_c, 0), min(hi_c, sw - 1)
        wr0, wr1 = max(lo_r, 0), min(hi_r, sh - 1)
        dtype = "float32" if cont else "int32"
        out = np.full((len(bands), h, w), fill, dtype=dtype)
        if wc0 > wc1 or wr0 > wr1:
            return out
        data = self._src().read(bands, window=Window(wc0, wr0, wc1 - wc0 + 1, wr1 - wr0 + 1))
        if cont:
            data = data.astype("float32")
            if self.src_nodata is not None:
                data[data == self.src_nodata] = np.nan
        inside_c = (u >= 0) & (u <= sw)
        inside_r = (v >= 0) & (v <= sh)
        if not cont:
            cc = np.clip(c0, wc0, wc1) - wc0
            rr = np.clip(r0, wr0, wr1) - wr0
            vals = data[:, rr][:, :, cc].astype(dtype)
            if self.src_nodata is not None:
                vals[vals == self.src_nodata] = 0
            ok = inside_r[:, None] & inside_c[None, :] & (u < sw)[None, :] & (v < sh)[:, None]
            out[:, ok] = vals[:, ok]
            return out
        # separable bilinear: interpolate along columns on the (small) source rows, then
        # along rows; the weights of missing neighbours are dropped by dividing by the
        # same interpolation of the validity mask (as GDAL's warper does)
        fx = (u - 0.5 - c0).astype("float32")
        fy = (v - 0.5 - r0).astype("float32")[:, None]
        ca = np.clip(c0, wc0, wc1) - wc0
        cb = np.clip(c0 + 1, wc0, wc1) - wc0
        ra = np.clip(r0, wr0, wr1) - wr0
        rb = np.clip(r0 + 1, wr0, wr1) - wr0
        valid = ~np.isnan(data)
        if np.all(np.abs(fx) < 1e-6) and np.all(np.abs(fy) < 1e-6):  # aligned: a copy
            res = data[:, ra][:, :, ca]
        else:
            d0 = np.where(valid, data, 0).astype("float32")
            a = d0[:, :, ca] * (1 - fx) + d0[:, :, cb] * fx
            res = a[:, ra] * (1 - fy) + a[:, rb] * fy
            if not valid.all():
                m = valid.astype("float32")
                am = m[:, :, ca] * (1 - fx) + m[:, :, cb] * fx
                den = am[:, ra] * (1 - fy) + am[:, rb] * fy
                with np.errstate(invalid="ignore", divide="ignore"):
                    res = np.where(den > 1e-6, res / den, np.nan)
        res = res.astype("float32")
        # as GDAL: a cell whose centre falls on a missing source pixel is missing
        cn = np.clip(np.floor(u).astype(np.int64), wc0, wc1) - wc0
        rn = np.clip(np.floor(v).astype(np.int64), wr0, wr1) - wr0
        res[~valid[:, rn][:, :, cn]] = np.nan
        ok = inside_r[:, None] & inside_c[None, :]
        res[:, ~ok] = np.nan
        return res

    def close(self) -> None:
        with self._lock:
            for ds in self._opened:
                ds.close()
            self._opened.clear()


class VectorInput:
    """Polygons with one value each, rasterised onto grid windows (cell-centre rule)."""

    def __init__(self, geoms: np.ndarray, values: np.ndarray, grid: Grid,
                 kind: str = "continuous", dtype: str | None = None) -> None:
        self.grid = grid
        self.kind = kind
        geoms = np.asarray(geoms, dtype=object)
        keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        self.geoms = geoms[keep]
        self.values = np.asarray(values)[keep]
        self.dtype = dtype or ("float32" if kind == "continuous" else "int32")
        self.fill = np.nan if self.dtype.startswith("float") else 0
        self.tree = shapely.STRtree(self.geoms)
        self.count = 1

    def read(self, block: Block, halo: int = 0, bands: list[int] | None = None) -> np.ndarray:
        from rasterio.features import rasterize

        g = self.grid
        h, w = block.height + 2 * halo, block.width + 2 * halo
        t = g.window_transform(block.row - halo, block.col - halo)
        box = shapely.box(t.c, t.f - h * g.cell, t.c + w * g.cell, t.f)
        idx = np.sort(self.tree.query(box))  # keep layer order: later features win overlaps
        if idx.size == 0:
            return np.full((1, h, w), self.fill, dtype=self.dtype)
        # clipping to the window (plus a cell) first makes the GeoJSON hand-over to GDAL
        # cheap for big polygons that span many blocks (townships, soil units)
        geoms = shapely.clip_by_rect(self.geoms[idx], t.c - g.cell, t.f - (h + 1) * g.cell,
                                     t.c + (w + 1) * g.cell, t.f + g.cell)
        keep = ~shapely.is_empty(geoms)
        if not keep.any():
            return np.full((1, h, w), self.fill, dtype=self.dtype)
        shapes = zip(geoms[keep], self.values[idx][keep].tolist(), strict=True)
        out = rasterize(shapes, out_shape=(h, w), transform=t, fill=self.fill,
                        dtype=self.dtype, all_touched=False)
        return out[None]

    def close(self) -> None:
        pass

