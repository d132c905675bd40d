"""Write tests/data/projects/schema_v2/ — a project as schema version 2 left it.

    .venv/bin/python tests/data/make_v2_project.py [--out DIR]

Schema version 2 (before the audit hash chain of schema 3):

* everything of the v1 fixture (:mod:`make_v1_project`), with ``mp_layers`` given the
  columns scheme_version, name_field, raster_path, synthetic (as ``_migrate_1_to_2`` does);
* ``mp_audit`` *without* seq / prev_hash / hash columns and no ``mp_audit_head`` table,
  holding four entries (project creation, a layer import, a settings change with Chinese
  text, an unlock with a reason) written as v2 wrote them (``json.dumps`` with spaces);
* ``mp_schema`` version 2.

This file deliberately does not import multiplan: it is the old layout, frozen here.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_v1_project as v1

V2_NEW_COLUMNS = [
    ("scheme_version", "TEXT"),
    ("name_field", "TEXT"),
    ("raster_path", "TEXT"),
    ("synthetic", "INTEGER NOT NULL DEFAULT 0"),
]

#: (time, actor, action, target, detail) as schema 2 stored them
AUDIT = [
    ("2024-01-01T00:00:00+00:00", None, "project.create", "长兴县", {"crs_epsg": 4549}),
    ("2024-01-02T09:30:00+00:00", None, "layer.add", "parcels",
     {"features": 3, "source": "D:/规划数据/长兴县/三调/DLTB.shp", "sha256": "5f2b" + "0" * 60}),
    ("2024-01-03T10:00:00+00:00", None, "settings.update", None,
     {"sliver_max_area_m2": 500.0, "note": "按省厅意见调整"}),
    ("2024-01-04T11:15:00+00:00", "wang", "layer.unlock", "parcels",
     {"reason": "落实省厅核查意见"}),
]


def make(folder: Path) -> Path:
    gpkg = v1.make(folder)
    conn = sqlite3.connect(gpkg)
    try:
        with conn:
            for name, decl in V2_NEW_COLUMNS:
                conn.execute(f'ALTER TABLE "mp_layers" ADD COLUMN "{name}" {decl}')
            conn.execute('CREATE TABLE "mp_audit" ('
                         '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                         '"time" TEXT NOT NULL, "actor" TEXT, "action" TEXT NOT NULL, '
                         '"target" TEXT, "detail" TEXT)')
            conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, "
                         "description, last_change) VALUES (?, 'attributes', ?, ?, ?)",
                         ("mp_audit", "mp_audit", "multiplan audit log", v1.FIXED_DATE))
            conn.executemany('INSERT INTO "mp_audit" ("time", "actor", "action", "target", '
                             '"detail") VALUES (?, ?, ?, ?, ?)',
                             [(t, a, act, tg, json.dumps(d, ensure_ascii=False))
                              for t, a, act, tg, d in AUDIT])
            conn.execute('UPDATE "mp_schema" SET "version" = 2')
        conn.execute("VACUUM")
    finally:
        conn.close()
    return gpkg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "projects" / "schema_v2")
    args = parser.parse_args(argv)
    gpkg = make(args.out)
    print(f"{gpkg}: {gpkg.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
