"""Plan check: where the plan contradicts the assessment, as register entries of their own
type (A1–A4 in the parameter file: planned construction on 不适宜 or 生态极重要 land,
永久基本农田 on land unsuitable for agriculture, planned farmland there).

Counting happens in the raster passes (feature ids rasterised on the assessment grid, cells
counted per feature and class); this module turns the counts into entries, draws each
entry's geometry (the offending cells inside the feature, as polygons) and stores them.

**In the conflict register.** The entries are rows of the conflict register
(``mp_conflicts``, see :mod:`multiplan.core.conflicts`) of source ``AS``: ids
``AS-<type>-<8 hex of the layer name>-<fid>``, types A1–A4, ``layer_a`` / ``fid_a`` /
``code_a`` / ``name_a`` = the plan feature, ``layer_b`` / ``code_b`` / ``name_b`` = the
assessment result and its classes, resolution 待定. :func:`store_findings` replaces them
through :func:`~multiplan.core.conflicts.replace_external_entries` inside the run-record
transaction (and drops the ``mp_assessment_findings`` table earlier versions wrote);
:func:`read_findings` reads them back. :func:`findings_frame` is the single place that
shapes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The register source (id prefix) of the plan-check entries.
SOURCE = "AS"
#: The separate table earlier versions wrote the entries to (dropped on the next run).
FINDINGS_TABLE = "mp_assessment_findings"
MU_M2 = 10_000.0 / 15.0


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


def conflict_id(rule_id: str, layer: str, fid: int) -> str:
    """``AS-<type>-<8 hex of the layer name>-<fid>``: stable across reruns on the same data."""
    return f"{SOURCE}-{rule_id}-{hashlib.sha1(layer.encode('utf-8')).hexdigest()[:8]}-{int(fid)}"


def build_findings(rule: dict[str, Any], fs: FeatureSet, bad_cells: np.ndarray,
                   all_cells: np.ndarray, cell_area: float) -> list[dict[str, Any]]:
    """One entry per feature whose cells in the rule's classes reach ``min_area_m2``
    (geometry and township are added later, see :func:`findings_frame`)."""
    out = []
    area = bad_cells * cell_area
    hit = fs.rules[rule["id"]] & (bad_cells > 0) & (area >= float(rule.get("min_area_m2", 0)))
    for i in np.flatnonzero(hit):
        out.append({
            "conflict_id": conflict_id(rule["id"], fs.layer, fs.fids[i]),
            "conflict_type": rule["id"], "type_name": rule.get("zh"),
            "type_name_en": rule.get("en"), "severity": rule.get("severity"),
            "layer_a": fs.layer, "fid_a": int(fs.fids[i]),
            "code_a": None if fs.codes[i] is None else str(fs.codes[i]),
            "name_a": None if fs.names[i] is None else str(fs.names[i]),
            "result": rule["result"], "classes": list(rule["classes"]),
            "area_m2": float(area[i]), "area_ha": float(area[i] / 1e4),
            "area_mu": float(area[i] / MU_M2),
            "share": float(bad_cells[i] / all_cells[i]) if all_cells[i] else None,
            "_index": int(i),
        })
    return out


def findings_frame(findings: list[dict[str, Any]], geoms: list[Any], epsg: int,
                   township_names: list[str], township_geoms: np.ndarray, run_id: str,
                   rule_version: str, result_layers: dict[str, str],
                   class_names: dict[str, dict[int, str]], class_codes: dict[str, list[int]]):
    """The entries as a GeoDataFrame in the register's column layout."""
    import geopandas as gpd
    import shapely

    g = np.asarray(geoms, dtype=object) if findings else np.empty(0, dtype=object)
    town: list[Any] = [None] * len(findings)
    if len(findings) and len(township_geoms):
        rep = shapely.point_on_surface(g)
        pi, ti = shapely.STRtree(township_geoms).query(rep, predicate="within")
        for p, t in zip(pi.tolist(), ti.tolist(), strict=True):
            if town[p] is None:
                town[p] = township_names[t]
    rows = []
    for f, tw in zip(findings, town, strict=True):
        codes = class_codes[f["conflict_type"]]
        rows.append({
            "conflict_id": f["conflict_id"], "conflict_type": f["conflict_type"],
            "type_name": f["type_name"], "type_name_en": f["type_name_en"],
            "severity": f["severity"], "layer_a": f["layer_a"], "fid_a": f["fid_a"],
            "code_a": f["code_a"], "name_a": f["name_a"],
            "class_a": _class_l1(f["code_a"]) or f["name_a"],
            "layer_b": result_layers[f["result"]],
            "code_b": ",".join(str(c) for c in codes),
            "name_b": "、".join(class_names[f["result"]].get(c, str(c)) for c in codes),
            "class_b": (result_layers[f["result"]].removeprefix("双评价_") + "·"
                        + "、".join(class_names[f["result"]].get(c, str(c)) for c in codes)),
            "rule_id": f["conflict_type"], "resolution": "待定",
            "area_m2": f["area_m2"], "area_ha": f["area_ha"], "area_mu": f["area_mu"],
            "share": f["share"], "township": tw, "run_id": run_id, "rule_version": rule_version,
        })
    cols = ["conflict_id", "conflict_type", "type_name", "type_name_en", "severity", "layer_a",
            "fid_a", "code_a", "name_a", "class_a", "layer_b", "code_b", "name_b", "class_b",
            "rule_id", "resolution", "area_m2", "area_ha", "area_mu", "share", "township",
            "run_id", "rule_version"]
    import pandas as pd

    df = pd.DataFrame(rows, columns=cols)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(g, crs=f"EPSG:{epsg}"))


def _class_l1(code: Any) -> str | None:
    """Level-1 class name of a 2023 code (the register's ``class_a``)."""
    from multiplan.core.classification import load_scheme

    if not code:
        return None
    scheme = load_scheme("ydyh2023")
    l1 = scheme.level1(code)
    return scheme.name(l1) if l1 else None


def rule_descriptions(rules: list[dict[str, Any]], basis: str) -> list[dict[str, Any]]:
    """The plan-check rules as rows of the register's rule table (``mp_conflict_rules``)."""
    return [{"rule_id": r["id"], "conflict_type": r["id"], "type_name": r.get("zh"),
             "type_name_en": r.get("en"), "severity": r.get("severity"), "resolution": "待定",
             "message_zh": r.get("zh"), "message_en": r.get("en"), "basis": basis}
            for r in rules]


def store_findings(conn: Any, frame: Any, *, run_id: str, rule_version: str,
                   rules: list[dict[str, Any]]) -> dict[str, int]:
    """Replace the ``AS`` rows of the conflict register by ``frame`` (inside the caller's
    transaction; the register must exist, see :func:`multiplan.core.conflicts.
    ensure_register`) and drop the legacy ``mp_assessment_findings`` table."""
    from multiplan.core import conflicts as cf
    from multiplan.core.project import drop_gpkg_table, table_exists

    if table_exists(conn, FINDINGS_TABLE):
        drop_gpkg_table(conn, FINDINGS_TABLE)
    return cf.replace_external_entries(
        conn, SOURCE, frame, rule_version=rule_version, run_id=run_id,
        rules=rule_descriptions(rules, f"双评价 {rule_version}"))


def read_findings(project: Any):
    """The latest run's entries (register rows of source ``AS``) as a GeoDataFrame, sorted
    by id (empty when none were recorded)."""
    from multiplan.core import conflicts as cf

    return cf.read_register(project, source=SOURCE)


def list_findings(project: Any) -> list[dict[str, Any]]:
    """The latest run's entries as dicts (no geometry)."""
    df = read_findings(project)
    return [{k: (None if (isinstance(v, float) and np.isnan(v)) else v) for k, v in r.items()}
            for r in df.drop(columns=df.geometry.name).to_dict(orient="records")]
