"""The project container: one folder holding ``plan.gpkg`` and ``rasters/``.

``plan.gpkg`` is an ordinary GeoPackage 1.3 (opens in QGIS/GDAL) with every vector layer
plus ``mp_*`` metadata tables registered as GeoPackage attribute tables:

* ``mp_schema``   — one row: the schema version of the metadata tables;
* ``mp_settings`` — key → JSON value (project CRS, county, thresholds …);
* ``mp_layers``   — the layer registry (level, role, source, SHA-256, CRS, encoding,
  classification scheme and code field, import report);
* ``mp_audit``    — append-only, hash-chained log of what was done to the project, with
  ``mp_audit_head`` holding the last entry's seq and hash (see :mod:`multiplan.core.audit`).

Metadata writes go through :meth:`Project.transaction` (one SQLite transaction); every audit
entry goes through :meth:`Project._audit` inside the caller's transaction.

Vector layers are written by GDAL (pyogrio) into the same file; a layer becomes part of the
project only when its registry row is committed, so an interrupted import leaves no
registered half-layer.

**Modes and roles.** A project is opened in ``"edit"`` mode (the default) or ``"review"``
mode (the review committee): :meth:`Project.open` ``(folder, mode=, user=)``. The project
records its planners and reviewers (:meth:`Project.roles`, :meth:`Project.set_roles`,
stored in the ``roles`` setting). In review mode every plan-changing path —
:meth:`~Project.write_vector_layer`, :meth:`~Project.remove_layer`,
:meth:`~Project.register_raster`, :meth:`~Project.set_settings` of plan settings, role
changes, and saving or unlocking in :mod:`multiplan.core.editing` — calls
:meth:`Project.guard_write` first and is refused with a bilingual ``ProjectError``
(``project.review_mode``) before anything touches the file. Not blocked: the workflow and
review modules' own SQL in :meth:`Project.transaction` (decisions, comments, workflow
tables), audit entries, and settings that are not plan content (keys starting with
:data:`NON_PLAN_SETTING_PREFIXES`, e.g. the map view ``gui_view``). A user who opens in
review mode without being listed as reviewer or planner is allowed in, with a
``project.review_user_unlisted`` warning in :attr:`Project.warnings`;
:meth:`Project.can_decide` is True only for listed reviewers. Analyses that store results
(conflict detection and re-check, the merged map, 质检 with the derived ``mp_sansheng``
column, 三生 marking, 双评价) call :meth:`Project.refuse_in_review` before they start: the
committee reviews those results and does not rewrite them; computing without storing
(``write=False``) is allowed.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS

from . import audit as auditmod
from . import crs as crsmod
from .errors import Message, ProjectError
from .layers import LayerRecord

GPKG_NAME = "plan.gpkg"
RASTER_DIR = "rasters"
EXPORT_DIR = "exports"

#: Version of the mp_* metadata layout. Bump it with a migration in MIGRATIONS.
SCHEMA_VERSION = 3

#: Modes a project can be opened in.
MODES = ("edit", "review")
#: Setting key holding {"planners": [...], "reviewers": [...]}.
ROLES_SETTING = "roles"
#: Settings whose key starts with one of these are not plan content: writable in review
#: mode and no plan-write hook (map view, review and workflow bookkeeping).
NON_PLAN_SETTING_PREFIXES = ("gui_", "review_", "workflow_", "committee_", "public_notice",
                             "export_")

#: GeoPackage version written for new projects (1.4 confuses GDAL 3.6 / QGIS 3.22).
GPKG_VERSION = "1.3"

DEFAULT_SETTINGS: dict[str, Any] = {
    "area_method": "planar",  # planar in the project CRS; "ellipsoidal" on request
    "sliver_max_area_m2": 1000.0,
    "sliver_max_mean_width_m": 5.0,
    "min_fragment_m2": {"construction": 200.0, "agricultural": 400.0, "other": 600.0},
    "precision_grid_m": 0.001,
    "assessment_cell_size_m": 30.0,
}

_LAYER_COLUMNS = [
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
    ("scheme_version", "TEXT"),
    ("code_field", "TEXT"),
    ("name_field", "TEXT"),
    ("raster_path", "TEXT"),
    ("synthetic", "INTEGER NOT NULL DEFAULT 0"),
    ("imported_at", "TEXT"),
    ("report", "TEXT"),
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def register_attributes_table(conn: sqlite3.Connection, table: str, description: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, description)"
        " VALUES (?, 'attributes', ?, ?)", (table, table, description))


def _create_tables(conn: sqlite3.Connection) -> None:
    """The metadata tables of a new project (current schema)."""
    cols = ", ".join(f'"{n}" {t}' for n, t in _LAYER_COLUMNS)
    conn.execute('CREATE TABLE IF NOT EXISTS "mp_settings" ('
                 '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"key" TEXT NOT NULL UNIQUE, "value" TEXT NOT NULL)')
    register_attributes_table(conn, "mp_settings", "multiplan project settings")
    conn.execute(f'CREATE TABLE IF NOT EXISTS "mp_layers" ('
                 f'"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
    register_attributes_table(conn, "mp_layers", "multiplan layer registry")
    auditmod.create_tables(conn)


def _create_audit_table(conn: sqlite3.Connection) -> None:
    """The audit table as schema 2 had it (no hash chain); used by the 1 → 2 migration,
    the 2 → 3 migration then adds the chain."""
    conn.execute('CREATE TABLE IF NOT EXISTS "mp_audit" ('
                 '"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 '"time" TEXT NOT NULL, "actor" TEXT, "action" TEXT NOT NULL, '
                 '"target" TEXT, "detail" TEXT)')
    register_attributes_table(conn, "mp_audit", "multiplan audit log")


def _migrate_1_to_2(conn: sqlite3.Connection, actor: str | None) -> None:
    """v1 (first prototype) lacked scheme_version/name_field/synthetic/raster_path columns
    in the registry and had no audit table."""
    have = {r[1] for r in conn.execute('PRAGMA table_info("mp_layers")')}
    for name, decl in _LAYER_COLUMNS:
        if name not in have:
            conn.execute(f'ALTER TABLE "mp_layers" ADD COLUMN "{name}" {decl}')
    _create_audit_table(conn)


def _migrate_2_to_3(conn: sqlite3.Connection, actor: str | None) -> None:
    """v3 chains the audit log: seq/prev_hash/hash columns, the mp_audit_head table; the
    existing entries are hashed now (recorded as ``audit.chain_start``)."""
    auditmod.start_chain(conn, actor)


MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


@functools.cache
def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 — no login name on some systems
        return "unknown"


def _clean_names(names: Any, zh: str, en: str) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    out: list[str] = []
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise ProjectError("project.roles_invalid", f"{zh}名单中有无效的姓名：{n!r}",
                               f"invalid name in the list of {en}: {n!r}")
        if n.strip() not in out:
            out.append(n.strip())
    return out


class Project:
    """A multiplan project folder. Use :meth:`create` or :meth:`open`."""

    def __init__(self, folder: Path, *, mode: str = "edit", user: str | None = None) -> None:
        if mode not in MODES:
            raise ProjectError("project.mode_invalid",
                               f"无效的打开方式 {mode!r}（应为 edit 或 review）",
                               f"invalid mode {mode!r} (edit or review)", path=folder)
        self.folder = Path(folder)
        self.gpkg = self.folder / GPKG_NAME
        self._settings_cache: dict[str, Any] | None = None
        #: "edit" or "review" (review: plan data read-only, decisions and comments only)
        self.mode = mode
        #: who is working (default actor of audit entries); None means the OS user
        self.user = user.strip() if isinstance(user, str) and user.strip() else None
        #: warning-level messages from opening (e.g. an unlisted user in review mode)
        self.warnings: list[Message] = []

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, folder: str | Path, county: str, crs: int | str | CRS | None = None, *,
               admin_code: str | None = None, central_longitude: float | None = None,
               prefixed: bool = False, overwrite: bool = False,
               user: str | None = None) -> Project:
        """Create a project folder.

        The project CRS is ``crs`` if given (it must be a CGCS2000 3° Gauss-Krüger zone,
        EPSG 4513–4554), else the 3° zone whose central meridian is nearest to
        ``central_longitude`` (with or without zone prefix as ``prefixed`` says).
        ``user`` names who creates it (the actor of ``project.create`` in the audit log;
        default: the OS user). The project is returned open in edit mode.
        """
        folder = Path(folder)
        if crs is None:
            if central_longitude is None:
                raise ProjectError("project.crs_missing",
                                   "需要指定项目坐标系（crs）或县域中心经度",
                                   "give the project CRS (crs) or the county's central longitude",
                                   path=folder)
            epsg = crsmod.epsg_for_longitude(central_longitude, prefixed)
        else:
            try:
                epsg = crsmod.to_crs(crs).to_epsg()
            except Exception as exc:  # noqa: BLE001
                raise ProjectError("project.crs_invalid", f"无法识别坐标系 {crs}",
                                   f"unrecognised CRS {crs}: {exc}", path=folder) from None
        info = crsmod.gk_info(epsg) if epsg else None
        if info is None or info.degrees != 3:
            raise ProjectError("project.crs_not_gk3",
                               f"项目坐标系须为 CGCS2000 3°带高斯-克吕格投影（EPSG:4513–4554），"
                               f"而不是 {crs}",
                               f"the project CRS must be a CGCS2000 3° Gauss-Krüger zone "
                               f"(EPSG 4513–4554), not {crs}", path=folder)
        if folder.exists() and any(folder.iterdir()):
            if not overwrite:
                raise ProjectError("project.exists", "项目文件夹已存在且不为空",
                                   "the project folder exists and is not empty", path=folder)
            # overwrite replaces an existing multiplan project, never an arbitrary folder
            if not (folder / GPKG_NAME).is_file():
                raise ProjectError("project.overwrite_refused",
                                   "该文件夹不是 multiplan 项目，拒绝覆盖（不会删除其中的文件）",
                                   "the folder is not a multiplan project; refusing to overwrite "
                                   "it (nothing was deleted)", path=folder)
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RASTER_DIR).mkdir(exist_ok=True)
        (folder / EXPORT_DIR).mkdir(exist_ok=True)
        gpkg = folder / GPKG_NAME
        project = cls(folder, user=user)
        # GDAL creates the GeoPackage skeleton (version 1.3) with the first attribute table.
        pyogrio.write_dataframe(pd.DataFrame({"version": [SCHEMA_VERSION]}), gpkg,
                                layer="mp_schema", driver="GPKG",
                                dataset_options={"VERSION": GPKG_VERSION})
        conn = sqlite3.connect(gpkg)
        try:
            with conn:
                _create_tables(conn)
                settings = dict(DEFAULT_SETTINGS)
                settings.update({
                    "project_id": uuid.uuid4().hex,
                    "county": county,
                    "admin_code": admin_code,
                    "crs_epsg": epsg,
                    "crs_convention": "prefixed" if info.prefixed else "unprefixed",
                    "central_meridian": info.central_meridian,
                    "created_at": _now(),
                    "multiplan_version": _package_version(),
                })
                conn.executemany('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?)',
                                 [(k, json.dumps(v, ensure_ascii=False))
                                  for k, v in settings.items()])
                project._audit(conn, "project.create", county, {"crs_epsg": epsg})
        finally:
            conn.close()
        return project

    @classmethod
    def open(cls, folder: str | Path, mode: str = "edit", user: str | None = None) -> Project:
        """Open a project; migrate an older schema, refuse a newer one.

        ``mode="review"`` opens it for the review committee: plan data is read-only (see
        :meth:`guard_write`). ``user`` names who is working (default: the OS user); a
        review-mode user listed neither as reviewer nor as planner is let in with a
        warning in :attr:`warnings`.
        """
        folder = Path(folder)
        if folder.is_file() and folder.name == GPKG_NAME:
            folder = folder.parent
        gpkg = folder / GPKG_NAME
        if not gpkg.is_file():
            raise ProjectError("project.not_found", f"找不到项目文件 {GPKG_NAME}",
                               f"no {GPKG_NAME} in this folder; not a multiplan project",
                               path=folder)
        try:
            conn = sqlite3.connect(gpkg)
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise ProjectError("project.corrupt", "项目文件已损坏或不是 GeoPackage",
                               f"the project file is corrupt or not a GeoPackage ({exc})",
                               path=gpkg) from None
        if app_id != 0x47504B47 or "mp_schema" not in tables:
            raise ProjectError("project.not_multiplan",
                               "该 GeoPackage 不是 multiplan 项目（缺少 mp_schema 表）",
                               "this GeoPackage is not a multiplan project (no mp_schema table)",
                               path=gpkg)
        project = cls(folder, mode=mode, user=user)
        project._check_and_migrate()
        if mode == "review":
            roles = project.roles()
            who = project.actor
            if who not in roles["reviewers"] and who not in roles["planners"]:
                project.warnings.append(Message(
                    "project.review_user_unlisted",
                    f"用户 {who} 既不在评议人名单也不在编制人名单中：可以查看，但不能记录评议决定",
                    f"user {who} is listed neither as reviewer nor as planner: viewing is "
                    f"allowed, recording decisions is not", str(project.gpkg)))
        return project

    def _check_and_migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute('SELECT "version" FROM "mp_schema" LIMIT 1').fetchone()
            version = int(version[0]) if version else 0
            if version > SCHEMA_VERSION:
                raise ProjectError(
                    "project.schema_newer",
                    f"项目由较新版本的 multiplan 创建（结构版本 {version}，本程序支持 "
                    f"{SCHEMA_VERSION}）；请升级 multiplan，项目未作任何修改",
                    f"the project was written by a newer multiplan (schema {version}; this "
                    f"program supports {SCHEMA_VERSION}); upgrade multiplan — the project "
                    f"was not modified", path=self.gpkg)
            if version < 1:
                raise ProjectError("project.schema_invalid", f"无效的项目结构版本 {version}",
                                   f"invalid project schema version {version}", path=self.gpkg)
            start = version
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](conn, self.actor)
                version += 1
            if version != start:
                conn.execute('UPDATE "mp_schema" SET "version" = ?', (version,))
                self._audit(conn, "project.migrate", None, {"from": start, "to": version})

    # ------------------------------------------------------------------ sqlite
    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.gpkg, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction: committed on success, rolled back on any error."""
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
            self._settings_cache = None

    @property
    def schema_version(self) -> int:
        with contextlib.closing(self.connect()) as conn:
            return int(conn.execute('SELECT "version" FROM "mp_schema"').fetchone()[0])

    # ------------------------------------------------------------------ settings
    @property
    def settings(self) -> dict[str, Any]:
        if self._settings_cache is None:
            with contextlib.closing(self.connect()) as conn:
                rows = conn.execute('SELECT "key", "value" FROM "mp_settings"').fetchall()
            merged = dict(DEFAULT_SETTINGS)
            merged.update({r["key"]: json.loads(r["value"]) for r in rows})
            self._settings_cache = merged
        return dict(self._settings_cache)

    def setting(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def set_settings(self, **values: Any) -> None:
        """Store settings (JSON values), audited. Plan settings go through
        :meth:`guard_write` (refused in review mode); keys starting with
        :data:`NON_PLAN_SETTING_PREFIXES` do not."""
        plan_keys = sorted(k for k in values if not k.startswith(NON_PLAN_SETTING_PREFIXES))
        if plan_keys:
            self.guard_write("settings:" + ",".join(plan_keys))
        with self.transaction() as conn:
            for k, v in values.items():
                conn.execute('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?) '
                             'ON CONFLICT("key") DO UPDATE SET "value" = excluded."value"',
                             (k, json.dumps(v, ensure_ascii=False)))
            self._audit(conn, "settings.update", None, values)

    @property
    def county(self) -> str:
        return str(self.setting("county", ""))

    @property
    def epsg(self) -> int:
        return int(self.setting("crs_epsg"))

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    # ------------------------------------------------------------------ mode and roles
    @property
    def actor(self) -> str:
        """Who audit entries name by default: :attr:`user`, else the OS login name."""
        return self.user or _os_user()

    @property
    def review_mode(self) -> bool:
        return self.mode == "review"

    def roles(self) -> dict[str, list[str]]:
        """The project's planners (编制人) and reviewers (评议人)."""
        raw = self.setting(ROLES_SETTING) or {}
        if not isinstance(raw, dict):
            raw = {}
        return {"planners": [str(n) for n in raw.get("planners") or []],
                "reviewers": [str(n) for n in raw.get("reviewers") or []]}

    def set_roles(self, planners: list[str] | None = None,
                  reviewers: list[str] | None = None) -> dict[str, list[str]]:
        """Set the planners and/or reviewers (None keeps a list as it is); audited as
        ``roles.set``. Refused in review mode: the committee cannot change who sits on it."""
        self.refuse_in_review("roles", "修改编制人和评议人名单",
                              "changing the planners and reviewers")
        before = self.roles()
        after = {"planners": before["planners"] if planners is None
                 else _clean_names(planners, "编制人", "planners"),
                 "reviewers": before["reviewers"] if reviewers is None
                 else _clean_names(reviewers, "评议人", "reviewers")}
        with self.transaction() as conn:
            conn.execute('INSERT INTO "mp_settings" ("key", "value") VALUES (?, ?) '
                         'ON CONFLICT("key") DO UPDATE SET "value" = excluded."value"',
                         (ROLES_SETTING, json.dumps(after, ensure_ascii=False)))
            self._audit(conn, "roles.set", None, {**after, "before": before})
        return after

    def can_decide(self, user: str | None = None) -> bool:
        """True if ``user`` (default: this project's :attr:`actor`) is a listed reviewer."""
        who = (user or self.actor).strip()
        return who in self.roles()["reviewers"]

    def refuse_in_review(self, target: str, what_zh: str | None = None,
                         what_en: str | None = None) -> None:
        """Raise ``project.review_mode`` if the project is open in review mode."""
        if self.mode != "review":
            return
        what_zh = what_zh or f"修改 {target}"
        what_en = what_en or f"changing {target}"
        raise ProjectError(
            "project.review_mode",
            f"项目以评议模式打开，规划数据只读：不能{what_zh}（未作任何修改）；评议模式下只能记录"
            f"评议决定和意见。如需修改，请以编辑模式打开项目",
            f"the project is open in review mode and plan data is read-only: {what_en} is "
            f"refused (nothing was changed); review mode only records decisions and "
            f"comments — open the project in edit mode to change it",
            path=self.gpkg, target=target)

    def guard_analysis(self, target: str, what_zh: str, what_en: str) -> None:
        """Call first in an analysis that stores results (conflicts, 质检, 三生, 双评价):
        refused in review mode (the committee reviews those results) and once the plan is
        published (its stored results are part of what was published; a new version starts
        by moving the plan back to 编制中)."""
        self.refuse_in_review(target, what_zh, what_en)
        from . import workflow  # lazily: workflow imports this module

        if workflow.is_published(self):
            v = workflow.plan_version(self)
            raise ProjectError(
                "project.published",
                f"规划第 {v} 版已公布并冻结：不能{what_zh}，否则已公布的成果与项目内容不再一致（未作"
                f"任何修改）。如需重新分析，请先将规划退回“编制中”，开始第 {v + 1} 版",
                f"version {v} of the plan is published and frozen: {what_en} is refused so "
                f"that the published results stay the project's (nothing was changed); move "
                f"the plan back to 编制中 to start version {v + 1}",
                path=self.gpkg, target=target)

    def guard_write(self, target: str) -> None:
        """Call first on every plan-changing path: refuses in review mode, then lets the
        workflow react (after publication a write starts a new plan version).

        ``target`` names what is about to change: ``layer:<name>``, ``raster:<name>``,
        ``settings:<key,…>``.
        """
        kind, _, name = target.partition(":")
        zh = {"layer": f"修改图层 {name}", "raster": f"修改栅格图层 {name}",
              "settings": f"修改项目设置 {name}"}.get(kind)
        en = {"layer": f"changing layer {name}", "raster": f"changing raster layer {name}",
              "settings": f"changing the project settings {name}"}.get(kind)
        self.refuse_in_review(target, zh, en)
        from . import workflow  # lazily: workflow imports this module

        workflow.before_plan_write(self, target)

    # ------------------------------------------------------------------ audit
    def _audit(self, conn: sqlite3.Connection, action: str, target: str | None,
               detail: Any = None, actor: str | None = None) -> None:
        """Append a hash-chained audit entry inside the caller's transaction
        (:func:`multiplan.core.audit.append`); ``actor`` defaults to :attr:`actor`."""
        auditmod.append(conn, action, target, detail, actor or self.actor)

    def audit_log(self) -> list[dict[str, Any]]:
        with contextlib.closing(self.connect()) as conn:
            return [dict(r) for r in conn.execute('SELECT * FROM "mp_audit" ORDER BY "fid"')]

    def verify_audit(self, anchor: str | None = None) -> auditmod.AuditReport:
        """Re-compute the audit hash chain (read-only); see :func:`multiplan.core.audit.verify`."""
        return auditmod.verify(self, anchor=anchor)

    # ------------------------------------------------------------------ layers
    def layers(self) -> list[LayerRecord]:
        with contextlib.closing(self.connect()) as conn:
            rows = conn.execute('SELECT * FROM "mp_layers" ORDER BY "fid"').fetchall()
        return [LayerRecord.from_row(dict(r)) for r in rows]

    def has_layer(self, name: str) -> bool:
        """True if a layer of this name exists — ignoring case, as SQLite does for the
        table names that hold the layers."""
        key = name.lower()
        return any(rec.name.lower() == key for rec in self.layers())

    def layer(self, name: str) -> LayerRecord:
        for rec in self.layers():
            if rec.name == name:
                return rec
        raise ProjectError("layer.not_found", f"项目中没有图层 {name}",
                           f"no layer named {name} in the project", path=self.gpkg)

    def layers_by_role(self, role: str) -> list[LayerRecord]:
        return [rec for rec in self.layers() if rec.role == role]

    def read_layer(self, name: str, columns: list[str] | None = None,
                   bbox: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
        """Read a registered vector layer (in the project CRS), indexed by its GPKG fid."""
        rec = self.layer(name)
        if rec.kind != "vector":
            raise ProjectError("layer.not_vector", f"图层 {name} 不是矢量图层",
                               f"layer {name} is not a vector layer", path=self.gpkg)
        gdf = pyogrio.read_dataframe(self.gpkg, layer=name, columns=columns, bbox=bbox,
                                     fid_as_index=True, use_arrow=True)
        if gdf.crs is None:
            gdf = gdf.set_crs(self.epsg)
        return gdf

    def raster_path(self, name: str) -> Path:
        rec = self.layer(name)
        if rec.kind != "raster" or not rec.raster_path:
            raise ProjectError("layer.not_raster", f"图层 {name} 不是栅格图层",
                               f"layer {name} is not a raster layer", path=self.gpkg)
        return self.folder / rec.raster_path

    def write_vector_layer(self, gdf: gpd.GeoDataFrame, record: LayerRecord,
                           replace: bool = False) -> LayerRecord:
        """Write ``gdf`` (already in the project CRS) as a layer and register it.

        The data is written under a temporary table name first; the switch to the final
        name and the registry row are committed in one SQLite transaction, so the project
        never holds a half-written or unregistered layer under a real name.
        """
        self.guard_write(f"layer:{record.name}")
        if gdf.crs is None or CRS(gdf.crs) != self.crs:
            raise ProjectError("layer.crs_mismatch",
                               f"写入图层 {record.name} 前必须转换到项目坐标系 EPSG:{self.epsg}",
                               f"layer {record.name} must be in the project CRS "
                               f"EPSG:{self.epsg} before writing", path=self.gpkg)
        exists = self.has_layer(record.name)
        if exists and not replace:
            raise ProjectError("layer.exists", f"项目中已有图层 {record.name}",
                               f"the project already has a layer named {record.name}",
                               path=self.gpkg)
        tmp = f"mp_tmp_{uuid.uuid4().hex[:12]}"
        geom_type = record.geometry_type
        kwargs: dict[str, Any] = {}
        if geom_type:
            kwargs["geometry_type"] = geom_type
        with contextlib.closing(self.connect()) as conn:
            had_extensions = table_exists(conn, "gpkg_extensions")
            had_srs = [r[0] for r in conn.execute("SELECT srs_id FROM gpkg_spatial_ref_sys")]
        try:
            pyogrio.write_dataframe(gdf, self.gpkg, layer=tmp, driver="GPKG",
                                    layer_options={"SPATIAL_INDEX": "YES", "FID": "fid"},
                                    **kwargs)
        except Exception as exc:  # noqa: BLE001 — GDAL field/feature errors of all kinds
            # GDAL may have created the table, gpkg_extensions and an SRS row before
            # failing: leave no trace of any of them
            with contextlib.suppress(Exception), self.transaction() as conn:
                drop_gpkg_table(conn, tmp)
                if not had_extensions and not conn.execute(
                        "SELECT count(*) FROM gpkg_extensions").fetchone()[0]:
                    conn.execute("DROP TABLE gpkg_extensions")
                conn.execute(
                    "DELETE FROM gpkg_spatial_ref_sys WHERE srs_id NOT IN "
                    f"({', '.join('?' for _ in had_srs)}) "
                    "AND srs_id NOT IN (SELECT srs_id FROM gpkg_contents "
                    "WHERE srs_id IS NOT NULL) "
                    "AND srs_id NOT IN (SELECT srs_id FROM gpkg_geometry_columns)", had_srs)
            raise ProjectError("layer.write_failed",
                               f"写入图层 {record.name} 失败，项目未作修改：{exc}",
                               f"writing layer {record.name} failed; the project was not "
                               f"modified: {exc}", path=self.gpkg) from None
        try:
            record.feature_count = len(gdf)
            record.imported_at = record.imported_at or _now()
            with self.transaction() as conn:
                if exists:
                    drop_gpkg_table(conn, record.name)
                    conn.execute('DELETE FROM "mp_layers" WHERE lower("name") = lower(?)',
                                 (record.name,))
                rename_gpkg_table(conn, tmp, record.name)
                row = record.to_row()
                keys = ", ".join(f'"{k}"' for k in row)
                conn.execute(f'INSERT INTO "mp_layers" ({keys}) VALUES '
                             f'({", ".join("?" for _ in row)})', list(row.values()))
                self._audit(conn, "layer.replace" if exists else "layer.add", record.name,
                            {"features": record.feature_count, "source": record.source_path,
                             "sha256": record.source_sha256})
        except BaseException:
            with contextlib.suppress(Exception), self.transaction() as conn:
                drop_gpkg_table(conn, tmp)
            raise
        return record

    def register_raster(self, record: LayerRecord) -> LayerRecord:
        self.guard_write(f"raster:{record.name}")
        record.imported_at = record.imported_at or _now()
        with self.transaction() as conn:
            old = conn.execute('SELECT "kind" FROM "mp_layers" WHERE lower("name") = lower(?)',
                               (record.name,)).fetchone()
            if old is not None and old[0] == "vector":
                drop_gpkg_table(conn, record.name)
            conn.execute('DELETE FROM "mp_layers" WHERE lower("name") = lower(?)',
                         (record.name,))
            row = record.to_row()
            keys = ", ".join(f'"{k}"' for k in row)
            conn.execute(f'INSERT INTO "mp_layers" ({keys}) VALUES '
                         f'({", ".join("?" for _ in row)})', list(row.values()))
            self._audit(conn, "raster.add", record.name,
                        {"source": record.source_path, "sha256": record.source_sha256})
        return record

    def remove_layer(self, name: str) -> None:
        self.guard_write(f"layer:{name}")
        rec = self.layer(name)
        with self.transaction() as conn:
            if rec.kind == "vector":
                drop_gpkg_table(conn, name)
            conn.execute('DELETE FROM "mp_layers" WHERE "name" = ?', (name,))
            self._audit(conn, "layer.remove", name, None)
        if rec.kind == "raster" and rec.raster_path:
            (self.folder / rec.raster_path).unlink(missing_ok=True)

    def extent(self) -> tuple[float, float, float, float] | None:
        """Union of the bounds of all vector layers, from gpkg_contents."""
        names = [r.name for r in self.layers() if r.kind == "vector"]
        if not names:
            return None
        with contextlib.closing(self.connect()) as conn:
            q = ('SELECT min(min_x), min(min_y), max(max_x), max(max_y) FROM gpkg_contents '
                 f'WHERE table_name IN ({", ".join("?" for _ in names)})')
            row = conn.execute(q, names).fetchone()
        if row is None or row[0] is None:
            return None
        return tuple(float(v) for v in row)  # type: ignore[return-value]

    def snapshot_state(self) -> dict[str, Any]:
        """A comparable summary of the project (registry rows + table row counts), used by
        tests and callers to prove a refused operation changed nothing."""
        with contextlib.closing(self.connect()) as conn:
            tables = sorted(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'"))
            counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                      for t in tables if not t.startswith("rtree_")}
            layers = [dict(r) for r in conn.execute('SELECT * FROM "mp_layers" ORDER BY fid')]
        rasters = sorted(p.name for p in (self.folder / RASTER_DIR).glob("*"))
        return {"tables": tables, "counts": counts, "layers": layers, "rasters": rasters}

    def __repr__(self) -> str:
        mode = f", mode={self.mode!r}" if self.mode != "edit" else ""
        return f"Project({str(self.folder)!r}, county={self.county!r}, epsg={self.epsg}{mode})"


def _package_version() -> str:
    from multiplan import __version__
    return __version__


def gpkg_geometry_column(conn: sqlite3.Connection, table: str) -> str | None:
    row = conn.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                       (table,)).fetchone()
    return row[0] if row else None


def stored_table_name(conn: sqlite3.Connection, table: str) -> str:
    """The table's name as stored (SQLite matches table names ignoring case)."""
    row = conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                       "AND lower(name) = lower(?)", (table,)).fetchone()
    return row[0] if row else table


def drop_gpkg_table(conn: sqlite3.Connection, table: str) -> None:
    """Drop a GeoPackage feature table with its rtree index and metadata rows."""
    table = stored_table_name(conn, table)
    geom = gpkg_geometry_column(conn, table)
    if geom:
        conn.execute(f'DROP TABLE IF EXISTS "rtree_{table}_{geom}"')
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    for meta in ("gpkg_geometry_columns", "gpkg_ogr_contents", "gpkg_contents"):
        conn.execute(f"DELETE FROM {meta} WHERE lower(table_name) = lower(?)", (table,))
    if table_exists(conn, "gpkg_extensions"):
        conn.execute("DELETE FROM gpkg_extensions WHERE lower(table_name) = lower(?)", (table,))


def table_exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (table,)).fetchone() is not None


def rename_gpkg_table(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Rename a GDAL-written GeoPackage feature table (table, rtree, triggers, metadata)."""
    geom = gpkg_geometry_column(conn, old)
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name IN (?, ?)",
        (old, f"rtree_{old}_{geom}" if geom else old)).fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')
    if geom:
        conn.execute(f'ALTER TABLE "rtree_{old}_{geom}" RENAME TO "rtree_{new}_{geom}"')
    # foreign keys from metadata tables: update the contents row last-in-first-out
    conn.execute("PRAGMA defer_foreign_keys = ON")
    for meta in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_ogr_contents"):
        conn.execute(f"UPDATE {meta} SET table_name = ? WHERE table_name = ?", (new, old))
    conn.execute("UPDATE gpkg_contents SET identifier = ? WHERE table_name = ?", (new, new))
    if table_exists(conn, "gpkg_extensions"):
        conn.execute("UPDATE gpkg_extensions SET table_name = ? WHERE table_name = ?",
                     (new, old))
    for name, sql in triggers:
        new_name = name.replace(old, new)
        new_sql = sql.replace(f'"{old}"', f'"{new}"').replace(old, new)
        new_sql = new_sql.replace(f'"{name}"', f'"{new_name}"', 1)
        conn.execute(new_sql)
