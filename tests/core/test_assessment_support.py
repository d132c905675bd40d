"""A small synthetic project for the assessment tests (≈ 6 × 4.5 km, CGCS2000 GK CM 120°E).

Built once per test module and copied for tests that change it. Everything is synthetic
and labelled so; the shapes are chosen so that hand checks are possible: a tilted plane
DEM in the west (known slope), a steep hill in the east, two townships split at x = X0 +
3000, two water-modulus zones with values on either side of a break, a silt-rich soil unit,
a geological-hazard zone, a construction parcel on the steep hill and a basic-farmland
parcel there too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine

EPSG = 4549
X0, Y0 = 480_000.0, 3_430_000.0  # south-west corner of the county
W, H = 6_000.0, 4_500.0


def county_polygon() -> shapely.Polygon:
    return shapely.Polygon([(X0, Y0), (X0 + W, Y0), (X0 + W, Y0 + H), (X0 + 1500, Y0 + H),
                            (X0, Y0 + 3000)])


def dem_array(res: float = 30.0, margin: float = 900.0) -> tuple[np.ndarray, Affine]:
    """A 5 % plane rising to the north in the west, a Gaussian hill (≈ 300 m) in the east."""
    nx = int((W + 2 * margin) / res)
    ny = int((H + 2 * margin) / res)
    t = Affine(res, 0, X0 - margin, 0, -res, Y0 + H + margin)
    xs = t.c + (np.arange(nx) + 0.5) * res
    ys = t.f - (np.arange(ny) + 0.5) * res
    x, y = np.meshgrid(xs, ys)
    z = 20.0 + 0.05 * (y - Y0)
    hill = 300.0 * np.exp(-(((x - (X0 + 4800)) / 500.0) ** 2 + ((y - (Y0 + 2200)) / 500.0) ** 2))
    return (z + hill).astype("float32"), t


def write_tif(path: Path, arr: np.ndarray, transform: Affine, nodata=None) -> Path:
    arr = arr if arr.ndim == 3 else arr[None]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                       count=arr.shape[0], dtype=arr.dtype, crs=f"EPSG:{EPSG}",
                       transform=transform, nodata=nodata) as dst:
        dst.write(arr)
    return path


def gdf(rows: list[dict], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=EPSG)


def build_small_project(folder: Path, *, with_factors: bool = True):
    from multiplan.core.io import import_layer, import_raster
    from multiplan.core.project import Project

    src = folder.parent / (folder.name + "_src")
    src.mkdir(parents=True, exist_ok=True)
    project = Project.create(folder, county="测试县", crs=EPSG)
    c = county_polygon()
    gdf([{"name": "测试县"}], [c]).to_file(src / "county.gpkg")
    import_layer(project, src / "county.gpkg", name="行政区", role="admin_boundary")
    west = shapely.box(X0 - 10, Y0 - 10, X0 + 3000, Y0 + H + 10).intersection(c)
    east = shapely.box(X0 + 3000, Y0 - 10, X0 + W + 10, Y0 + H + 10).intersection(c)
    gdf([{"XZQMC": "西镇"}, {"XZQMC": "东镇"}], [west, east]).to_file(src / "tw.gpkg")
    import_layer(project, src / "tw.gpkg", name="乡镇界", role="township", name_field="XZQMC")
    z, t = dem_array()
    write_tif(src / "dem.tif", z, t)
    import_raster(project, src / "dem.tif", name="DEM", role="assessment_factor",
                  cell_size=30.0, synthetic=True)
    if not with_factors:
        return project
    # water modulus: 260 000 (grade 1) in the west, 100 000 (grade 3) in the east
    gdf([{"modulus_m3_km2": 260000.0}, {"modulus_m3_km2": 100000.0}],
        [shapely.box(X0 - 500, Y0 - 500, X0 + 3000, Y0 + H + 500),
         shapely.box(X0 + 3000, Y0 - 500, X0 + W + 500, Y0 + H + 500)]).to_file(
        src / "modulus.gpkg")
    import_layer(project, src / "modulus.gpkg", name="用水总量控制指标模数",
                 role="assessment_factor", synthetic=True)
    # silt: 85 % in a south-west square (→ agriculture land grade 5 there)
    gdf([{"silt_pct": 85.0}, {"silt_pct": 20.0}],
        [shapely.box(X0, Y0, X0 + 900, Y0 + 900),
         shapely.box(X0 + 900, Y0, X0 + W, Y0 + H)]).to_file(src / "silt.gpkg")
    import_layer(project, src / "silt.gpkg", name="土壤粉砂含量", role="assessment_factor",
                 synthetic=True)
    # geological hazard zone (code 1 = most dangerous) on the hill
    gdf([{"level": 1}], [shapely.Point(X0 + 4800, Y0 + 2200).buffer(700)]).to_file(
        src / "geo.gpkg")
    import_layer(project, src / "geo.gpkg", name="地质灾害危险性", role="assessment_factor",
                 synthetic=True)
    # precipitation 1 km grid ~1300 mm, monthly temperature / humidity 1 km grids
    ct = Affine(1000.0, 0, X0 - 2000, 0, -1000.0, Y0 + H + 2000)
    ny, nx = int((H + 4000) / 1000) + 1, int((W + 4000) / 1000) + 1
    write_tif(src / "pr.tif", np.full((ny, nx), 1300.0, "float32"), ct)
    import_raster(project, src / "pr.tif", name="多年平均降水量", role="assessment_factor",
                  synthetic=True)
    temps = np.array([4, 6, 10, 16, 21, 25, 29, 28, 24, 18, 12, 6], "float32")
    write_tif(src / "t.tif", np.broadcast_to(temps[:, None, None], (12, ny, nx)).copy(), ct)
    write_tif(src / "rh.tif", np.full((12, ny, nx), 78.0, "float32"), ct)
    import_raster(project, src / "t.tif", name="月平均气温", role="assessment_factor",
                  synthetic=True)
    import_raster(project, src / "rh.tif", name="月平均相对湿度", role="assessment_factor",
                  synthetic=True)
    # ecology: water conservation grade 1 on the hill top (r 600 m), 3 elsewhere
    gdf([{"grade": 3}, {"grade": 1}],
        [shapely.box(X0 - 500, Y0 - 500, X0 + W + 500, Y0 + H + 500),
         shapely.Point(X0 + 4800, Y0 + 2200).buffer(600)]).to_file(src / "eco.gpkg")
    import_layer(project, src / "eco.gpkg", name="水源涵养重要性", role="assessment_factor",
                 synthetic=True)
    # plan: construction parcel on the hill flank, farmland in the west; basic farmland
    plan = gdf([{"DLBM": "0701", "DLMC": "城镇住宅用地"}, {"DLBM": "0101", "DLMC": "水田"},
                {"DLBM": "0101", "DLMC": "水田"}],
               [shapely.box(X0 + 4300, Y0 + 1700, X0 + 5300, Y0 + 2700),
                shapely.box(X0 + 300, Y0 + 300, X0 + 800, Y0 + 800),
                shapely.box(X0 + 1200, Y0 + 1200, X0 + 2200, Y0 + 2200)])
    plan.to_file(src / "plan.gpkg")
    import_layer(project, src / "plan.gpkg", name="国土空间规划", role="spatial_plan",
                 scheme="ydyh2023", code_field="DLBM", name_field="DLMC", synthetic=True)
    gdf([{"DLBM": "0101"}], [shapely.box(X0 + 100, Y0 + 100, X0 + 700, Y0 + 700)]).to_file(
        src / "bf.gpkg")
    import_layer(project, src / "bf.gpkg", name="永久基本农田", role="basic_farmland",
                 scheme="ydyh2023", code_field="DLBM", synthetic=True)
    gdf([{"GHFQMC": "农田保护区"}, {"GHFQMC": "城镇发展区"}],
        [shapely.box(X0, Y0, X0 + 3000, Y0 + H), shapely.box(X0 + 3000, Y0, X0 + W, Y0 + H)]
        ).to_file(src / "zones.gpkg")
    import_layer(project, src / "zones.gpkg", name="规划分区", role="planning_zone",
                 name_field="GHFQMC", synthetic=True)
    gdf([{"DLBM": "0101"}, {"DLBM": "0701"}, {"DLBM": "0703"}],
        [shapely.box(X0 + 200, Y0 + 1000, X0 + 1200, Y0 + 2000),
         shapely.box(X0 + 3500, Y0 + 200, X0 + 4000, Y0 + 700),
         shapely.box(X0 + 1000, Y0 + 200, X0 + 1500, Y0 + 700)]).to_file(src / "cur.gpkg")
    import_layer(project, src / "cur.gpkg", name="现状用地", role="current_use",
                 scheme="ydyh2023", code_field="DLBM", synthetic=True)
    shutil.rmtree(src, ignore_errors=True)
    return project


_BUILT: dict[str, Path] = {}


def shared_small_project(tmp_path_factory) -> Path:
    """The small project, built once per test session (callers copy it before changing it)."""
    if "small" not in _BUILT or not (_BUILT["small"] / "plan.gpkg").is_file():
        folder = tmp_path_factory.mktemp("assess_small") / "p"
        build_small_project(folder)
        _BUILT["small"] = folder
    return _BUILT["small"]


def copy_project(src: Path, dst: Path):
    from multiplan.core.project import Project

    shutil.copytree(src, dst)
    return Project.open(dst)


def test_support_builds_a_project(tmp_path: Path) -> None:
    p = build_small_project(tmp_path / "p", with_factors=False)
    assert {r.name for r in p.layers()} == {"行政区", "乡镇界", "DEM"}
