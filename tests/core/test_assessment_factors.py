"""Slope (Horn) against gdaldem and an independent numpy route, relief against brute force,
THI by hand, resampling against GDAL's warper, the windowed engine's block runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from multiplan.core.assessment import factors as F
from multiplan.core.assessment.engine import run_blocks
from multiplan.core.assessment.grid import Block, RasterInput, make_grid
from multiplan.core.tasks import Cancelled, CancelToken, Task


def rough_dem(n: int = 60, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n]
    z = 200 + 80 * np.sin(x / 7.0) * np.cos(y / 5.0) + 3.0 * x + rng.normal(0, 4, (n, n))
    return z.astype("float32")


def horn_by_kernels(z: np.ndarray, res: float) -> np.ndarray:
    """An independent Horn slope: explicit 3 × 3 kernels correlated by a double loop over the
    kernel (not the vectorised slicing of the code under test)."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float) / (8 * res)
    ky = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float) / (8 * res)
    h, w = z.shape
    gx = np.zeros((h - 2, w - 2))
    gy = np.zeros((h - 2, w - 2))
    for i in range(3):
        for j in range(3):
            win = z[i:h - 2 + i, j:w - 2 + j].astype(float)
            gx += kx[i, j] * win
            gy += ky[i, j] * win
    return np.degrees(np.arctan(np.sqrt(gx ** 2 + gy ** 2)))


def test_slope_of_a_plane() -> None:
    y, x = np.mgrid[0:10, 0:10]
    z = (0.05 * 30 * y + 0.0 * x).astype("float32")  # 5 % grade along the rows
    s = F.slope_horn(z, 30.0)
    assert s.shape == (8, 8)
    assert np.allclose(s, np.degrees(np.arctan(0.05)), atol=1e-4)


def test_slope_matches_independent_numpy() -> None:
    z = rough_dem()
    assert np.abs(F.slope_horn(z, 30.0) - horn_by_kernels(z, 30.0)).max() < 0.01


@pytest.mark.skipif(shutil.which("gdaldem") is None,
                    reason="gdaldem (Debian gdal-bin) is not installed; the independent numpy "
                           "check above covers Horn's method")
def test_slope_matches_gdaldem(tmp_path: Path) -> None:
    z = rough_dem(80)
    src = tmp_path / "dem.tif"
    with rasterio.open(src, "w", driver="GTiff", width=80, height=80, count=1,
                       dtype="float32", crs="EPSG:4549",
                       transform=Affine(30, 0, 480000, 0, -30, 3430000)) as dst:
        dst.write(z, 1)
    out = tmp_path / "slope.tif"
    subprocess.run(["gdaldem", "slope", str(src), str(out), "-alg", "Horn", "-of", "GTiff"],
                   check=True, capture_output=True)
    with rasterio.open(out) as ds:
        ref = ds.read(1)[1:-1, 1:-1]  # gdaldem leaves the edge cells as nodata
    got = F.slope_horn(z, 30.0)
    assert np.abs(got - ref).max() < 0.01


def brute_relief(z: np.ndarray, n: int) -> np.ndarray:
    before, after = F.window_offsets(n)
    h, w = z.shape
    out = np.full((h - before - after, w - before - after), np.nan, "float32")
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            if np.isnan(z[r + before, c + before]):
                continue
            win = z[r:r + n, c:c + n]
            out[r, c] = np.nanmax(win) - np.nanmin(win)
    return out


@pytest.mark.parametrize("n", [3, 9, 12, 15])
def test_relief_against_brute_force(n: int) -> None:
    z = rough_dem(40)
    z[5, 7] = np.nan
    z[20:23, 11] = np.nan
    got = F.relief(z, n)
    ref = brute_relief(z, n)
    assert got.shape == ref.shape
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.allclose(got[~np.isnan(ref)], ref[~np.isnan(ref)])


def test_window_placement_is_arcgis_style() -> None:
    assert F.window_offsets(3) == (1, 1)
    assert F.window_offsets(12) == (5, 6)  # processing cell at trunc(13 / 2) = 6th
    assert F.window_offsets(15) == (7, 7)
    z = np.zeros((12, 12), "float32")
    z[0, 0] = 10  # the upper-left corner is 5 cells up/left of the processing cell
    assert F.relief(z, 12)[0, 0] == 10  # one output cell; it sees the corner


def test_thi_by_hand() -> None:
    # 25 °C = 77 °F, RH 50 %: 77 − 0.55 × 0.5 × (77 − 58) = 71.775
    assert F.thi(np.array([25.0]), np.array([50.0]))[0] == pytest.approx(71.775, abs=1e-3)
    # 0 °C = 32 °F, RH 80 %: 32 − 0.55 × 0.2 × (32 − 58) = 34.86
    assert F.thi(np.array([0.0]), np.array([80.0]))[0] == pytest.approx(34.86, abs=1e-3)


def test_travel_time_proxy() -> None:
    t = F.travel_time_hours(np.array([40000.0]), np.array([0.0]), (0.0, 0.0), 40.0, 1.3)
    assert t[0] == pytest.approx(1.3)


# ------------------------------------------------------------------ resampling vs GDAL
def _raster(path: Path, arr: np.ndarray, t: Affine, nodata=None) -> Path:
    arr = arr if arr.ndim == 3 else arr[None]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype=arr.dtype, crs="EPSG:4549", transform=t,
                       nodata=nodata) as dst:
        dst.write(arr)
    return path


def _gdal_reference(path: Path, grid, kind: str) -> np.ndarray:
    """The whole grid through rasterio.warp.reproject (GDAL's warper), in one call."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    with rasterio.open(path) as src:
        cont = kind == "continuous"
        out = np.full((src.count, grid.height, grid.width), np.nan if cont else 0,
                      "float32" if cont else "int32")
        for i in range(src.count):
            reproject(rasterio.band(src, i + 1), out[i], src_nodata=src.nodata,
                      dst_transform=grid.transform, dst_crs="EPSG:4549",
                      dst_nodata=np.nan if cont else 0,
                      resampling=Resampling.bilinear if cont else Resampling.nearest)
    return out


@pytest.mark.parametrize("kind", ["continuous", "classes"])
def test_resampling_equals_gdal_warper(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(7)
    if kind == "continuous":
        arr = rng.uniform(800, 1600, (2, 9, 11)).astype("float32")
        arr[0, 4, 5] = -9999
        nodata = -9999
    else:
        arr = rng.integers(1, 6, (1, 9, 11)).astype("uint8")
        nodata = None
    src = _raster(tmp_path / "coarse.tif", arr, Affine(1000, 0, 479_650, 0, -1000, 3_439_120),
                  nodata)
    grid = make_grid(4549, (480_000, 3_431_000, 489_000, 3_438_000), 30.0)
    ref = _gdal_reference(src, grid, kind)
    ri = RasterInput(str(src), grid, 3, kind)
    assert ri.direct
    for direct in (True, False):  # the hand resampler and the per-block GDAL fallback
        ri.direct = direct
        for b in grid.blocks(97):
            got = ri.read(b, 0)
            want = ref[:, b.row:b.row + b.height, b.col:b.col + b.width]
            if kind == "continuous":
                assert np.array_equal(np.isnan(got), np.isnan(want)), direct
                ok = ~np.isnan(want)
                assert np.abs(got[ok] - want[ok]).max() < 1e-2, direct
            else:
                assert np.array_equal(got, want), direct
    if kind == "continuous":
        assert np.isnan(ref).any()  # the nodata pixel is seen by both routes
    ri.close()


def test_finer_continuous_sources_go_through_gdal(tmp_path: Path) -> None:
    src = _raster(tmp_path / "fine.tif", np.ones((50, 50), "float32"),
                  Affine(10, 0, 480_000, 0, -10, 3_430_500))
    grid = make_grid(4549, (480_000, 3_430_000, 480_500, 3_430_500), 30.0)
    assert not RasterInput(str(src), grid, 1).direct
    assert RasterInput(str(src), grid, 1, "classes").direct


# ------------------------------------------------------------------ block runner
def test_run_blocks_in_order_with_progress_and_cancel() -> None:
    grid = make_grid(4549, (0, 0, 300, 300), 30.0)
    blocks = grid.blocks(4)
    seen, fracs = [], []
    run_blocks(blocks, lambda b: b.index * 2, lambda b, r: seen.append((b.index, r)),
               workers=2, task=Task(lambda f, m: fracs.append(f)))
    assert seen == [(b.index, b.index * 2) for b in blocks]
    assert fracs[-1] == 1.0 and fracs == sorted(fracs)
    token = CancelToken()
    done = []

    def consume(b: Block, r: int) -> None:
        done.append(b.index)
        if b.index == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        run_blocks(blocks, lambda b: b.index, consume, workers=2, task=Task(None, token))
    assert done == [0, 1, 2]


def test_blocks_cover_the_grid_once() -> None:
    grid = make_grid(4549, (0, 0, 1000, 710), 30.0)
    cover = np.zeros((grid.height, grid.width), int)
    for b in grid.blocks(7):
        cover[b.row:b.row + b.height, b.col:b.col + b.width] += 1
    assert (cover == 1).all()
    assert grid.width == 34 and grid.height == 24  # ceil(1000 / 30), ceil(710 / 30)


def test_thi_on_the_climate_grid_matches_thi_per_cell(tmp_path: Path) -> None:
    """The pipeline computes THI on the (coarse) climate grid and interpolates it; that
    differs from THI of interpolated T and RH only by second-order terms."""
    from multiplan.core.assessment.run import _thi_on_climate_grid

    y, x = np.mgrid[0:9, 0:11]
    t = np.stack([4 + 0.8 * x + 0.3 * y, 27 + 0.4 * x - 0.2 * y]).astype("float32")
    rh = np.stack([75 + 0.5 * y, 80 - 0.6 * x]).astype("float32")
    tf = Affine(1000, 0, 479_650, 0, -1000, 3_439_120)
    grid = make_grid(4549, (480_000, 3_431_000, 489_000, 3_438_000), 30.0)
    ti = RasterInput(str(_raster(tmp_path / "t.tif", t, tf)), grid, 1)
    hi = RasterInput(str(_raster(tmp_path / "h.tif", rh, tf)), grid, 1)
    thi_in = _thi_on_climate_grid(ti, hi, tmp_path, grid, 1)
    assert thi_in is not None
    b = grid.blocks(1000)[0]
    per_cell = F.thi(ti.read(b), hi.read(b))
    assert np.nanmax(np.abs(thi_in.read(b) - per_cell)) < 0.05
