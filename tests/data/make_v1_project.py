"""Write tests/data/projects/schema_v1/ — a project as multiplan's first prototype left it.

    .venv/bin/python tests/data/make_v1_project.py [--out DIR]

Schema version 1 (see ``_migrate_1_to_2`` in src/multiplan/core/project.py):

* ``mp_schema`` with version 1, written by GDAL as the first table (GeoPackage 1.3);
* ``mp_settings`` as today;
* ``mp_layers`` *without* the columns scheme_version, name_field, raster_path, synthetic;
* no ``mp_audit`` table;
* one registered layer, ``parcels`` (3 MultiPolygons in EPSG:4549, GBK-sourced names,
  classified with GB/T 21010-2017 codes).

This file deliberately does not import multiplan: it is the old layout, frozen here.
Timestamps, the project id and the SQLite page layout are pinned, so the output is
byte-identical from run to run with the same GDAL.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from shapely.geometry import MultiPolygon, box

HERE = Path(__file__).resolve().parent
FIXED_DATE = "2024-01-01T00:00:00.000Z"

V1_LAYER_COLUMNS = [
    ("name", "TEXT NOT NULL UNIQUE"),
    ("kind", "TEXT NOT NULL"),
    ("level", "TEXT NOT NULL"),
    ("role", "TEXT NOT NULL"),
    ("title", "TEXT"),
    ("geometry_type", "TEXT"),
    ("feature_count", "INTEGER"),
    ("source_path", "TEXT"),
    ("source_sha256", "TEXT"),
    ("source_crs", "TEXT"),
    ("crs_assumed", "INTEGER NOT NULL DEFAULT 0"),
    ("encoding", "TEXT"),
    ("scheme", "TEXT"),
    ("code_field", "TEXT"),
    ("imported_at", "TEXT"),
    ("report", "TEXT"),
]

SETTINGS = {
    "area_method": "planar",
    "sliver_max_area_m2": 1000.0,
    "sliver_max_mean_width_m": 5.0,
    "min_fragment_m2": {"construction": 200.0, "agricultural": 400.0, "other": 600.0},
    "precision_grid_m": 0.001,
    "assessment_cell_size_m": 30.0,
    "project_id": "0123456789abcdef0123456789abcdef",
    "county": "长兴县",
    "admin_code": "330522",
    "crs_epsg": 4549,
    "crs_convention": "unprefixed",
    "central_meridian": 120,
    "created_at": "2024-01-01T00:00:00+00:00",
    "multiplan_version": "0.0.1",
}

#: The registered layer, as the prototype's importer recorded it.
LAYER = {
    "name": "parcels",
    "kind": "vector",
    "level": "county",
    "role": "current_use",
    "title": "现状地类（三调）",
    "geometry_type": "MultiPolygon",
    "feature_count": 3,
    "source_path": "D:/规划数据/长兴县/三调/DLTB.shp",
    "source_sha256": "5f2b" + "0" * 60,
    "source_crs": "EPSG:4549 CGCS2000 / 3-degree Gauss-Kruger CM 120E",
    "crs_assumed": 0,
    "encoding": "GBK",
    "scheme": "gbt21010_2017",
    "code_field": "DLBM",
    "imported_at": "2024-01-01T00:00:00+00:00",
}
REPORT = {"name": "parcels", "source_features": 3, "feature_count": 3, "repaired": [],
          "encoding": "GBK", "encoding_source": "detected"}

X0, Y0 = 490_000.0, 3_430_000.0


def parcels() -> gpd.GeoDataFrame:
    geoms = [MultiPolygon([box(X0 + 100 * k, Y0, X0 + 100 * (k + 1), Y0 + 100)])
             for k in range(3)]
    return gpd.GeoDataFrame({"DLBM": ["0101", "0201", "0301"],
                             "DLMC": ["水田", "果园", "乔木林地"],
                             "QSDWMC": ["张家村", "李家村", "王家村"]},
                            geometry=geoms, crs=4549)


def make(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    gpkg = folder / "plan.gpkg"
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_DATE})
    pyogrio.write_dataframe(pd.DataFrame({"version": [1]}), gpkg, layer="mp_schema",
                            driver="GPKG", dataset_options={"VERSION": "1.3"})
    pyogrio.write_dataframe(parcels(), gpkg, layer="parcels", driver="GPKG",
                            geometry_type="MultiPolygon",
                            layer_options={"SPATIAL_INDEX": "YES", "FID": "fid"})
    conn = sqlite3.connect(gpkg)
    try:
        with conn:
            conn.execute('CREATE TABLE "mp_settings" ('
                         '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                         '"key" TEXT NOT NULL UNIQUE, "value" TEXT NOT NULL)')
            cols = ", ".join(f'"{n}" {t}' for n, t in V1_LAYER_COLUMNS)
            conn.execute(f'CREATE TABLE "mp_layers" ('
                         f'"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
            for table, desc in (("mp_settings", "multiplan project settings"),
                                ("mp_layers", "multiplan layer registry")):
                conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, "
                             "description, last_change) VALUES (?, 'attributes', ?, ?, ?)",
                             (table, table, desc, FIXED_DATE))
            conn.executemany('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?)',
                             [(k, json.dumps(v, ensure_ascii=False))
                              for k, v in SETTINGS.items()])
            row = dict(LAYER, report=json.dumps(REPORT, ensure_ascii=False))
            conn.execute(f'INSERT INTO "mp_layers" ({", ".join(row)}) VALUES '
                         f'({", ".join("?" for _ in row)})', list(row.values()))
            conn.execute("UPDATE gpkg_contents SET last_change = ?", (FIXED_DATE,))
        conn.execute("PRAGMA page_size = 1024")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return gpkg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "projects" / "schema_v1")
    args = parser.parse_args(argv)
    gpkg = make(args.out)
    print(f"{gpkg}: {gpkg.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
