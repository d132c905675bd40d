"""The windowed engine: run a function over grid blocks on a few threads, write results.

``run_blocks`` submits blocks to a thread pool (numpy, GDAL reads and rasterisation release
the GIL, so two threads use two cores), keeps at most ``2 × workers`` blocks in flight, and
hands each finished block to ``consume`` *in the main thread, in block order* — that is
where rasters are written, so no GDAL dataset is ever shared between threads. Progress is
reported and cancel checked once per block. Peak memory is a handful of blocks, whatever
the raster size.

``OutputRaster`` writes a tiled, DEFLATE-compressed GeoTIFF block by block; ``finish``
turns it into a Cloud-Optimized GeoTIFF (GDAL's COG driver copies tile by tile) when
asked, and moves it into place.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from multiplan.core.tasks import Task, ensure_task

from .grid import Block, Grid


def default_workers(requested: int) -> int:
    return max(1, min(int(requested), os.cpu_count() or 1))


def run_blocks(blocks: list[Block], work: Callable[[Block], Any],
               consume: Callable[[Block, Any], None], *, workers: int = 2,
               task: Task | None = None, message: str = "") -> None:
    """``work(block)`` on ``workers`` threads; ``consume(block, result)`` in order, here."""
    task = ensure_task(task)
    n = len(blocks)
    if n == 0:
        return
    task.progress(0.0, message)
    if workers <= 1:
        for i, b in enumerate(blocks):
            task.check()
            consume(b, work(b))
            task.progress((i + 1) / n, message)
        return
    pending: deque[tuple[Block, Future]] = deque()
    it: Iterable[Block] = iter(blocks)
    done = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="assess") as ex:
        try:
            for b in it:
                pending.append((b, ex.submit(work, b)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                b, fut = pending.popleft()
                result = fut.result()
                consume(b, result)
                del result
                done += 1
                task.progress(done / n, message)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, ex.submit(work, nxt)))
        except BaseException:
            for _, f in pending:
                f.cancel()
            raise


class OutputRaster:
    """A single-band GeoTIFF on the grid, written block by block (main thread only)."""

    def __init__(self, path: Path, grid: Grid, dtype: str, nodata: float | None, *,
                 compress: bool = True, tags: dict[str, str] | None = None,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None,
                 description: str | None = None) -> None:
        import rasterio

        self.path = Path(path)
        self.grid = grid
        self.dtype = dtype
        self.path.parent.mkdir(parents=True, exist_ok=True)
        profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1,
                   "dtype": dtype, "crs": f"EPSG:{grid.epsg}", "transform": grid.transform,
                   "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "BIGTIFF": "IF_SAFER"}
        if compress:
            profile.update(compress="deflate", predictor=2 if dtype != "float32" else 3,
                           zlevel=6)
        self._ds = rasterio.open(self.path, "w", **profile)
        if tags:
            self._ds.update_tags(**tags)
        if description:
            self._ds.set_band_description(1, description)
        if colormap:
            self._ds.write_colormap(1, colormap)

    def write(self, block: Block, array: np.ndarray) -> None:
        from rasterio.windows import Window

        self._ds.write(np.asarray(array, dtype=self.dtype), 1,
                       window=Window(block.col, block.row, block.width, block.height))

    def close(self) -> None:
        if self._ds is not None and not self._ds.closed:
            self._ds.close()


def to_cog(src: Path, dst: Path, *, resampling: str, threads: int = 2, level: int = 6) -> None:
    """Copy a tiled GeoTIFF to a Cloud-Optimized GeoTIFF (DEFLATE at ``level`` on
    ``threads`` threads, 512 tiles, overviews). GDAL copies tile by tile, so memory stays
    bounded by its block cache."""
    import rasterio.shutil

    rasterio.shutil.copy(str(src), str(dst), driver="COG", COMPRESS="DEFLATE", LEVEL=str(level),
                         BLOCKSIZE="512", OVERVIEW_RESAMPLING=resampling.upper(),
                         RESAMPLING=resampling.upper(), BIGTIFF="IF_SAFER",
                         NUM_THREADS=str(max(1, threads)))


class BlockReader:
    """Per-thread readers of finished single-band rasters on the grid (no resampling)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        import threading

        self.paths = {k: str(v) for k, v in paths.items()}
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def read(self, key: str, block: Block) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        cache = getattr(self._local, "ds", None)
        if cache is None:
            cache = self._local.ds = {}
        ds = cache.get(key)
        if ds is None:
            ds = cache[key] = rasterio.open(self.paths[key])
            with self._lock:
                self._opened.append(ds)
        return ds.read(1, window=Window(block.col, block.row, block.width, block.height))

    def close(self) -> None:
        with self._lock:
            for ds in self._opened:
                ds.close()
            self._opened.clear()
