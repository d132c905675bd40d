"""Which project layers feed the assessment, and their content fingerprints.

Factor inputs are found by layer name (the ``inputs`` section of the parameters lists the
candidate names; a project can name its own through its overrides, e.g.
``{"inputs": {"dem": {"layers": ["my DEM"]}}}``). The county boundary, townships, plan
layers, plan zones, control lines and the current-use layer are found by role.

Fingerprints: a raster layer → SHA-256 of the stored file under ``rasters/``; a vector
layer → SHA-256 of its content (its table's rows in fid order: geometry blobs and attribute
values), not of the whole GeoPackage, so an unrelated edit elsewhere in ``plan.gpkg`` does
not make the assessment stale.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiplan.core.errors import ProjectError
from multiplan.core.layers import LayerRecord

#: Input keys whose values are graded codes (nearest neighbour, 0 = none).
CLASS_INPUTS = ("geohazard", "storm_surge", "air_capacity", "water_env_capacity",
                "soil_environment", "salinisation", "meteo_hazard", "light_heat",
                "eco_service", "eco_fragility")
FACTOR_KEYS = ("dem", "precipitation", "evaporation", "water_modulus", "water_total_modulus",
               "soil_silt", "temperature", "humidity") + CLASS_INPUTS


@dataclass
class InputRef:
    key: str
    records: list[LayerRecord]
    field: str | None = None
    kind: str = "continuous"

    @property
    def synthetic(self) -> bool:
        return any(r.synthetic for r in self.records)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.records]


@dataclass
class Resolved:
    county: LayerRecord
    townships: LayerRecord | None
    township_field: str | None
    factors: dict[str, InputRef]
    seat: tuple[float, float] | None
    seat_source: str | None
    plan_layers: list[LayerRecord] = field(default_factory=list)
    zone_layers: list[LayerRecord] = field(default_factory=list)
    exclude_layers: list[LayerRecord] = field(default_factory=list)
    current_use: LayerRecord | None = None
    missing: list[str] = field(default_factory=list)

    def all_records(self) -> list[LayerRecord]:
        seen: dict[str, LayerRecord] = {}
        recs = [self.county] + ([self.townships] if self.townships else [])
        for ref in self.factors.values():
            recs += ref.records
        recs += self.plan_layers + self.zone_layers + self.exclude_layers
        if self.current_use:
            recs.append(self.current_use)
        for r in recs:
            seen.setdefault(r.name, r)
        return list(seen.values())


def _missing(key: str, zh: str, en: str, project: Any) -> ProjectError:
    return ProjectError(f"assessment.input_missing.{key}", zh, en, path=project.gpkg)


def _vector_fields(project: Any, rec: LayerRecord) -> list[str]:
    import pyogrio

    info = pyogrio.read_info(project.gpkg, layer=rec.name)
    return [str(f) for f in info["fields"]]


def resolve_inputs(project: Any, params: dict[str, Any]) -> Resolved:
    """Find every layer the assessment reads; refuse with a clear message when a required
    one is missing."""
    specs = params["inputs"]
    layers = [r for r in project.layers() if r.role != "assessment_result"]
    by_name = {r.name: r for r in layers}

    counties = [r for r in layers if r.role == specs["county"].get("role", "admin_boundary")
                and r.kind == "vector"]
    if not counties:
        raise _missing("county", "缺少县域范围（用途为“行政区”的图层），无法确定评价范围",
                       "no county boundary (a layer of role admin_boundary): the assessment "
                       "needs it to set its extent", project)
    county = min(counties, key=lambda r: (r.level != "county", r.name))

    tws = [r for r in layers if r.role == specs["townships"].get("role", "township")
           and r.kind == "vector"]
    township = tws[0] if tws else None
    tw_field = None
    if township is not None:
        fields = _vector_fields(project, township)
        for cand in [township.name_field] + list(specs["townships"].get("name_fields", [])):
            if cand and cand in fields:
                tw_field = cand
                break

    factors: dict[str, InputRef] = {}
    missing: list[str] = []
    for key in FACTOR_KEYS:
        spec = specs.get(key)
        if not spec:
            continue
        names = spec.get("layers") or []
        found = [by_name[n] for n in names if n in by_name]
        if not found:
            if spec.get("required"):
                raise _missing(key, f"缺少评价因子“{spec.get('zh', key)}”（图层名之一："
                               f"{'、'.join(names)}）",
                               f"the factor {key} is missing (expected a layer named one of: "
                               f"{', '.join(names)})", project)
            missing.append(key)
            continue
        if not spec.get("multiple"):
            found = found[:1]
        fld = spec.get("field")
        for rec in found:
            if rec.kind == "vector":
                fields = _vector_fields(project, rec)
                if not fld or fld not in fields:
                    raise ProjectError(
                        f"assessment.input_field.{key}",
                        f"矢量因子图层 {rec.name} 缺少字段 {fld}",
                        f"the vector factor layer {rec.name} lacks the field {fld}",
                        path=project.gpkg)
        kind = "classes" if key in CLASS_INPUTS else spec.get("kind", "continuous")
        factors[key] = InputRef(key, found, fld, kind)

    seat_spec = specs.get("county_seat") or {}
    seat, seat_source = None, None
    if seat_spec.get("xy"):
        seat = (float(seat_spec["xy"][0]), float(seat_spec["xy"][1]))
        seat_source = "parameter inputs.county_seat.xy"
    else:
        for n in seat_spec.get("layers") or []:
            if n in by_name and by_name[n].kind == "vector":
                g = project.read_layer(n).geometry
                if len(g):
                    p = g.iloc[0].representative_point()
                    seat, seat_source = (p.x, p.y), f"layer {n}"
                    factors["county_seat"] = InputRef("county_seat", [by_name[n]])
                    break
    if seat is None:
        missing.append("county_seat")

    pc = params["plan_check"]
    plan_roles = set(pc.get("plan_roles", []))
    for rule in pc.get("rules", []):
        if isinstance(rule.get("roles"), list):
            plan_roles |= set(rule["roles"])
    plan_layers = [r for r in layers if r.role in plan_roles and r.kind == "vector"]
    zone_layers = [r for r in layers if r.role in set(pc.get("zone_roles", []))
                   and r.kind == "vector"]
    excl_roles = set(params["capacity"].get("urban_exclude_roles", []))
    exclude_layers = [r for r in layers if r.role in excl_roles and r.kind == "vector"]
    current = [r for r in layers if r.role == "current_use" and r.kind == "vector"]
    return Resolved(county=county, townships=township, township_field=tw_field,
                    factors=factors, seat=seat, seat_source=seat_source,
                    plan_layers=plan_layers, zone_layers=zone_layers,
                    exclude_layers=exclude_layers, current_use=current[0] if current else None,
                    missing=missing)


# ---------------------------------------------------------------------- fingerprints
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


GEOMETRY_TYPES = {"GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
                  "MULTIPOLYGON", "GEOMETRYCOLLECTION", "BLOB"}


def vector_content_sha256(gpkg: Path, layer: str) -> str:
    """SHA-256 over a layer's columns, then every row in fid order: the fid, the geometry
    (the GeoPackage blob: a small header and the WKB) and each attribute value (``repr``
    keeps types apart: 1, 1.0 and '1' differ). Read straight from SQLite, no geometry
    decoding."""
    import sqlite3

    h = hashlib.sha256()
    conn = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{layer}")')]
        h.update(json.dumps(cols, ensure_ascii=False).encode("utf-8"))
        order = '"fid"' if "fid" in cols else "rowid"
        cur = conn.execute(f'SELECT * FROM "{layer}" ORDER BY {order}')
        blobs = [i for i, r in enumerate(conn.execute(f'PRAGMA table_info("{layer}")'))
                 if str(r[2]).upper() in GEOMETRY_TYPES]
        rest = [i for i in range(len(cols)) if i not in blobs]
        while rows := cur.fetchmany(4096):
            for i in blobs:  # geometry blobs: length-prefixed raw bytes
                for v in (row[i] for row in rows):
                    b = v if isinstance(v, bytes) else repr(v).encode()
                    h.update(len(b).to_bytes(8, "little"))
                    h.update(b)
            # the other values: repr keeps types apart (1, 1.0 and '1' differ)
            h.update(repr([tuple(row[i] for i in rest) for row in rows]).encode(
                "utf-8", "surrogatepass"))
    finally:
        conn.close()
    return h.hexdigest()


def layer_fingerprint(project: Any, rec: LayerRecord) -> dict[str, Any]:
    if rec.kind == "raster":
        path = project.folder / rec.raster_path
        sha = file_sha256(path) if path.is_file() else "missing"
    else:
        sha = vector_content_sha256(project.gpkg, rec.name)
    return {"kind": rec.kind, "role": rec.role, "sha256": sha, "synthetic": rec.synthetic}


def input_fingerprints(project: Any, resolved: Resolved) -> dict[str, dict[str, Any]]:
    return {r.name: layer_fingerprint(project, r) for r in resolved.all_records()}
