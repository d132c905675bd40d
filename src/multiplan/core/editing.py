"""Editing a project layer: edit buffer, crash-safe save, journal, locks, snapping.

An :class:`EditSession` edits one vector layer of a project:

* **Edit buffer.** :class:`EditBuffer` holds the layer as loaded (read straight from the
  GeoPackage) plus the unsaved overrides; commands (:mod:`multiplan.core.commands`) change
  only the overrides. :meth:`EditSession.save` commits every change of the layer — deleted,
  changed and added rows, the R-tree (through GDAL's own triggers), ``gpkg_contents``,
  the registry's feature count and one ``mp_audit`` row per command — in **one** SQLite
  transaction; :meth:`EditSession.discard` drops the buffer. Saving clears the undo stack
  (as ArcGIS Pro does), so the journal always equals the stack.
* **Journal.** Every do/undo/redo is appended (and fsync'ed) to
  ``<project>/.multiplan-journal/<id>.jsonl`` as it happens. A live session holds an OS
  lock on its journal; after a crash the lock is gone and :func:`pending_journals` lists
  the journal so the application can offer :meth:`EditSession.restore`. A journal whose
  save was committed is recognised by the ``edit.save`` audit row naming it (written in the
  same transaction as the data), so a crash between commit and journal removal never
  offers to apply saved edits twice. Restoring replays the recorded changes, checking each
  feature's *before* state against the layer; a mismatch restores nothing.
* **Locks.** Control-line layers (roles :data:`~multiplan.core.layers.CONTROL_LINE_ROLES`)
  and layers the project lists in the ``locked_layers`` setting are read-only: opening a
  session on one is refused unless an unlock reason is given, which goes into the audit log.
* **Avoid overlap.** New, reshaped and pasted parcels can be clipped against locked layers
  and/or against their neighbours in the edited layer.
* **Attribute validation.** Values are coerced to the column types; the layer's code field
  is checked against its classification scheme (用地用海 2023 for planning layers); the name
  field and the unified ``mp_*`` columns follow the code.
* **Snapping.** :class:`Snapper` snaps to vertices, then segments, of the edited layer
  (including unsaved edits) and reference layers within a tolerance in map units, using an
  STRtree.

Writing uses Python's ``sqlite3`` directly, so the GeoPackage SQL functions GDAL's R-tree
triggers call (``ST_IsEmpty``, ``ST_MinX`` …) are registered on the connection
(:func:`register_gpkg_functions`), and geometries are encoded as GeoPackage binary
(:func:`gpkg_blob`: "GP", version 0, flags, srs_id, envelope, WKB).
"""

from __future__ import annotations

import contextlib
import gc
import getpass
import json
import math
import os
import re
import sqlite3
import struct
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Self

import numpy as np
import shapely
import shapely.ops
from shapely.geometry.base import BaseGeometry

from . import classification as cls
from .commands import (
    AddPolygon,
    AddVertex,
    ChangeAttributes,
    Command,
    CommandStack,
    DeleteFeatures,
    DeleteVertex,
    EditRefused,
    Feature,
    MergeFeatures,
    MoveFeatures,
    MoveVertex,
    PasteFeatures,
    ReshapeBoundary,
    SplitByLine,
    StoreOptions,
    VertexRef,
    _jsonable,
    command_from_json,
    command_to_json,
    iter_vertices,
    nearest_segment,
    nearest_vertex,
    polygon_parts,
    same_attrs,
    vertex_xy,
)
from .errors import Message
from .layers import CONTROL_LINE_ROLES, ROLES, LayerRecord
from .project import Project
from .tasks import Cancelled, Task, ensure_task

JOURNAL_DIR = ".multiplan-journal"
JOURNAL_FORMAT = 1
#: project setting: names of layers the project locks besides the control lines
LOCKED_SETTING = "locked_layers"
#: default snapping distance in screen pixels (the GUI converts it to map units)
SNAP_PIXELS = 10
#: rows written between progress/cancel checks while saving
SAVE_CHUNK = 250
#: columns derived from the code field (set by import and by attribute edits)
DERIVED_COLUMNS = ("mp_code", "mp_name", "mp_status", "mp_candidates")


def _refuse(code: str, zh: str, en: str, **kw: Any) -> EditRefused:
    return EditRefused(code, zh, en, **kw)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


# =========================================================================== GeoPackage binary

_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}
_ENVELOPE_BYTES = (0, 32, 48, 48, 64, 0, 0, 0)


def gpkg_blob(geom: BaseGeometry | None, srs_id: int) -> bytes | None:
    """Encode a geometry as a GeoPackage binary blob (StandardGeoPackageBinary, little
    endian, xy envelope; an empty geometry is flagged and carries no envelope)."""
    if geom is None:
        return None
    wkb = shapely.to_wkb(geom, byte_order=1, output_dimension=2)
    if geom.is_empty:
        return b"GP\x00\x11" + struct.pack("<i", srs_id) + wkb
    x0, y0, x1, y1 = geom.bounds
    return b"GP\x00\x03" + struct.pack("<i4d", srs_id, x0, x1, y0, y1) + wkb


def gpkg_header(blob: bytes) -> tuple[int, tuple[float, ...] | None, bool, int]:
    """``(srs_id, envelope or None, empty flag, WKB offset)`` of a GeoPackage blob.
    The envelope is in the blob's order: minx, maxx, miny, maxy[, …]."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob")
    flags = blob[3]
    order = "<" if flags & 1 else ">"
    code = (flags >> 1) & 7
    if code not in _ENVELOPE_DOUBLES:
        raise ValueError(f"invalid envelope code {code}")
    n = _ENVELOPE_DOUBLES[code]
    srs_id = struct.unpack_from(order + "i", blob, 4)[0]
    env = struct.unpack_from(f"{order}{n}d", blob, 8) if n else None
    return srs_id, env, bool(flags & 0x10), 8 + 8 * n


def geometry_from_blob(blob: bytes | None) -> BaseGeometry | None:
    if blob is None:
        return None
    off = gpkg_header(blob)[3]
    return shapely.from_wkb(blob[off:])


_LAST_BLOB: list[Any] = [None, None]  # the R-tree triggers ask 5 questions of each blob


def _blob_bounds(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a blob, from its envelope or its WKB."""
    if blob is None:
        return None
    if _LAST_BLOB[0] == blob:
        return _LAST_BLOB[1]
    out = _blob_bounds_uncached(blob)
    _LAST_BLOB[0], _LAST_BLOB[1] = blob, out
    return out


def _blob_bounds_uncached(blob: bytes) -> tuple[float, float, float, float] | None:
    _, env, empty, off = gpkg_header(blob)
    if empty:
        return None
    if env is not None:
        return env[0], env[1], env[2], env[3]
    g = shapely.from_wkb(blob[off:])
    if g.is_empty:
        return None
    x0, y0, x1, y1 = g.bounds
    return x0, x1, y0, y1


def _st_isempty(blob: bytes | None) -> int | None:
    if blob is None:
        return None
    return int(_blob_bounds(blob) is None)


def _st_bound(k: int):  # type: ignore[no-untyped-def]
    def fn(blob: bytes | None) -> float | None:
        b = _blob_bounds(blob)
        return None if b is None else b[k]
    return fn


def register_gpkg_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions GDAL's GeoPackage R-tree triggers call."""
    conn.create_function("ST_IsEmpty", 1, _st_isempty, deterministic=True)
    for k, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _st_bound(k), deterministic=True)


# =========================================================================== layer schema


@dataclass
class Column:
    name: str
    decl: str
    notnull: bool

    @property
    def affinity(self) -> str:
        """``integer`` | ``real`` | ``text`` | ``blob`` | ``boolean`` | ``date`` |
        ``datetime`` (GeoPackage's declared types, SQLite's affinity rules otherwise)."""
        d = self.decl.upper()
        if d == "BOOLEAN":
            return "boolean"
        if d == "DATE":
            return "date"
        if d == "DATETIME":
            return "datetime"
        if "INT" in d:
            return "integer"
        if any(s in d for s in ("CHAR", "CLOB", "TEXT")):
            return "text"
        if d == "" or "BLOB" in d:
            return "blob"
        if any(s in d for s in ("REAL", "FLOA", "DOUB")):
            return "real"
        return "real"

    @property
    def max_length(self) -> int | None:
        m = re.fullmatch(r"\s*TEXT\s*\(\s*(\d+)\s*\)\s*", self.decl, re.IGNORECASE)
        return int(m.group(1)) if m else None


@dataclass
class LayerSchema:
    table: str
    fid_column: str
    geom_column: str | None
    geometry_type: str
    srs_id: int
    columns: list[Column]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @classmethod
    def read(cls, conn: sqlite3.Connection, table: str) -> LayerSchema:
        info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
        if not info:
            raise _refuse("layer.no_table", f"图层表 {table} 不存在", f"no layer table {table}")
        row = conn.execute("SELECT column_name, geometry_type_name, srs_id FROM "
                           "gpkg_geometry_columns WHERE lower(table_name) = lower(?)",
                           (table,)).fetchone()
        geom, gtype, srs = (row[0], row[1], int(row[2])) if row else (None, "NONE", 0)
        pk = next((r[1] for r in info if r[5]), "fid")
        cols = [Column(r[1], r[2] or "", bool(r[3])) for r in info
                if r[1] not in (pk, geom)]
        return cls(table, pk, geom, gtype.upper(), srs, cols)


def fingerprint(conn: sqlite3.Connection, table: str) -> str:
    """``<rows>@<last change>`` of a layer table (GDAL's row count in gpkg_ogr_contents,
    else count(*), and gpkg_contents.last_change): a save refuses to write over a layer
    that changed on disk since the session loaded it."""
    row = conn.execute("SELECT last_change FROM gpkg_contents WHERE lower(table_name) = "
                       "lower(?)", (table,)).fetchone()
    cnt = None
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name='gpkg_ogr_contents'").fetchone():
        r = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE "
                         "lower(table_name) = lower(?)", (table,)).fetchone()
        cnt = r[0] if r else None
    if cnt is None:
        cnt = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return f"{cnt}@{row[0] if row else ''}"


# =========================================================================== locks


def lock_reason(project: Project, name: str) -> Message | None:
    """Why a layer is locked (None if it is editable)."""
    rec = project.layer(name)
    if rec.role in CONTROL_LINE_ROLES:
        label = ROLES[rec.role][0]
        return Message("layer.locked",
                       f"图层 {name} 是管控线（{label}），默认只读；如需编辑须填写解锁原因，"
                       f"原因将记入审计日志",
                       f"layer {name} is a control line ({rec.role}) and opens read-only; "
                       f"editing it needs an unlock reason, which goes into the audit log")
    if name in (project.setting(LOCKED_SETTING) or []):
        return Message("layer.locked",
                       f"图层 {name} 已被项目锁定，只读；如需编辑须填写解锁原因，原因将记入审计日志",
                       f"layer {name} is locked by the project and opens read-only; editing "
                       f"it needs an unlock reason, which goes into the audit log")
    return None


def is_locked(project: Project, name: str) -> bool:
    return lock_reason(project, name) is not None


def locked_layers(project: Project) -> list[str]:
    return [r.name for r in project.layers() if r.kind == "vector" and is_locked(project, r.name)]


def _write_lock_setting(project: Project, names: list[str], action: str, target: str,
                        detail: dict[str, Any], actor: str | None) -> None:
    with project.transaction() as conn:
        conn.execute('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?) '
                     'ON CONFLICT("key") DO UPDATE SET "value" = excluded."value"',
                     (LOCKED_SETTING, json.dumps(names, ensure_ascii=False)))
        project._audit(conn, action, target, detail, actor=actor)


def lock_layer(project: Project, name: str, *, reason: str | None = None,
               actor: str | None = None) -> None:
    """Add a layer to the project's locked layers (recorded in the audit log)."""
    project.refuse_in_review(f"lock:{name}", f"锁定图层 {name}", f"locking layer {name}")
    project.layer(name)
    names = list(project.setting(LOCKED_SETTING) or [])
    if name not in names:
        names.append(name)
    _write_lock_setting(project, names, "layer.lock", name, {"reason": reason},
                        actor or _user())


def unlock_layer(project: Project, name: str, reason: str, *, actor: str | None = None) -> None:
    """Remove a layer from the project's locked layers. A reason is required and recorded.

    Control-line layers cannot be unlocked for good: each editing session on one needs
    its own reason (:meth:`EditSession.open` with ``unlock_reason``)."""
    project.refuse_in_review(f"unlock:{name}", f"解锁图层 {name}", f"unlocking layer {name}")
    _require_reason(reason)
    rec = project.layer(name)
    if rec.role in CONTROL_LINE_ROLES:
        raise _refuse("layer.control_line",
                      f"管控线图层 {name} 不能永久解锁；每次编辑时填写解锁原因",
                      f"control-line layer {name} cannot be unlocked for good; give an unlock "
                      f"reason each time you edit it")
    names = [n for n in (project.setting(LOCKED_SETTING) or []) if n != name]
    _write_lock_setting(project, names, "layer.unlock", name, {"reason": reason.strip()},
                        actor or _user())


def _require_reason(reason: str | None) -> str:
    if reason is None or not str(reason).strip():
        raise _refuse("layer.unlock_reason", "解锁须填写原因（将记入审计日志）",
                      "unlocking needs a reason (it goes into the audit log)")
    return str(reason).strip()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 — no login name on some systems
        return "unknown"


# =========================================================================== code domain


def code_domain(scheme_id: str = cls.TARGET_SCHEME) -> list[cls.ClassEntry]:
    """Every class of a scheme (the 用地用海 2023 tree by default), in table order."""
    return list(cls.load_scheme(scheme_id).entries.values())


def search_codes(query: str, scheme_id: str = cls.TARGET_SCHEME,
                 limit: int = 50) -> list[cls.ClassEntry]:
    """Classes whose code starts with ``query`` or whose name/alias contains it
    (the code picker's search)."""
    q = str(query).strip()
    entries = code_domain(scheme_id)
    if not q:
        return entries[:limit]
    qn = q.upper()
    by_code = [e for e in entries if e.code.upper().startswith(qn)]
    by_name = [e for e in entries if e not in by_code
               and (q in e.name or any(q in a for a in e.aliases))]
    return (by_code + by_name)[:limit]


# =========================================================================== edit buffer


class EditBuffer:
    """The layer as loaded plus unsaved overrides (a :class:`~commands.FeatureStore`)."""

    def __init__(self, project: Project, record: LayerRecord, schema: LayerSchema,
                 options: StoreOptions) -> None:
        self.project = project
        self.record = record
        self.schema = schema
        self.options = options
        self.session: EditSession | None = None
        self._load()
        self._over: dict[int, Feature | None] = {}
        self._geom_over: dict[int, BaseGeometry | None] = {}
        self._over_tree: tuple[shapely.STRtree, np.ndarray] | None = None
        self._validate_cache: dict[str, dict[str, Any]] = {}

    # -- base
    def _load(self) -> None:
        s = self.schema
        cols = "".join(f', "{c}"' for c in s.names)
        gsel = f'"{s.geom_column}"' if s.geom_column else "NULL"
        with contextlib.closing(sqlite3.connect(self.project.gpkg, timeout=30)) as conn:
            rows = conn.execute(f'SELECT "{s.fid_column}", {gsel}{cols} FROM "{s.table}" '
                                f'ORDER BY "{s.fid_column}"').fetchall()
            seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?",
                               (s.table,)).fetchone() if _has_table(
                conn, "sqlite_sequence") else None
            self.fingerprint = fingerprint(conn, s.table)
        gc_was = gc.isenabled()
        gc.disable()  # ~150k small allocations: collections would only slow this down
        try:
            self._unpack(rows, seq)
        finally:
            if gc_was:
                gc.enable()

    def _unpack(self, rows: list[tuple[Any, ...]], seq: tuple[Any, ...] | None) -> None:
        self._fids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        first = next((r[1] for r in rows if r[1] is not None), None)
        if first is not None and first[:2] != b"GP":
            raise _refuse("layer.not_gpkg_geometry", "图层几何不是 GeoPackage 二进制格式",
                          "the layer's geometries are not GeoPackage binary")
        env = _ENVELOPE_BYTES
        wkb = [None if (b := r[1]) is None else b[8 + env[(b[3] >> 1) & 7]:] for r in rows]
        self._geoms = shapely.from_wkb(np.array(wkb, dtype=object)) if rows else np.empty(
            0, dtype=object)
        self._rows = [r[2:] for r in rows]
        self._pos = {int(f): i for i, f in enumerate(self._fids)}
        self._memo: dict[int, Feature] = {}
        self._tree: shapely.STRtree | None = None
        top = int(self._fids.max()) if len(self._fids) else 0
        self._next = max(top, int(seq[0]) if seq and seq[0] is not None else 0) + 1

    def _base(self, fid: int) -> Feature | None:
        f = self._memo.get(fid)
        if f is not None:
            return f
        i = self._pos.get(fid)
        if i is None:
            return None
        f = Feature(fid, self._geoms[i], dict(zip(self.schema.names, self._rows[i],
                                                  strict=True)))
        self._memo[fid] = f
        return f

    # -- FeatureStore
    def get(self, fid: int) -> Feature | None:
        fid = int(fid)
        if fid in self._over:
            return self._over[fid]
        return self._base(fid)

    def put(self, feature: Feature) -> None:
        fid = feature.fid
        base = self._base(fid)
        if base is not None and feature is base:
            self._over.pop(fid, None)
            self._set_geom_over(fid, None, drop=True)
        else:
            self._over[fid] = feature
            if base is None or feature.geometry is not base.geometry:
                self._set_geom_over(fid, feature.geometry)
            else:
                self._set_geom_over(fid, None, drop=True)
        self._next = max(self._next, fid + 1)

    def remove(self, fid: int) -> None:
        fid = int(fid)
        if fid in self._pos:
            self._over[fid] = None
            self._set_geom_over(fid, None)
        else:
            self._over.pop(fid, None)
            self._set_geom_over(fid, None, drop=True)

    def _set_geom_over(self, fid: int, geom: BaseGeometry | None, drop: bool = False) -> None:
        """Track fids whose geometry differs from the base (None = deleted); the small
        STRtree over them is rebuilt on the next query."""
        if drop:
            if fid not in self._geom_over:
                return
            del self._geom_over[fid]
        else:
            self._geom_over[fid] = geom
        self._over_tree = None

    def new_fid(self) -> int:
        fid = self._next
        self._next += 1
        return fid

    def _base_tree(self) -> shapely.STRtree:
        if self._tree is None:
            self._tree = shapely.STRtree(self._geoms)
        return self._tree

    def candidates(self, bounds: tuple[float, float, float, float]) -> list[int]:
        """fids whose bounding box meets ``bounds`` (unsaved edits included)."""
        box = shapely.box(*bounds)
        hits = self._fids[self._base_tree().query(box)] if len(self._fids) else []
        over = self._geom_over
        out = {f for f in map(int, hits) if f not in over}
        if over:
            if self._over_tree is None:
                fids = np.fromiter(over, dtype=np.int64, count=len(over))
                geoms = np.array([over[int(f)] for f in fids], dtype=object)
                self._over_tree = (shapely.STRtree(geoms), fids)
            tree, fids = self._over_tree
            out.update(int(f) for f in fids[tree.query(box)])
        return sorted(out)

    def default_attributes(self) -> dict[str, Any]:
        return {c: None for c in self.schema.names}

    def check_editable(self) -> None:
        if self.session is not None and self.session.closed:
            raise _refuse("session.closed", "编辑会话已关闭", "the editing session is closed")

    def clip(self, geometry: BaseGeometry,
             exclude: Iterable[int]) -> tuple[BaseGeometry, list[Message]]:
        if self.session is None:
            return geometry, []
        return self.session._clip(geometry, set(exclude))

    def validate_attributes(self, values: Mapping[str, Any], feature: Feature | None, *,
                            trusted: bool = False) -> dict[str, Any]:
        """Coerce ``values`` to the column types and check the code domain (see the
        module doc). ``trusted`` values were copied from existing features (paste): only
        their types are coerced."""
        if trusted:
            return self._coerce_all(values)
        key = json.dumps(values, sort_keys=True, default=repr, ensure_ascii=False)
        hit = self._validate_cache.get(key)
        if hit is None:
            hit = self._validate(values)
            if len(self._validate_cache) > 256:
                self._validate_cache.clear()
            self._validate_cache[key] = hit
        return dict(hit)

    def _coerce_all(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in values.items():
            col = self.schema.column(name)
            if col is None:
                raise _refuse("attribute.unknown_field", f"图层 {self.record.name} 没有字段 {name}",
                              f"layer {self.record.name} has no field {name}")
            out[name] = _coerce(col, value, self.record.name)
        return out

    def _validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        rec, schema = self.record, self.schema
        out: dict[str, Any] = {}
        for name, value in values.items():
            col = schema.column(name)
            if col is None:
                if name in (schema.fid_column, schema.geom_column):
                    raise _refuse("attribute.read_only", f"字段 {name} 不能直接修改",
                                  f"field {name} cannot be edited directly")
                raise _refuse("attribute.unknown_field", f"图层 {rec.name} 没有字段 {name}",
                              f"layer {rec.name} has no field {name}")
            if name in DERIVED_COLUMNS[1:]:
                raise _refuse("attribute.derived",
                              f"字段 {name} 由地类代码自动生成，不能直接修改",
                              f"field {name} follows the land-use code and cannot be edited "
                              f"directly")
            out[name] = _coerce(col, value, rec.name)
        code_field = rec.code_field
        if code_field and code_field in out and out[code_field] is not None and rec.scheme:
            scheme = cls.load_scheme(rec.scheme)
            code = scheme.normalise(out[code_field])
            if code is None or not scheme.is_valid(code):
                raise _refuse("attribute.code_invalid",
                              f"代码 {out[code_field]} 不是《{scheme.title}》中的有效代码",
                              f"{out[code_field]} is not a valid code of {scheme.title}",
                              field=code_field, value=out[code_field])
            out[code_field] = _coerce(schema.column(code_field), code, rec.name)  # type: ignore[arg-type]
            name_field = rec.name_field
            if name_field and schema.column(name_field) is not None:
                want = scheme.name(code)
                given = out.get(name_field)
                if given is not None and scheme.code_for_name(str(given)) != code:
                    raise _refuse("attribute.name_mismatch",
                                  f"名称 {given} 与代码 {code}（{want}）不一致",
                                  f"name {given} does not match code {code} ({want})",
                                  field=name_field)
                out[name_field] = given if given is not None else want
            if "mp_code" in schema.names and "mp_code" not in values:
                m = cls.load_crosswalk(rec.scheme).map(code)
                tgt = cls.load_scheme(cls.TARGET_SCHEME)
                derived = {"mp_code": m.target,
                           "mp_name": tgt.entries[m.target].name if m.target else None,
                           "mp_status": m.status, "mp_candidates": ",".join(m.candidates)}
                out.update({k: v for k, v in derived.items() if k in schema.names})
        if "mp_code" in values:
            # a person's decision on the unified 2023 class (e.g. for a 待定 parcel)
            tgt = cls.load_scheme(cls.TARGET_SCHEME)
            raw = values["mp_code"]
            code = tgt.normalise(raw)
            if code is None or not tgt.is_valid(code):
                raise _refuse("attribute.code_invalid",
                              f"代码 {raw} 不是《{tgt.title}》中的有效代码",
                              f"{raw} is not a valid code of {tgt.title}", field="mp_code",
                              value=raw)
            derived = {"mp_code": code, "mp_name": tgt.name(code), "mp_status": cls.STATUS_OK,
                       "mp_candidates": ""}
            out.update({k: v for k, v in derived.items() if k in schema.names})
        return out

    # -- state
    def fids(self) -> list[int]:
        base = [int(f) for f in self._fids if self._over.get(int(f), 0) is not None]
        added = [f for f, v in self._over.items() if f not in self._pos and v is not None]
        return sorted(base + added)

    def __len__(self) -> int:
        return len(self.fids())

    def features(self) -> list[Feature]:
        return [f for fid in self.fids() if (f := self.get(fid)) is not None]

    def pending(self) -> dict[str, list[int]]:
        """Net unsaved changes against the loaded layer: added, changed and deleted fids."""
        out: dict[str, list[int]] = {"added": [], "changed": [], "deleted": []}
        check: list[tuple[int, Feature, Feature]] = []
        for fid, f in sorted(self._over.items()):
            base = self._base(fid)
            if base is None:
                if f is not None:
                    out["added"].append(fid)
            elif f is None:
                out["deleted"].append(fid)
            elif not same_attrs(f.attrs, base.attrs):
                out["changed"].append(fid)
            elif f.geometry is not base.geometry:
                check.append((fid, f, base))
        if check:  # equal by value? (e.g. moved and moved back, or restored from a journal)
            a = shapely.to_wkb(np.array([c[1].geometry for c in check], dtype=object))
            b = shapely.to_wkb(np.array([c[2].geometry for c in check], dtype=object))
            out["changed"].extend(c[0] for c, x, y in zip(check, a, b, strict=True) if x != y)
            out["changed"].sort()
        return out

    def snapshot(self) -> dict[int, tuple[bytes | None, tuple[tuple[str, Any], ...]]]:
        """Canonical content {fid: (WKB, sorted attribute items)} for exact comparisons."""
        names = self.schema.names
        order = sorted(range(len(names)), key=lambda k: names[k])
        sorted_names = [names[k] for k in order]
        keep = [i for i, f in enumerate(self._fids.tolist()) if f not in self._over]
        wkb = shapely.to_wkb(self._geoms[keep]) if keep else []
        out: dict[int, tuple[bytes | None, tuple[tuple[str, Any], ...]]] = {}
        for j, i in enumerate(keep):
            row = self._rows[i]
            out[int(self._fids[i])] = (wkb[j], tuple(zip(sorted_names, (row[k] for k in order),
                                                         strict=True)))
        for fid, f in self._over.items():
            if f is not None:
                g = None if f.geometry is None else shapely.to_wkb(f.geometry)
                out[fid] = (g, tuple(sorted(f.attrs.items())))
        return dict(sorted(out.items()))

    def frame(self):  # type: ignore[no-untyped-def]
        """The current state as a GeoDataFrame indexed by fid (project CRS)."""
        import geopandas as gpd
        import pandas as pd

        feats = self.features()
        data = pd.DataFrame([dict(f.attrs) for f in feats], columns=self.schema.names,
                            index=pd.Index([f.fid for f in feats], name="fid"))
        return gpd.GeoDataFrame(data, geometry=[f.geometry for f in feats],
                                crs=self.project.crs)

    def _fold(self, fingerprint_after: str) -> None:
        """After a save: the overrides become the base."""
        geom_changed = bool(self._geom_over)
        deleted = {fid for fid, f in self._over.items() if f is None}
        geoms = list(self._geoms)
        rows = list(self._rows)
        fids = [int(f) for f in self._fids]
        for fid, f in self._over.items():
            if f is None:
                continue
            row = tuple(f.attrs.get(c) for c in self.schema.names)
            i = self._pos.get(fid)
            if i is None:
                fids.append(fid)
                geoms.append(f.geometry)
                rows.append(row)
            else:
                geoms[i] = f.geometry
                rows[i] = row
            self._memo[fid] = f
        keep = [i for i, f in enumerate(fids) if f not in deleted]
        order = sorted(keep, key=lambda i: fids[i])
        self._fids = np.array([fids[i] for i in order], dtype=np.int64)
        self._geoms = np.array([geoms[i] for i in order], dtype=object) if order else np.empty(
            0, dtype=object)
        self._rows = [rows[i] for i in order]
        self._pos = {int(f): i for i, f in enumerate(self._fids)}
        for fid in deleted:
            self._memo.pop(fid, None)
        self._over.clear()
        self._geom_over.clear()
        self._over_tree = None
        if geom_changed:
            self._tree = None
        self.fingerprint = fingerprint_after

    def _reset(self) -> None:
        self._over.clear()
        self._geom_over.clear()
        self._over_tree = None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() \
        is not None


def _coerce(col: Column, value: Any, layer: str) -> Any:
    """Coerce a value to a column's type; refuse what does not fit."""
    name = col.name

    def bad(kind_zh: str, kind_en: str) -> EditRefused:
        return _refuse("attribute.type", f"字段 {name} 需要{kind_zh}，而不是 {value!r}",
                       f"field {name} needs {kind_en}, not {value!r}", field=name, value=value)

    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or (
            isinstance(value, str) and not value.strip() and col.affinity != "text"):
        if col.notnull:
            raise _refuse("attribute.required", f"字段 {name} 不能为空",
                          f"field {name} cannot be empty", field=name)
        return None
    aff = col.affinity
    if aff in ("integer", "boolean"):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            out = value
        elif isinstance(value, float) and value.is_integer() or isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            out = int(value)
        elif aff == "boolean" and isinstance(value, str) and value.strip().lower() in (
                "true", "false", "是", "否"):
            out = int(value.strip().lower() in ("true", "是"))
        else:
            raise bad("整数", "an integer")
        if aff == "boolean" and out not in (0, 1):
            raise bad("是/否（0 或 1）", "a boolean (0 or 1)")
        return out
    if aff == "real":
        if isinstance(value, bool):
            raise bad("数值", "a number")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise bad("数值", "a number") from None
        if not math.isfinite(out):
            raise bad("有限数值", "a finite number")
        return out
    if aff == "date":
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise bad("日期（YYYY-MM-DD）", "a date (YYYY-MM-DD)") from None
    if aff == "datetime":
        if isinstance(value, datetime):
            return value.isoformat()
        try:
            return datetime.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise bad("日期时间", "a date-time (ISO 8601)") from None
    if aff == "blob":
        return value if isinstance(value, bytes) else str(value)
    # text
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value)
    n = col.max_length
    if n is not None and len(out) > n:
        raise _refuse("attribute.too_long", f"字段 {name} 最多 {n} 个字符",
                      f"field {name} holds at most {n} characters", field=name, value=value)
    return out


# =========================================================================== journal


class _OsLock:
    """An exclusive, non-blocking OS lock on an open file (released when the process
    dies, however it dies)."""

    @staticmethod
    def acquire(fh: BinaryIO) -> bool:
        try:
            if sys.platform == "win32":  # pragma: no cover — exercised on Windows only
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    @staticmethod
    def release(fh: BinaryIO) -> None:
        with contextlib.suppress(OSError):
            if sys.platform == "win32":  # pragma: no cover
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Append-only JSON-lines record of one session's unsaved commands."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._fh: BinaryIO | None = None

    @property
    def id(self) -> str:
        return str(self.header["journal"])

    @property
    def is_open(self) -> bool:
        return self._fh is not None

    def _open(self) -> None:
        self.path.parent.mkdir(exist_ok=True)
        fh = open(self.path, "ab")  # noqa: SIM115 — kept open for the session
        if not _OsLock.acquire(fh):
            fh.close()
            raise _refuse("journal.in_use", "该编辑日志正被另一个会话使用",
                          "this edit journal is in use by another session")
        self._fh = fh
        if fh.tell() == 0:
            self._write({"type": "header", **self.header})
            _fsync_dir(self.path.parent)

    def adopt(self) -> None:
        """Take over an existing journal file (after a crash): lock it and cut a torn
        last line, so appends continue the record."""
        fh = open(self.path, "r+b")  # noqa: SIM115
        if not _OsLock.acquire(fh):
            fh.close()
            raise _refuse("journal.in_use", "该编辑日志正被另一个会话使用",
                          "this edit journal is in use by another session")
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            fh.truncate(end)
        fh.seek(0, os.SEEK_END)
        self._fh = fh

    def _write(self, record: dict[str, Any]) -> None:
        assert self._fh is not None
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        self._fh.write(line.encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self._open()
        self._write(record)

    def close(self, delete: bool) -> None:
        if self._fh is not None:
            _OsLock.release(self._fh)
            self._fh.close()
            self._fh = None
        if delete:
            self.path.unlink(missing_ok=True)


def _read_journal(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Header and events of a journal file; a torn (partial) last line is ignored."""
    header, events = None, []
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # the write of this line was cut short by a crash
            try:
                rec = json.loads(raw)
            except ValueError:
                break
            if rec.get("type") == "header":
                header = rec
            else:
                events.append(rec)
    return header, events


def _effective(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The command records of a journal's stack and how many of them are done."""
    cmds: list[dict[str, Any]] = []
    index = 0
    for ev in events:
        t = ev.get("type")
        if t == "do":
            del cmds[index:]
            cmds.append(ev["cmd"])
            index += 1
        elif t == "undo" and index > 0:
            index -= 1
        elif t == "redo" and index < len(cmds):
            index += 1
    return cmds, index


@dataclass
class JournalInfo:
    """An unsaved-edits journal left by a session that ended without saving."""

    path: Path
    journal: str
    layer: str
    actor: str | None
    created: str | None
    commands: int  # commands applied (undone ones are restored as redo-able)
    labels: list[str]
    labels_en: list[str]
    last_edit: str | None
    base_matches: bool  # the layer is as the session loaded it (else replay checks)

    def describe(self, lang: str = "zh") -> str:
        if lang.startswith("zh"):
            return (f"图层 {self.layer} 有 {self.commands} 项未保存的编辑"
                    f"（{self.actor or '未知用户'}，最后编辑 {self.last_edit or '?'}）")
        return (f"layer {self.layer} has {self.commands} unsaved edits "
                f"({self.actor or 'unknown user'}, last edit {self.last_edit or '?'})")


def journal_dir(project: Project) -> Path:
    return project.folder / JOURNAL_DIR


def _journal_saved(conn: sqlite3.Connection, journal_id: str) -> bool:
    return conn.execute("SELECT 1 FROM mp_audit WHERE action = 'edit.save' AND "
                        "json_extract(detail, '$.journal') = ? LIMIT 1",
                        (journal_id,)).fetchone() is not None


def pending_journals(project: Project) -> list[JournalInfo]:
    """Journals of sessions that ended without saving or discarding (after a crash, or a
    close that kept the edits): what the application offers to restore on open.

    Journals of live sessions (their OS lock is held) are skipped. Journals that hold no
    applied command, or whose save was committed (an ``edit.save`` audit row names them),
    are removed.
    """
    folder = journal_dir(project)
    if not folder.is_dir():
        return []
    out = []
    with contextlib.closing(sqlite3.connect(project.gpkg, timeout=30)) as conn:
        for path in sorted(folder.glob("*.jsonl")):
            with open(path, "rb") as probe:
                if not _OsLock.acquire(probe):
                    continue  # a live session's journal
                _OsLock.release(probe)
            header, events = _read_journal(path)
            if header is None:
                path.unlink(missing_ok=True)
                continue
            cmds, index = _effective(events)
            jid = str(header["journal"])
            layer = header.get("layer", "")
            if index == 0 or _journal_saved(conn, jid) or not project.has_layer(layer):
                path.unlink(missing_ok=True)
                continue
            try:
                fp = fingerprint(conn, layer)
            except sqlite3.Error:
                fp = None
            out.append(JournalInfo(
                path=path, journal=jid, layer=layer, actor=header.get("actor"),
                created=header.get("created"), commands=index,
                labels=[c["label"] for c in cmds[:index]],
                labels_en=[c["label_en"] for c in cmds[:index]],
                last_edit=cmds[index - 1].get("created") if index else None,
                base_matches=fp == header.get("base")))
    return out


def discard_journal(project: Project, info: JournalInfo, *, actor: str | None = None) -> None:
    """Throw away a pending journal's edits (recorded in the audit log)."""
    with project.transaction() as conn:
        project._audit(conn, "edit.journal_discard", info.layer,
                       {"journal": info.journal, "commands": info.commands,
                        "labels": info.labels}, actor=actor or _user())
    info.path.unlink(missing_ok=True)


# =========================================================================== avoid overlap


class OverlapGuard:
    """Geometries new or reshaped parcels must not overlap (locked layers)."""

    def __init__(self, geoms: Sequence[BaseGeometry], names: Sequence[str]) -> None:
        arr = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
        self.geoms = arr
        self.names = list(names)
        self.tree = shapely.STRtree(arr)

    @classmethod
    def from_project(cls, project: Project, layers: Sequence[str]) -> OverlapGuard:
        geoms: list[BaseGeometry] = []
        for name in layers:
            gdf = project.read_layer(name, columns=[])
            geoms.extend(g for g in gdf.geometry.values if g is not None and not g.is_empty)
        return cls(geoms, layers)

    def cover(self, geom: BaseGeometry) -> list[BaseGeometry]:
        idx = self.tree.query(geom, predicate="intersects")
        return list(self.geoms[idx])


# =========================================================================== session


@dataclass
class SaveResult:
    """What a save wrote (feed ``added``/``changed``/``deleted`` to conflicts.recheck)."""

    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    commands: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return len(self.added) + len(self.changed) + len(self.deleted)


class EditSession:
    """Edit one vector layer of a project. Use :meth:`open` or :meth:`restore`.

    Every edit method builds a command, does it and puts it on :attr:`stack`, and returns
    the command (its ``warnings`` say what a user should know, e.g. the area clipped
    away). A refused edit raises :class:`~multiplan.core.commands.EditRefused` and changes
    nothing.
    """

    def __init__(self, project: Project, layer: str, *, actor: str | None = None,
                 unlock_reason: str | None = None, invalid_policy: str = "refuse",
                 topological: bool = False, topology_tolerance: float = 1e-6) -> None:
        rec = project.layer(layer)
        if rec.kind != "vector":
            raise _refuse("layer.not_vector", f"图层 {layer} 不是矢量图层，不能编辑",
                          f"layer {layer} is not a vector layer and cannot be edited")
        if invalid_policy not in ("refuse", "warn", "repair"):
            raise ValueError(f"invalid_policy must be refuse, warn or repair: {invalid_policy}")
        self.project = project
        self.layer = rec.name
        self.record = rec
        self.actor = actor or project.user or _user()
        self.closed = False
        lock = lock_reason(project, layer)
        self.unlock_reason: str | None = None
        if lock is not None:
            if unlock_reason is None or not str(unlock_reason).strip():
                raise EditRefused(lock.code, lock.zh, lock.en)
            project.refuse_in_review(f"unlock:{rec.name}", f"解锁图层 {rec.name}",
                                     f"unlocking layer {rec.name}")
            self.unlock_reason = _require_reason(unlock_reason)
        with contextlib.closing(sqlite3.connect(project.gpkg, timeout=30)) as conn:
            self.schema = LayerSchema.read(conn, rec.name)
        self.options = StoreOptions(invalid_policy=invalid_policy, topological=topological,
                                    topology_tolerance=topology_tolerance,
                                    geometry_type=self.schema.geometry_type)
        self.buffer = EditBuffer(project, rec, self.schema, self.options)
        self.buffer.session = self
        self.stack = CommandStack(self.buffer)
        self.journal = self._new_journal()
        self.stack.add_listener(self._on_stack)
        self._avoid_layers: list[str] = []
        self._avoid_neighbours = False
        self._guard: OverlapGuard | None = None
        if self.unlock_reason is not None:
            with project.transaction() as conn:
                project._audit(conn, "layer.unlock", rec.name,
                               {"reason": self.unlock_reason, "scope": "session",
                                "journal": self.journal.id}, actor=self.actor)

    @classmethod
    def open(cls, project: Project, layer: str, **kw: Any) -> EditSession:
        """Start editing ``layer``. A locked layer needs ``unlock_reason``."""
        return cls(project, layer, **kw)

    @classmethod
    def restore(cls, project: Project, info: JournalInfo, **kw: Any) -> EditSession:
        """Open a session on the journal's layer and replay its unsaved edits (undone ones
        stay redo-able). Every recorded *before* state is checked against the layer; if
        the layer no longer matches, nothing is restored (``journal.conflict``)."""
        kw.setdefault("actor", info.actor)
        session = cls(project, info.layer, **kw)
        journal = Journal(info.path, {})
        journal.adopt()
        try:
            header, events = _read_journal(info.path)
            session.stack.remove_listener(session._on_stack)
            try:
                session._replay(events)
            except EditRefused as exc:
                session.stack.undo_all()
                session.stack.clear()
                session.buffer._reset()
                raise _refuse("journal.conflict",
                              f"图层 {info.layer} 在上次编辑后已被修改，未保存的编辑无法恢复"
                              f"（{exc.zh}）",
                              f"layer {info.layer} changed after the unsaved edits were made; "
                              f"they cannot be restored ({exc.en})") from None
            finally:
                session.stack.add_listener(session._on_stack)
        except BaseException:
            journal.close(delete=False)
            session.close()
            raise
        journal.header = header or {"journal": info.journal}
        session.journal = journal
        session.stack._clean = -1 if session.stack.index else 0
        return session

    def _replay(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            t = ev.get("type")
            if t == "do":
                self.stack.push(command_from_json(ev["cmd"]))
            elif t == "undo":
                self.stack.undo()
            elif t == "redo":
                self.stack.redo()

    def _new_journal(self) -> Journal:
        jid = uuid.uuid4().hex
        header = {"format": JOURNAL_FORMAT, "journal": jid, "layer": self.layer,
                  "base": self.buffer.fingerprint, "actor": self.actor, "created": _now(),
                  "pid": os.getpid(), "project_id": self.project.setting("project_id")}
        return Journal(journal_dir(self.project) / f"{jid}.jsonl", header)

    def _on_stack(self, event: str, cmd: Command | None) -> None:
        if event == "push" and cmd is not None:
            self.journal.append({"type": "do", "cmd": command_to_json(cmd)})
        elif event in ("undo", "redo"):
            self.journal.append({"type": event})

    # ------------------------------------------------------------------ options
    def set_avoid_overlap(self, layers: Sequence[str] | str | None = None,
                          neighbours: bool = False) -> None:
        """Clip new, reshaped and pasted parcels against ``layers`` ("locked" = every
        locked layer of the project except this one) and/or the neighbours in this layer."""
        if layers == "locked":
            names = [n for n in locked_layers(self.project) if n != self.layer]
        else:
            names = list(layers or [])
        self._avoid_layers = names
        self._avoid_neighbours = bool(neighbours)
        self._guard = OverlapGuard.from_project(self.project, names) if names else None

    def _clip(self, geom: BaseGeometry, exclude: set[int]) -> tuple[BaseGeometry, list[Message]]:
        cover: list[BaseGeometry] = []
        sources: list[str] = []
        if self._guard is not None:
            got = self._guard.cover(geom)
            if got:
                cover.extend(got)
                sources.extend(self._guard.names)
        if self._avoid_neighbours:
            for fid in self.buffer.candidates(geom.bounds):
                if fid in exclude:
                    continue
                f = self.buffer.get(fid)
                if f is not None and f.geometry is not None and f.geometry.intersects(geom):
                    cover.append(f.geometry)
            if cover and "neighbours" not in sources:
                sources.append("neighbours")
        if not cover:
            return geom, []
        clipped = shapely.difference(geom, shapely.union_all(cover))
        parts = polygon_parts(clipped)
        clipped = shapely.union_all(parts) if parts else clipped
        removed = geom.area - (clipped.area if not clipped.is_empty else 0.0)
        if removed <= 0:
            return geom, []
        src = "、".join("相邻要素" if s == "neighbours" else s for s in sources)
        src_en = ", ".join("neighbouring features" if s == "neighbours" else s for s in sources)
        return clipped, [Message("overlap.clipped",
                                 f"已避让重叠：裁去与 {src} 重叠的 {removed:.2f} 平方米",
                                 f"overlap avoided: {removed:.2f} m² overlapping {src_en} "
                                 f"clipped away", extra={"removed_m2": removed})]

    # ------------------------------------------------------------------ edits
    def push(self, cmd: Command) -> Command:
        return self.stack.push(cmd)

    def add_polygon(self, geometry: BaseGeometry, attrs: Mapping[str, Any] | None = None, *,
                    reason: str | None = None) -> AddPolygon:
        return self.push(AddPolygon(geometry, attrs, reason=reason))  # type: ignore[return-value]

    def delete(self, fids: Iterable[int], *, reason: str | None = None) -> Command:
        return self.push(DeleteFeatures(fids, reason=reason))

    def move_features(self, fids: Iterable[int], dx: float, dy: float, *,
                      reason: str | None = None) -> Command:
        return self.push(MoveFeatures(fids, dx, dy, reason=reason))

    def move_vertex(self, fid: int, vertex: VertexRef | Sequence[int], to: Sequence[float], *,
                    reason: str | None = None) -> Command:
        return self.push(MoveVertex(fid, vertex, to, reason=reason))

    def add_vertex(self, fid: int, segment: VertexRef | Sequence[int], at: Sequence[float], *,
                   reason: str | None = None) -> Command:
        return self.push(AddVertex(fid, segment, at, reason=reason))

    def delete_vertex(self, fid: int, vertex: VertexRef | Sequence[int], *,
                      reason: str | None = None) -> Command:
        return self.push(DeleteVertex(fid, vertex, reason=reason))

    def reshape(self, fid: int, line: Any, *, reason: str | None = None) -> Command:
        return self.push(ReshapeBoundary(fid, line, reason=reason))

    def split(self, line: Any, fids: Iterable[int] | None = None, *,
              reason: str | None = None) -> Command:
        return self.push(SplitByLine(line, fids, reason=reason))

    def merge(self, fids: Iterable[int], keep: int, attrs: Mapping[str, Any] | None = None, *,
              reason: str | None = None) -> Command:
        return self.push(MergeFeatures(fids, keep, attrs, reason=reason))

    def set_attributes(self, fids: int | Iterable[int], values: Mapping[str, Any], *,
                       reason: str | None = None) -> Command:
        return self.push(ChangeAttributes(fids, values, reason=reason))

    def copy(self, fids: Iterable[int]) -> list[Feature]:
        out = []
        for fid in fids:
            f = self.buffer.get(fid)
            if f is None:
                raise _refuse("feature.not_found", f"要素 {fid} 不存在",
                              f"feature {fid} does not exist", feature=fid)
            out.append(f)
        return out

    def paste(self, features: Iterable[Feature], *, reason: str | None = None) -> Command:
        return self.push(PasteFeatures(features, reason=reason))

    def undo(self) -> Command | None:
        return self.stack.undo()

    def redo(self) -> Command | None:
        return self.stack.redo()

    # ------------------------------------------------------------------ state
    @property
    def dirty(self) -> bool:
        return self.stack.index > 0 or any(self.buffer.pending().values())

    def feature(self, fid: int) -> Feature | None:
        return self.buffer.get(fid)

    def fids(self) -> list[int]:
        return self.buffer.fids()

    def snapshot(self) -> dict[int, tuple[bytes | None, tuple[tuple[str, Any], ...]]]:
        return self.buffer.snapshot()

    def frame(self):  # type: ignore[no-untyped-def]
        return self.buffer.frame()

    def snapper(self, reference_layers: Sequence[str] = ()) -> Snapper:
        """A snapper over this layer (with its unsaved edits) and reference layers."""
        sources: list[Any] = [_BufferSnapSource(self.layer, self.buffer)]
        sources += [SnapIndex.from_project(self.project, name) for name in reference_layers]
        return Snapper(sources)

    # ------------------------------------------------------------------ save / discard
    def save(self, task: Task | None = None) -> SaveResult:
        """Commit every change of the layer in one SQLite transaction, with an audit row
        per command and an ``edit.save`` row naming the journal. Cancelling (or any
        error) rolls everything back and leaves the session as it was."""
        if self.closed:
            raise _refuse("session.closed", "编辑会话已关闭", "the editing session is closed")
        task = ensure_task(task)
        t0 = time.perf_counter()
        pending = self.buffer.pending()
        done = self.stack.done()
        result = SaveResult(pending["added"], pending["changed"], pending["deleted"],
                            len(done))
        if not done and not result.rows:
            self.stack.clear()
            self._rotate_journal()
            return result
        # review mode refuses here (the edits stay in the journal); after publication the
        # workflow starts a new plan version before the first write
        self.project.guard_write(f"layer:{self.layer}")
        s = self.schema
        total = max(result.rows, 1)
        written = 0
        conn = sqlite3.connect(self.project.gpkg, timeout=30, isolation_level=None)
        try:
            register_gpkg_functions(conn)
            task.progress(0.0, "开始保存 / saving")
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = fingerprint(conn, s.table)
                if current != self.buffer.fingerprint:
                    raise _refuse("layer.changed_on_disk",
                                  f"图层 {self.layer} 在编辑期间已被其他程序修改，未保存；"
                                  f"编辑仍保留在日志中",
                                  f"layer {self.layer} was changed by another program while "
                                  f"it was being edited; nothing was saved and the edits are "
                                  f"still in the journal")
                bounds: list[tuple[float, float, float, float]] = []

                def tick(n: int) -> None:
                    nonlocal written
                    written += n
                    task.progress(0.95 * written / total,
                                  f"已写入 {written}/{total} 个要素 / {written} of {total} rows")

                pk = s.fid_column
                for chunk in _chunks(result.deleted):
                    conn.execute(f'DELETE FROM "{s.table}" WHERE "{pk}" IN '
                                 f'({", ".join("?" for _ in chunk)})', chunk)
                    tick(len(chunk))
                geo_upd, attr_upd = [], []
                for fid in result.changed:
                    f = self.buffer.get(fid)
                    base = self.buffer._base(fid)
                    assert f is not None and base is not None
                    (geo_upd if f.geometry is not base.geometry else attr_upd).append(f)
                names = s.names
                set_attrs = ", ".join(f'"{c}" = ?' for c in names)
                g = s.geom_column
                for chunk in _chunks(geo_upd):
                    sets = f'"{g}" = ?' + (", " + set_attrs if names else "")
                    conn.executemany(
                        f'UPDATE "{s.table}" SET {sets} WHERE "{pk}" = ?',
                        [(self._blob(f, bounds), *self._values(f), f.fid) for f in chunk])
                    tick(len(chunk))
                for chunk in _chunks(attr_upd):
                    if names:
                        conn.executemany(f'UPDATE "{s.table}" SET {set_attrs} WHERE "{pk}" = ?',
                                         [(*self._values(f), f.fid) for f in chunk])
                    tick(len(chunk))
                cols = [pk] + ([g] if g else []) + names
                marks = ", ".join("?" for _ in cols)
                collist = ", ".join(f'"{c}"' for c in cols)
                for chunk in _chunks(result.added):
                    rows = []
                    for fid in chunk:
                        f = self.buffer.get(fid)
                        assert f is not None
                        geo = (self._blob(f, bounds),) if g else ()
                        rows.append((fid, *geo, *self._values(f)))
                    conn.executemany(f'INSERT INTO "{s.table}" ({collist}) VALUES ({marks})',
                                     rows)
                    tick(len(chunk))
                self._update_metadata(conn, bounds)
                self._write_audit(conn, done, result)
                after = fingerprint(conn, s.table)
                task.progress(0.97, "提交 / committing")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        self.project._settings_cache = None
        # the data and the edit.save row naming the journal are committed together: from
        # here on a leftover journal is recognised as saved
        with contextlib.suppress(Cancelled):
            task.progress(1.0, "已保存 / saved")
        self.buffer._fold(after)
        self.stack.clear()
        self._rotate_journal()
        result.seconds = time.perf_counter() - t0
        return result

    def _blob(self, f: Feature, bounds: list[tuple[float, float, float, float]]) -> bytes | None:
        if f.geometry is not None and not f.geometry.is_empty:
            bounds.append(f.geometry.bounds)
        return gpkg_blob(f.geometry, self.schema.srs_id)

    def _values(self, f: Feature) -> tuple[Any, ...]:
        return tuple(f.attrs.get(c) for c in self.schema.names)

    def _update_metadata(self, conn: sqlite3.Connection,
                         bounds: list[tuple[float, float, float, float]]) -> None:
        s = self.schema
        row = conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE "
                           "lower(table_name) = lower(?)", (s.table,)).fetchone()
        ext = list(row) if row else [None] * 4
        if bounds:
            b = np.asarray(bounds)
            new = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
            ext = [float(new[i]) if ext[i] is None else
                   float(min(ext[i], new[i]) if i < 2 else max(ext[i], new[i]))
                   for i in range(4)]
        conn.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, "
                     "last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                     "WHERE lower(table_name) = lower(?)", (*ext, s.table))
        count = conn.execute(f'SELECT count(*) FROM "{s.table}"').fetchone()[0]
        conn.execute('UPDATE "mp_layers" SET "feature_count" = ? WHERE "name" = ?',
                     (count, self.layer))

    def _write_audit(self, conn: sqlite3.Connection, done: list[Command],
                     result: SaveResult) -> None:
        for cmd in done:
            detail = {"label": cmd.label_zh, "label_en": cmd.label_en, "kind": cmd.kind,
                      "reason": cmd.reason, "edited_at": cmd.created,
                      "params": _jsonable(cmd.params()), **cmd.affected(),
                      "warnings": [w.code for w in cmd.warnings],
                      "journal": self.journal.id}
            self.project._audit(conn, f"edit.{cmd.kind}", self.layer, detail, actor=self.actor)
        self.project._audit(conn, "edit.save", self.layer,
                            {"journal": self.journal.id, "commands": len(done),
                             "added": len(result.added), "changed": len(result.changed),
                             "deleted": len(result.deleted),
                             "unlock_reason": self.unlock_reason}, actor=self.actor)

    def _rotate_journal(self) -> None:
        self.journal.close(delete=True)
        self.journal = self._new_journal()

    def discard(self) -> None:
        """Drop every unsaved edit (the discard is recorded in the audit log)."""
        done = self.stack.done()
        if done or len(self.stack):
            with self.project.transaction() as conn:
                self.project._audit(conn, "edit.discard", self.layer,
                                    {"journal": self.journal.id, "commands": len(done),
                                     "labels": [c.label_zh for c in done]}, actor=self.actor)
        self.stack.remove_listener(self._on_stack)
        try:
            self.stack.undo_all()
        finally:
            self.stack.add_listener(self._on_stack)
        self.buffer._reset()
        self.stack.clear()
        self._rotate_journal()

    def close(self, *, discard: bool = False) -> None:
        """End the session. Unsaved edits stay in the journal (offered on the next open)
        unless ``discard``."""
        if self.closed:
            return
        if discard:
            self.discard()
        keep = self.stack.index > 0
        self.journal.close(delete=not keep)
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunks(seq: Sequence[Any], n: int = SAVE_CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(seq), n):
        yield list(seq[i:i + n])


# =========================================================================== snapping


@dataclass(frozen=True)
class SnapResult:
    x: float
    y: float
    kind: str  # "vertex" | "segment"
    layer: str
    fid: int
    vertex: VertexRef  # the vertex, or the first vertex of the segment
    distance: float


def tolerance_for_pixels(pixels: float, map_units_per_pixel: float) -> float:
    """Snapping distance in map units for ``pixels`` on screen."""
    return float(pixels) * float(map_units_per_pixel)


class SnapIndex:
    """A fixed layer's geometries under an STRtree (a reference layer)."""

    def __init__(self, name: str, geoms: np.ndarray, fids: np.ndarray) -> None:
        self.name = name
        self.geoms = np.asarray(geoms, dtype=object)
        self.fids = np.asarray(fids, dtype=np.int64)
        self.tree = shapely.STRtree(self.geoms)

    @classmethod
    def from_project(cls, project: Project, layer: str) -> SnapIndex:
        gdf = project.read_layer(layer, columns=[])
        return cls(layer, gdf.geometry.values, gdf.index.to_numpy())

    def near(self, bounds: tuple[float, float, float, float]) -> list[tuple[int, BaseGeometry]]:
        idx = self.tree.query(shapely.box(*bounds))
        return [(int(self.fids[i]), self.geoms[i]) for i in idx]


class _BufferSnapSource:
    """The edited layer, its unsaved edits included."""

    def __init__(self, name: str, buffer: EditBuffer) -> None:
        self.name = name
        self.buffer = buffer

    def near(self, bounds: tuple[float, float, float, float]) -> list[tuple[int, BaseGeometry]]:
        out = []
        for fid in self.buffer.candidates(bounds):
            f = self.buffer.get(fid)
            if f is not None and f.geometry is not None:
                out.append((fid, f.geometry))
        return out


class Snapper:
    """Snap a map position to the nearest vertex (preferred) or segment within a
    tolerance (map units) over several layers."""

    def __init__(self, sources: Sequence[Any], *, vertices: bool = True,
                 segments: bool = True) -> None:
        self.sources = list(sources)
        self.vertices = vertices
        self.segments = segments

    def snap(self, x: float, y: float, tolerance: float, *,
             exclude: Iterable[tuple[str, int]] = (),
             exclude_xy: tuple[float, float] | None = None) -> SnapResult | None:
        """``exclude``: (layer, fid) pairs not to snap to; ``exclude_xy``: a position whose
        vertices are ignored (the vertex being dragged)."""
        skip = set(exclude)
        bounds = (x - tolerance, y - tolerance, x + tolerance, y + tolerance)
        cands = [(src.name, fid, g) for src in self.sources for fid, g in src.near(bounds)
                 if (src.name, fid) not in skip]
        best: SnapResult | None = None
        if self.vertices:
            for name, fid, g in cands:
                got = _nearest_vertex_excluding(g, x, y, exclude_xy)
                if got is not None and got[1] <= tolerance and (best is None
                                                                 or got[1] < best.distance):
                    ref, d, vx, vy = got[0], got[1], got[2], got[3]
                    best = SnapResult(vx, vy, "vertex", name, fid, ref, d)
        if best is not None or not self.segments:
            return best
        for name, fid, g in cands:
            got2 = (nearest_segment(g, x, y) if polygon_parts(g)
                    else _nearest_on_linework(g, x, y))
            if got2 is not None and got2[2] <= tolerance and (best is None
                                                              or got2[2] < best.distance):
                ref, (px, py), d = got2
                best = SnapResult(px, py, "segment", name, fid, ref, d)
        return best


#: the vertex reference of a snap onto a line or point layer (no polygon rings there)
NO_VERTEX = VertexRef(-1, -1, -1)


def _nearest_on_linework(g: BaseGeometry, x: float, y: float
                         ) -> tuple[VertexRef, tuple[float, float], float] | None:
    """Nearest point on a line geometry (points have no segments)."""
    if g is None or g.is_empty or shapely.get_dimensions(g) != 1:
        return None
    pt = shapely.Point(x, y)
    on = shapely.line_interpolate_point(g, shapely.line_locate_point(g, pt)) \
        if g.geom_type == "LineString" else shapely.ops.nearest_points(g, pt)[0]
    return NO_VERTEX, (float(on.x), float(on.y)), float(on.distance(pt))


def _nearest_vertex_excluding(g: BaseGeometry, x: float, y: float,
                              exclude_xy: tuple[float, float] | None
                              ) -> tuple[VertexRef, float, float, float] | None:
    if not polygon_parts(g):  # lines and points: their coordinates are the vertices
        xy = shapely.get_coordinates(g)
        if exclude_xy is not None:
            xy = xy[(xy[:, 0] != exclude_xy[0]) | (xy[:, 1] != exclude_xy[1])]
        if not len(xy):
            return None
        d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
        i = int(np.argmin(d))
        return NO_VERTEX, float(d[i]), float(xy[i, 0]), float(xy[i, 1])
    if exclude_xy is None:
        got = nearest_vertex(g, x, y)
        if got is None:
            return None
        ref, d = got
        vx, vy = vertex_xy(g, ref)
        return ref, d, vx, vy
    best = None
    ex, ey = exclude_xy
    for ref, vx, vy in iter_vertices(g):
        if vx == ex and vy == ey:
            continue
        d = math.hypot(vx - x, vy - y)
        if best is None or d < best[1]:
            best = (ref, d, vx, vy)
    return best
