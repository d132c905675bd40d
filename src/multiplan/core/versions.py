"""Published plan versions: immutable snapshots, their verification, and version comparison.

Snapshot (taken by :func:`multiplan.core.workflow.advance` on reaching 已公布, inside its
transaction, so no other writer can change the project meanwhile)
    * ``versions/v{N}.gpkg`` beside ``plan.gpkg``: a consistent SQLite backup of the whole
      project GeoPackage as published (every vector plan layer, every ``mp_*`` table),
      made read-only (mode 0444). It opens in QGIS/GDAL like the project.
    * a content hash (SHA-256) of every layer and table: for each table registered in
      ``gpkg_contents`` its columns (name, type), then every row ordered by ``fid``: the
      geometry as ISO WKB (the GeoPackage blob without its header, so the envelope does not
      matter) and each other value tagged by type (NULL, integer, real, text, blob) and
      length-prefixed. Raster layers are hashed as files (they are not copied). The workflow
      bookkeeping tables (:func:`excluded`: the audit log and its chain head, workflow states and records, the
      version table itself) are not part of the plan content and are left out.
    * ``mp_plan_versions`` (attribute table): one row per published version — ``version``,
      ``published_at``, ``actor``, ``path``, ``file_sha256`` (of the copy), ``content_sha256``
      (over the per-table hashes) and ``tables`` (JSON: table → kind, rows, sha256).

:func:`verify_snapshot` recomputes the hashes of the stored copy (and, while that version is
the current published one, of the live project) and reports every difference.
:func:`compare_versions` lists added / removed / changed parcels of one layer between two
versions (or a version and the current project), by fid, with areas in m² and 公顷.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import MultiplanError
from .project import NON_PLAN_SETTING_PREFIXES

VERSIONS_DIR = "versions"
VERSIONS_TABLE = "mp_plan_versions"
#: bookkeeping tables that change by design after publication (not plan content); every
#: table whose name starts with ``mp_audit`` (the log and its hash-chain head) too
EXCLUDED = ("mp_audit", "mp_workflow", "mp_milestones", VERSIONS_TABLE)


def excluded(table: str) -> bool:
    return table in EXCLUDED or table.startswith(("mp_audit", "mp_tmp_"))
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


class VersionError(MultiplanError):
    """A version or snapshot that does not exist or cannot be read."""

    exit_code = 4


# ----------------------------------------------------------------------------- hashing

def gpkg_blob_wkb(blob: bytes) -> bytes:
    """The WKB inside a GeoPackage geometry blob (header and envelope stripped)."""
    if len(blob) < 8 or blob[:2] != b"GP":
        return bytes(blob)
    env = (blob[3] >> 1) & 0x07
    return bytes(blob[8 + _ENVELOPE_BYTES.get(env, 0):])


def _feed(h: Any, value: Any) -> None:
    if value is None:
        h.update(b"N")
    elif isinstance(value, int):
        h.update(b"I" + str(value).encode() + b";")
    elif isinstance(value, float):
        h.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, str):
        b = value.encode("utf-8", "surrogatepass")
        h.update(b"S" + len(b).to_bytes(8, "little") + b)
    else:
        b = bytes(value)
        h.update(b"B" + len(b).to_bytes(8, "little") + b)


def table_sha256(conn: sqlite3.Connection, table: str) -> tuple[str, int]:
    """(SHA-256, row count) of a table's content, canonical as described in the module."""
    info = list(conn.execute(f'PRAGMA table_info("{table}")'))
    cols = [r[1] for r in info]
    geom = {r[0] for r in conn.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,))}
    h = hashlib.sha256()
    h.update(json.dumps([[r[1], str(r[2]).upper()] for r in info],
                        ensure_ascii=False).encode("utf-8"))
    order = '"fid"' if "fid" in cols else "rowid"
    cur = conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}')
    is_geom = [c in geom for c in cols]
    # settings that are not plan content (the saved map view, export metadata such as the
    # 审图号, review and workflow bookkeeping) change after publication by design
    skip_key = cols.index("key") if table == "mp_settings" and "key" in cols else None
    n = 0
    while rows := cur.fetchmany(4096):
        if skip_key is not None:
            rows = [r for r in rows
                    if not str(r[skip_key]).startswith(NON_PLAN_SETTING_PREFIXES)]
        for row in rows:
            h.update(b"R")
            for v, g in zip(row, is_geom, strict=True):
                _feed(h, gpkg_blob_wkb(v) if g and isinstance(v, bytes) else v)
        n += len(rows)
    return h.hexdigest(), n


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def content_hashes(gpkg: Path, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Hash every table of ``gpkg_contents`` (but :data:`EXCLUDED`) and, when ``folder`` is
    given, every registered raster file under it."""
    out: dict[str, dict[str, Any]] = {}
    conn = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        tables = [(r[0], r[1]) for r in conn.execute(
            "SELECT table_name, data_type FROM gpkg_contents ORDER BY table_name")]
        for name, kind in tables:
            if excluded(name):
                continue
            sha, n = table_sha256(conn, name)
            out[name] = {"kind": kind, "rows": n, "sha256": sha}
        rasters = []
        with contextlib.suppress(sqlite3.Error):
            rasters = list(conn.execute('SELECT "name", "raster_path" FROM "mp_layers" '
                                        "WHERE \"kind\" = 'raster'"))
    finally:
        conn.close()
    if folder is not None:
        for name, rel in rasters:
            path = folder / rel if rel else None
            sha = file_sha256(path) if path is not None and path.is_file() else "missing"
            out[f"raster:{name}"] = {"kind": "raster", "rows": None, "sha256": sha,
                                     "path": rel}
    return out


def combined_sha256(hashes: dict[str, dict[str, Any]]) -> str:
    """One SHA-256 over the per-table hashes of :func:`content_hashes` (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(hashes):
        h.update(f"{name}\t{hashes[name]['sha256']}\n".encode())
    return h.hexdigest()


_combined = combined_sha256  # the name the publish package first used


# ----------------------------------------------------------------------------- snapshot

def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{VERSIONS_TABLE}" ('
                 '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"version" INTEGER NOT NULL UNIQUE, "published_at" TEXT NOT NULL, '
                 '"actor" TEXT, "path" TEXT NOT NULL, "file_sha256" TEXT NOT NULL, '
                 '"content_sha256" TEXT NOT NULL, "tables" TEXT NOT NULL)')
    conn.execute("INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
                 "description) VALUES (?, 'attributes', ?, ?)",
                 (VERSIONS_TABLE, VERSIONS_TABLE, "multiplan published plan versions"))


def snapshot_path(project: Any, version: int) -> Path:
    return project.folder / VERSIONS_DIR / f"v{int(version)}.gpkg"


def create_snapshot(project: Any, conn: sqlite3.Connection, version: int, *,
                    now: datetime | None = None, actor: str | None = None) -> dict[str, Any]:
    """Copy the project as committed to ``versions/v{version}.gpkg`` and record its hashes
    in ``mp_plan_versions`` through ``conn``. Call it inside the caller's write transaction
    (``BEGIN IMMEDIATE`` held, nothing written yet), so the copy is what is published."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    # read only until the copy is made: the copy is taken through a second connection,
    # which must see the committed file while ``conn`` holds the write lock with nothing
    # of its own pending
    have = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (VERSIONS_TABLE,)).fetchone() is not None
    if have and conn.execute(f'SELECT 1 FROM "{VERSIONS_TABLE}" WHERE "version" = ?',
                             (int(version),)).fetchone():
        raise VersionError("versions.exists", f"第 {version} 版已有公布快照，不能覆盖",
                           f"version {version} already has a published snapshot; it cannot "
                           "be replaced")
    path = snapshot_path(project, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # a copy left by an interrupted publication of the same version
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        path.unlink()
    tmp = path.with_suffix(".gpkg.tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{project.gpkg}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    hashes = content_hashes(tmp, project.folder)
    tmp.replace(path)
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    _ensure_table(conn)
    rec = {"version": int(version), "published_at": now.astimezone(UTC).isoformat(
        timespec="seconds"), "actor": actor,
        "path": path.relative_to(project.folder).as_posix(),
        "file_sha256": file_sha256(path), "content_sha256": combined_sha256(hashes),
        "tables": hashes}
    conn.execute(f'INSERT INTO "{VERSIONS_TABLE}" ("version", "published_at", "actor", "path", '
                 '"file_sha256", "content_sha256", "tables") VALUES (?, ?, ?, ?, ?, ?, ?)',
                 (rec["version"], rec["published_at"], actor, rec["path"], rec["file_sha256"],
                  rec["content_sha256"], json.dumps(hashes, ensure_ascii=False)))
    project._audit(conn, "versions.snapshot", rec["path"],
                   {k: rec[k] for k in ("version", "path", "file_sha256", "content_sha256")}
                   | {"tables": len(hashes)}, actor=actor)
    return rec


def list_versions(project: Any) -> list[dict[str, Any]]:
    """The published versions, oldest first (``tables`` decoded)."""
    with contextlib.closing(project.connect()) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (VERSIONS_TABLE,)).fetchone() is None:
            return []
        rows = [dict(r) for r in conn.execute(
            f'SELECT * FROM "{VERSIONS_TABLE}" ORDER BY "version"')]
    for r in rows:
        r["tables"] = json.loads(r["tables"])
    return rows


def version_record(project: Any, version: int) -> dict[str, Any]:
    for r in list_versions(project):
        if r["version"] == int(version):
            return r
    have = [r["version"] for r in list_versions(project)]
    raise VersionError("versions.not_found", f"没有第 {version} 版的公布快照（已公布：{have or '无'}）",
                       f"no published snapshot of version {version} (published: "
                       f"{have or 'none'})")


@dataclass
class SnapshotCheck:
    version: int
    ok: bool
    file_ok: bool
    problems: list[dict[str, Any]] = field(default_factory=list)
    live_checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "ok": self.ok, "file_ok": self.file_ok,
                "live_checked": self.live_checked, "problems": self.problems}


def verify_snapshot(project: Any, version: int) -> SnapshotCheck:
    """Recompute the hashes of ``versions/v{version}.gpkg`` and compare them with the ones
    recorded at publication; while that version is the current published one, the live
    project is compared too (it must not have changed)."""
    from . import workflow

    rec = version_record(project, version)
    path = project.folder / rec["path"]
    problems: list[dict[str, Any]] = []
    expected = rec["tables"]
    if not path.is_file():
        return SnapshotCheck(int(version), False, False, [{
            "where": "snapshot", "table": None, "problem": "missing",
            "zh": f"快照文件 {rec['path']} 不存在", "en": f"the snapshot {rec['path']} is missing"}])
    file_ok = file_sha256(path) == rec["file_sha256"]
    if not file_ok:
        problems.append({"where": "snapshot", "table": None, "problem": "file_changed",
                         "zh": f"快照文件 {rec['path']} 已被修改",
                         "en": f"the snapshot file {rec['path']} was modified"})
    got = content_hashes(path)
    problems += _diff_hashes({k: v for k, v in expected.items() if not k.startswith("raster:")},
                             got, "snapshot")
    live = workflow.is_published(project) and workflow.plan_version(project) == int(version)
    if live:
        problems += _diff_hashes(expected, content_hashes(project.gpkg, project.folder), "live")
    return SnapshotCheck(int(version), not problems, file_ok, problems, live)


def _diff_hashes(expected: dict[str, Any], got: dict[str, Any], where: str
                 ) -> list[dict[str, Any]]:
    label = ("快照", "snapshot") if where == "snapshot" else ("当前项目", "current project")
    out = []
    for name in sorted(set(expected) | set(got)):
        e, g = expected.get(name), got.get(name)
        if e is None:
            out.append({"where": where, "table": name, "problem": "added",
                        "zh": f"{label[0]}多出表 {name}", "en": f"{label[1]} has an extra "
                        f"table {name}"})
        elif g is None:
            out.append({"where": where, "table": name, "problem": "removed",
                        "zh": f"{label[0]}缺少表 {name}", "en": f"{label[1]} lacks table {name}"})
        elif e["sha256"] != g["sha256"]:
            out.append({"where": where, "table": name, "problem": "changed",
                        "rows": [e.get("rows"), g.get("rows")],
                        "zh": f"{label[0]}中 {name} 的内容与公布时不同",
                        "en": f"{name} in the {label[1]} differs from the published content"})
    return out


# ----------------------------------------------------------------------------- comparison

CHANGE_ZH = {"added": "新增", "removed": "删除", "changed": "修改"}
COMPARE_COLUMNS = ["fid", "change", "change_zh", "geometry_changed", "attributes_changed",
                   "area_old_m2", "area_new_m2", "area_delta_m2", "area_old_ha", "area_new_ha",
                   "area_delta_ha"]


def _read_version_layer(project: Any, layer: str, version: int | str | None
                        ) -> tuple[gpd.GeoDataFrame, str]:
    import pyogrio

    if version is None or str(version).lower() in ("current", "当前", "now"):
        if not project.has_layer(layer):
            raise VersionError("versions.layer_missing", f"当前项目中没有图层 {layer}",
                               f"the current project has no layer {layer}")
        return project.read_layer(layer), "current"
    rec = version_record(project, int(version))
    path = project.folder / rec["path"]
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, fid_as_index=True, use_arrow=True)
    except Exception:  # noqa: BLE001 — GDAL's errors for a missing layer vary
        raise VersionError("versions.layer_missing", f"第 {version} 版中没有图层 {layer}",
                           f"version {version} has no layer {layer}", path=path) from None
    return gdf, f"v{int(version)}"


def compare_versions(project: Any, layer: str, v_old: int,
                     v_new: int | str | None = "current") -> pd.DataFrame:
    """Parcels of ``layer`` added, removed or changed (geometry and/or attributes) from
    version ``v_old`` to ``v_new`` (a version number, or ``"current"``/None for the project
    as it is), matched by GeoPackage fid. One row per parcel (:data:`COMPARE_COLUMNS`);
    ``df.attrs["summary"]`` holds counts and area totals per change kind."""
    old, old_label = _read_version_layer(project, layer, v_old)
    new, new_label = _read_version_layer(project, layer, v_new)
    old_ids, new_ids = set(old.index.tolist()), set(new.index.tolist())
    attrs_old = [c for c in old.columns if c != old.geometry.name]
    attrs_new = [c for c in new.columns if c != new.geometry.name]
    common_cols = [c for c in attrs_old if c in attrs_new]
    rows: list[dict[str, Any]] = []
    both = sorted(old_ids & new_ids)
    if both:
        go = old.geometry.loc[both].to_numpy()
        gn = new.geometry.loc[both].to_numpy()
        ao, an = shapely.area(go), shapely.area(gn)
        wo = shapely.to_wkb(shapely.normalize(go), output_dimension=2)
        wn = shapely.to_wkb(shapely.normalize(gn), output_dimension=2)
        geom_changed = np.asarray([a != b for a, b in zip(wo, wn, strict=True)])
        vo = old.loc[both, common_cols].astype(object)
        vn = new.loc[both, common_cols].astype(object)
        for k, fid in enumerate(both):
            changed_cols = [c for c in common_cols if not _same(vo.at[fid, c], vn.at[fid, c])]
            changed_cols += [c for c in attrs_old if c not in attrs_new]
            changed_cols += [c for c in attrs_new if c not in attrs_old]
            if geom_changed[k] or changed_cols:
                rows.append(_row(fid, "changed", bool(geom_changed[k]), changed_cols,
                                 float(ao[k]), float(an[k])))
    for fid in sorted(new_ids - old_ids):
        rows.append(_row(fid, "added", True, [], None, float(new.geometry.loc[fid].area)))
    for fid in sorted(old_ids - new_ids):
        rows.append(_row(fid, "removed", True, [], float(old.geometry.loc[fid].area), None))
    df = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    df = df.sort_values(["fid", "change"], kind="stable").reset_index(drop=True)
    summary: dict[str, Any] = {"layer": layer, "old": old_label, "new": new_label,
                               "old_count": len(old), "new_count": len(new)}
    for kind in ("added", "removed", "changed"):
        sel = df[df["change"] == kind]
        summary[kind] = {"count": len(sel),
                         "area_m2": round(float(sel["area_delta_m2"].sum()), 3)}
    summary["area_old_m2"] = round(float(old.geometry.area.sum()), 3)
    summary["area_new_m2"] = round(float(new.geometry.area.sum()), 3)
    summary["area_delta_m2"] = round(summary["area_new_m2"] - summary["area_old_m2"], 3)
    summary["area_delta_ha"] = round(summary["area_delta_m2"] / 10_000, 6)
    df.attrs["summary"] = summary
    return df


def _same(a: Any, b: Any) -> bool:
    na, nb = _isna(a), _isna(b)
    if na or nb:
        return na and nb
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _row(fid: int, change: str, geom: bool, cols: list[str], a_old: float | None,
         a_new: float | None) -> dict[str, Any]:
    delta = (a_new or 0.0) - (a_old or 0.0)
    return {"fid": int(fid), "change": change, "change_zh": CHANGE_ZH[change],
            "geometry_changed": geom, "attributes_changed": ",".join(cols),
            "area_old_m2": a_old, "area_new_m2": a_new, "area_delta_m2": delta,
            "area_old_ha": None if a_old is None else a_old / 10_000,
            "area_new_ha": None if a_new is None else a_new / 10_000,
            "area_delta_ha": delta / 10_000}
