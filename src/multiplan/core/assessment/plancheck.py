"""Plan check: where the plan contradicts the assessment, as register entries of their own
type (A1–A4 in the parameter file: planned construction on 不适宜 or 生态极重要 land,
永久基本农田 on land unsuitable for agriculture, planned farmland there).

Counting happens in the raster passes (feature ids rasterised on the assessment grid, cells
counted per feature and class); this module turns the counts into findings and stores them.

**Seam to the conflict register.** The conflict register (``core/conflicts.py``) had not
landed when this was written, so :func:`record_findings` writes the findings to this
module's own attribute table ``mp_assessment_findings`` (one row per finding, tagged with
the run id; earlier rows are replaced by each run). When the register can take entries of
a foreign type, :func:`record_findings` is the single place to switch over: the finding
dicts already carry ``type`` / ``severity`` / ``layer`` / ``fid`` / ``area_m2`` and a point.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FINDINGS_TABLE = "mp_assessment_findings"

_COLUMNS = [
    ("run_id", "TEXT NOT NULL"),
    ("type", "TEXT NOT NULL"),
    ("type_zh", "TEXT"),
    ("type_en", "TEXT"),
    ("severity", "TEXT"),
    ("layer", "TEXT NOT NULL"),
    ("feature_fid", "INTEGER NOT NULL"),
    ("code", "TEXT"),
    ("name", "TEXT"),
    ("result", "TEXT NOT NULL"),
    ("classes", "TEXT"),
    ("area_m2", "REAL NOT NULL"),
    ("share", "REAL"),
    ("x", "REAL"),
    ("y", "REAL"),
    ("status", "TEXT NOT NULL DEFAULT '待处理'"),
]


@dataclass
class FeatureSet:
    """The features of one plan layer that at least one rule looks at."""

    layer: str
    fids: np.ndarray  # GeoPackage fids, index i ↔ raster value i + 1
    codes: list[Any]
    names: list[Any]
    geoms: np.ndarray
    rules: dict[str, np.ndarray] = field(default_factory=dict)  # rule id → bool per feature


def rule_roles(rule: dict[str, Any], pc: dict[str, Any]) -> set[str]:
    roles = rule.get("roles", "plan")
    return set(pc.get("plan_roles", [])) if roles == "plan" else set(roles)


def select_features(rule: dict[str, Any], codes: list[Any]) -> np.ndarray:
    """Which features a rule looks at: all, construction land (三大类, 2023 codes) or
    codes under given prefixes."""
    from multiplan.core.classification import is_construction

    feats = rule["features"]
    if feats == "all":
        return np.ones(len(codes), dtype=bool)
    keys = ["" if c is None else str(c) for c in codes]
    uniq = sorted(set(keys))
    if feats == "construction":
        hit = {k: bool(k) and is_construction(k) for k in uniq}
    else:
        prefixes = tuple(str(p) for p in feats["code_prefixes"])
        hit = {k: bool(k) and k.startswith(prefixes) for k in uniq}
    return np.array([hit[k] for k in keys], dtype=bool)


def build_findings(rule: dict[str, Any], fs: FeatureSet, bad_cells: np.ndarray,
                   all_cells: np.ndarray, sum_x: np.ndarray, sum_y: np.ndarray,
                   cell_area: float) -> list[dict[str, Any]]:
    """One finding per feature whose cells in the rule's classes reach ``min_area_m2``."""
    out = []
    area = bad_cells * cell_area
    hit = fs.rules[rule["id"]] & (bad_cells > 0) & (area >= float(rule.get("min_area_m2", 0)))
    for i in np.flatnonzero(hit):
        out.append({
            "type": rule["id"], "type_zh": rule.get("zh"), "type_en": rule.get("en"),
            "severity": rule.get("severity"), "layer": fs.layer, "fid": int(fs.fids[i]),
            "code": None if fs.codes[i] is None else str(fs.codes[i]),
            "name": None if fs.names[i] is None else str(fs.names[i]),
            "result": rule["result"], "classes": list(rule["classes"]),
            "area_m2": float(area[i]),
            "share": float(bad_cells[i] / all_cells[i]) if all_cells[i] else None,
            "x": float(sum_x[i] / bad_cells[i]), "y": float(sum_y[i] / bad_cells[i]),
        })
    return out


def ensure_table(conn: sqlite3.Connection) -> None:
    cols = ", ".join(f'"{n}" {t}' for n, t in _COLUMNS)
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{FINDINGS_TABLE}" ('
                 f'"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
    conn.execute("INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
                 "description) VALUES (?, 'attributes', ?, ?)",
                 (FINDINGS_TABLE, FINDINGS_TABLE,
                  "multiplan 双评价 plan-check findings (register entries of type A*)"))


def record_findings(conn: sqlite3.Connection, run_id: str,
                    findings: list[dict[str, Any]]) -> None:
    """Store a run's plan-check findings (inside the caller's transaction).

    The seam to the conflict register: see the module docstring.
    """
    ensure_table(conn)
    conn.execute(f'DELETE FROM "{FINDINGS_TABLE}"')
    rows = []
    for f in findings:
        rows.append((run_id, f["type"], f.get("type_zh"), f.get("type_en"), f.get("severity"),
                     f["layer"], f["fid"], f.get("code"), f.get("name"), f["result"],
                     json.dumps(f.get("classes"), ensure_ascii=False), f["area_m2"],
                     f.get("share"), f.get("x"), f.get("y")))
    conn.executemany(f'INSERT INTO "{FINDINGS_TABLE}" ("run_id", "type", "type_zh", '
                     '"type_en", "severity", "layer", "feature_fid", "code", "name", "result", '
                     '"classes", "area_m2", "share", "x", "y") VALUES '
                     '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', rows)


def list_findings(project: Any) -> list[dict[str, Any]]:
    """The findings of the latest run (empty when none were recorded)."""
    with contextlib.closing(project.connect()) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                            (FINDINGS_TABLE,)).fetchone():
            return []
        rows = conn.execute(f'SELECT * FROM "{FINDINGS_TABLE}" ORDER BY "fid"').fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["classes"] = json.loads(d["classes"]) if d.get("classes") else []
        out.append(d)
    return out
