"""质检: the data-quality checklist, and the runner every ``multiplan check`` goes through.

Checks
    Each check is named (``overlaps``, ``gaps``, ``rl_urban_eco`` …), listed with its group,
    Chinese and English title and blocking level in ``resources/standards/qa_checks.json``
    (versioned, checked by :func:`validate_params` on load; no eval), and runs on its own:
    ``run_checks(project, only=["gaps"])``. This module implements the 质检 checks of
    domain.md §8.2; :mod:`.redlines` (三区三线), :mod:`.indicators` (约束性指标, 耕地占补平衡)
    and :mod:`.sansheng` (三生 marking) add theirs to the same registry.

Findings
    A check returns located findings: layer, feature id (GeoPackage fid, plus the layer's
    BSM-like id where it has one), geometry (the feature, the overlap/gap piece, or the
    offending vertices), message in Chinese and English, severity 错误 / 警告 / 提示 and area.
    A check *fails* when it has an error; it is *blocking* when a failure should stop a
    submission (``multiplan check`` then exits non-zero).

Tolerances (project settings, defaults in :data:`SETTING_DEFAULTS`)
    Pieces (overlaps, gaps, parts outside the county) whose mean width 2A/P is below
    ``qa_xy_tolerance_m`` (0.001 m, the XY tolerance 质检 tools assume, domain.md §5.4) are
    numerical noise of shared edges that were not noded identically, and are only counted.
    Pieces under ``qa_min_piece_m2`` (1 m²) are listed as 提示 ("ignored, below 1 m²") rather
    than dropped, as domain.md §5.4 recommends.

How the topology checks stay fast (150k parcels, see benchmarks/bench_checks.py)
    * Overlaps: an STRtree gives the box-overlapping pairs. Pairs whose convex hulls a line
      separates to within the XY tolerance can only share noise (their common part lies in a
      strip narrower than the tolerance) and are set aside by a vectorised separating-axis
      test; on the 150k-parcel sample that leaves 628 of 537 263 pairs. Of the rest, prepared
      ``intersects`` then ``touches`` keep the pairs whose interiors meet, and only those are
      intersected. (The overlay kernel takes two whole layers, not a list of pairs; a layer
      against itself would intersect every pair of neighbours twice.)
    * Gaps: the county's box is cut into tiles. The layer's area per tile is summed from the
      features wholly inside one tile and ``clip_by_rect`` of the features crossing tile lines;
      the county's area per tile comes from the overlay kernel. Only tiles whose sums differ
      (or that hold an overlap or an outside piece) are unioned to locate the gaps — a union
      of the whole layer would take minutes.
    * Outside the county: a feature whose box meets only tiles the county covers is inside;
      the rest (those near the county line) go through the overlay kernel against the
      county's tile pieces, and only features with area left over are differenced.

Storage
    ``mp_qa_errors`` is a GeoPackage feature table (mixed geometry; QGIS shows it) with one
    row per finding; ``mp_qa_runs`` one row per check (status, counts, area, seconds, summary,
    versions). Result layers of checks (``mp_rl_*`` for 三区三线, ``mp_farmland_balance``) and
    attribute tables (``mp_sansheng_stats``, ``mp_indicator_results``) are replaced in the
    same SQLite transaction, so a crash leaves the previous results. A run of some checks
    (``only``) replaces only their rows.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.errors import ShapelyError

from .errors import MultiplanError, StandardsError
from .layers import ROLES, LayerRecord
from .overlay import is_sliver, overlay_intersection, polygonal_parts, sliver_metrics
from .project import (
    Project,
    _now,
    drop_gpkg_table,
    register_attributes_table,
    table_exists,
)
from .tasks import Cancelled, Task, ensure_task

__all__ = [
    "ERRORS_TABLE",
    "RUNS_TABLE",
    "SETTING_DEFAULTS",
    "CheckContext",
    "CheckResult",
    "CheckRun",
    "Findings",
    "QAError",
    "QAParams",
    "available_checks",
    "load_params",
    "read_errors",
    "read_runs",
    "run_checks",
    "validate_params",
]

ERRORS_TABLE = "mp_qa_errors"
RUNS_TABLE = "mp_qa_runs"

#: Settings the checks read, with their defaults (a project stores its own values with
#: ``Project.set_settings``; the sliver and fragment thresholds are project defaults already).
SETTING_DEFAULTS: dict[str, Any] = {
    "qa_xy_tolerance_m": 0.001,
    "qa_min_piece_m2": 1.0,
    "qa_spike_angle_deg": 1.0,
    "area_tolerance_m2": 0.1,
    "expansion_factor_max": 1.3,
    "flexible_share_max": 0.15,
    "sansheng_overrides": {},
    "indicator_targets": {},
    "sliver_max_area_m2": 1000.0,
    "sliver_max_mean_width_m": 5.0,
    "min_fragment_m2": {"construction": 200.0, "agricultural": 400.0, "other": 600.0},
}

#: severity → (Chinese, English)
SEVERITIES: dict[str, tuple[str, str]] = {
    "error": ("错误", "error"), "warning": ("警告", "warning"), "info": ("提示", "info")}
STATUSES: dict[str, tuple[str, str]] = {
    "pass": ("通过", "pass"), "warn": ("警告", "warning"), "fail": ("未通过", "fail"),
    "skip": ("跳过", "skipped"), "error": ("出错", "error")}
GROUPS: dict[str, tuple[str, str]] = {
    "qa": ("质检", "data quality"), "redlines": ("三区三线", "control lines"),
    "indicators": ("指标", "indicators"), "sansheng": ("三生空间", "三生 space")}

_PAIR_CHUNK = 40_000
#: a tile's layer area may differ from its county area by float noise; beyond this it is
#: looked at (the differences of an exactly tiled 150k-parcel layer are ≈ 4e-7 m²)
_TILE_EPS_M2 = 1e-3
_TILES_TARGET = 512


_POLYGON, _MULTIPOLYGON = 3, 6


class QAError(MultiplanError):
    """A check cannot be run as asked (unknown check id …); the CLI reports a usage error."""

    exit_code = 2


# =========================================================================== parameters

@dataclass(frozen=True)
class QAParams:
    """The loaded ``qa_checks.json``."""

    data: dict[str, Any]
    path: str | None = None

    @property
    def version_id(self) -> str:
        return f"{self.data['id']}/{self.data['version']}"

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list(self.data["checks"])

    def check(self, check_id: str) -> dict[str, Any]:
        for c in self.data["checks"]:
            if c["id"] == check_id:
                return c
        raise KeyError(check_id)

    def roles(self, key: str) -> list[str]:
        return list(self.data["roles"][key])

    def fields(self, key: str) -> list[str]:
        return list(self.data["fields"][key])

    @property
    def required_layers(self) -> list[dict[str, Any]]:
        return list(self.data["required_layers"])

    @property
    def redlines(self) -> dict[str, list[str]]:
        return dict(self.data["redlines"])


_HEADER = ("id", "version", "kind", "title", "source", "confidence")
_TOP = set(_HEADER) | {"notes", "checks", "required_layers", "roles", "fields", "redlines"}
_ROLE_KEYS = ("checked", "full_coverage", "within_county", "fragments")
_FIELD_KEYS = ("id", "area", "admin_code")
_REDLINE_KEYS = ("zone_type_fields", "flexible_values", "concentrated_values",
                 "urban_status_fields", "urban_status_prefixes")
_CHECK_ID = re.compile(r"[a-z][a-z0-9_]{1,40}")


def _bad(path: str | None, where: str, zh: str, en: str) -> StandardsError:
    return StandardsError("standards.qa_checks", f"质检参数表 {where}：{zh}",
                          f"QA parameter table, {where}: {en}", path=path)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


def validate_params(data: Any, path: str | None = None) -> None:
    """Check the structure of a ``qa_checks`` table; raise :class:`StandardsError` naming the
    entry at fault. Nothing in the table is ever evaluated."""
    if not isinstance(data, dict):
        raise _bad(path, "顶层", "必须是 JSON 对象", "must be a JSON object")
    for k in _HEADER:
        if k not in data:
            raise _bad(path, "表头", f"缺少 {k}", f"missing header key {k!r}")
    if data["kind"] != "qa_checks":
        raise _bad(path, "表头", "kind 须为 qa_checks", "kind must be 'qa_checks'")
    extra = set(data) - _TOP
    if extra:
        raise _bad(path, "顶层", f"未知的键 {sorted(extra)}", f"unknown keys {sorted(extra)}")
    checks = data.get("checks")
    if not isinstance(checks, list) or not checks:
        raise _bad(path, "checks", "须为非空列表", "must be a non-empty list")
    seen: set[str] = set()
    for i, c in enumerate(checks):
        where = f"checks[{i}]"
        if not isinstance(c, dict):
            raise _bad(path, where, "须为对象", "must be an object")
        if set(c) != {"id", "group", "zh", "en", "blocking"}:
            raise _bad(path, where, "键须为 id, group, zh, en, blocking",
                       "keys must be id, group, zh, en, blocking")
        if not isinstance(c["id"], str) or not _CHECK_ID.fullmatch(c["id"]):
            raise _bad(path, where, f"检查项编号 {c['id']!r} 无效", f"bad check id {c['id']!r}")
        if c["id"] in seen:
            raise _bad(path, where, f"检查项 {c['id']} 重复", f"duplicate check id {c['id']}")
        seen.add(c["id"])
        if c["group"] not in GROUPS:
            raise _bad(path, where, f"分组 {c['group']!r} 无效", f"unknown group {c['group']!r}")
        if not (isinstance(c["zh"], str) and c["zh"] and isinstance(c["en"], str) and c["en"]):
            raise _bad(path, where, "zh/en 须为非空文字", "zh/en must be non-empty text")
        if not isinstance(c["blocking"], bool):
            raise _bad(path, where, "blocking 须为 true/false", "blocking must be true/false")
    req = data.get("required_layers")
    if not isinstance(req, list):
        raise _bad(path, "required_layers", "须为列表", "must be a list")
    for i, r in enumerate(req):
        where = f"required_layers[{i}]"
        if not isinstance(r, dict) or set(r) != {"roles", "zh", "en", "blocking", "fields"}:
            raise _bad(path, where, "键须为 roles, zh, en, blocking, fields",
                       "keys must be roles, zh, en, blocking, fields")
        if not _str_list(r["roles"]) or not r["roles"] or any(x not in ROLES
                                                                for x in r["roles"]):
            raise _bad(path, where, f"图层用途无效：{r['roles']}", f"unknown roles {r['roles']}")
        if not isinstance(r["blocking"], bool):
            raise _bad(path, where, "blocking 须为 true/false", "blocking must be true/false")
        if not isinstance(r["fields"], list) or not all(_str_list(f) and f for f in r["fields"]):
            raise _bad(path, where, "fields 须为字段名列表的列表",
                       "fields must be a list of lists of field names")
    roles = data.get("roles")
    if not isinstance(roles, dict) or set(roles) != set(_ROLE_KEYS):
        raise _bad(path, "roles", f"键须为 {', '.join(_ROLE_KEYS)}",
                   f"keys must be {', '.join(_ROLE_KEYS)}")
    for k, v in roles.items():
        if not _str_list(v) or any(x not in ROLES for x in v):
            raise _bad(path, f"roles.{k}", f"图层用途无效：{v}", f"unknown roles in {v}")
    fields_ = data.get("fields")
    if not isinstance(fields_, dict) or set(fields_) != set(_FIELD_KEYS):
        raise _bad(path, "fields", f"键须为 {', '.join(_FIELD_KEYS)}",
                   f"keys must be {', '.join(_FIELD_KEYS)}")
    for k, v in fields_.items():
        if not _str_list(v):
            raise _bad(path, f"fields.{k}", "须为字段名列表", "must be a list of field names")
    red = data.get("redlines")
    if not isinstance(red, dict) or set(red) != set(_REDLINE_KEYS):
        raise _bad(path, "redlines", f"键须为 {', '.join(_REDLINE_KEYS)}",
                   f"keys must be {', '.join(_REDLINE_KEYS)}")
    for k, v in red.items():
        if not _str_list(v):
            raise _bad(path, f"redlines.{k}", "须为文字列表", "must be a list of text")


def _parse(text: str, path: str | None) -> Any:
    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in pairs:
            if k in d:
                raise ValueError(f"duplicate key {k!r}")
            d[k] = v
        return d

    try:
        return json.loads(text, object_pairs_hook=no_dupes)
    except ValueError as exc:
        raise _bad(path, "JSON", f"不是有效的 JSON：{exc}", f"not valid JSON: {exc}") from None


@cache
def _packaged_params() -> QAParams:
    res = resources.files("multiplan").joinpath("resources", "standards", "qa_checks.json")
    data = _parse(res.read_text(encoding="utf-8"), str(res))
    validate_params(data, str(res))
    return QAParams(data, str(res))


def load_params(path: str | Path | None = None) -> QAParams:
    """The packaged ``qa_checks.json`` (cached), or a user copy at ``path`` (validated)."""
    if path is None:
        return _packaged_params()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(str(p), "文件", f"无法读取：{exc}", f"cannot read: {exc}") from None
    data = _parse(text, str(p))
    validate_params(data, str(p))
    return QAParams(data, str(p))


# =========================================================================== findings

_FINDING_COLUMNS: list[tuple[str, str]] = [
    ("error_id", "TEXT"), ("run_id", "TEXT"), ("check_id", "TEXT"), ("check_zh", "TEXT"),
    ("severity", "TEXT"), ("severity_zh", "TEXT"), ("blocking", "INTEGER"),
    ("layer", "TEXT"), ("feature_fid", "INTEGER"), ("layer_other", "TEXT"),
    ("other_fid", "INTEGER"),
    ("feature_id", "TEXT"), ("township", "TEXT"), ("message_zh", "TEXT"),
    ("message_en", "TEXT"), ("area_m2", "REAL"), ("value", "REAL"), ("created_at", "TEXT"),
]
FINDING_COLUMNS = [c for c, _ in _FINDING_COLUMNS]
_KEYS = ("severity", "layer", "fid", "layer_other", "fid_other", "feature_id", "message_zh",
         "message_en", "area_m2", "value")


class Findings:
    """Located findings of one check, collected column-wise."""

    def __init__(self) -> None:
        self._cols: dict[str, list[Any]] = {k: [] for k in _KEYS}
        self._geoms: list[Any] = []

    def __len__(self) -> int:
        return len(self._geoms)

    def add(self, severity: str, zh: str, en: str, *, layer: str | None = None,
            fid: int | None = None, geometry: Any = None, feature_id: str | None = None,
            layer_other: str | None = None, fid_other: int | None = None,
            area: float | None = None, value: float | None = None) -> None:
        if severity not in SEVERITIES:
            raise ValueError(severity)
        for k, v in (("severity", severity), ("layer", layer), ("fid", fid),
                     ("layer_other", layer_other), ("fid_other", fid_other),
                     ("feature_id", feature_id), ("message_zh", zh), ("message_en", en),
                     ("area_m2", area), ("value", value)):
            self._cols[k].append(v)
        self._geoms.append(geometry)

    def add_many(self, severity: str | Sequence[str], zh: Sequence[str], en: Sequence[str], *,
                 layer: str | None = None, fid: Any = None, geometry: Any = None,
                 feature_id: Any = None, layer_other: str | None = None,
                 fid_other: Any = None, area: Any = None, value: Any = None) -> None:
        n = len(zh)
        if n == 0:
            return

        def col(v: Any) -> list[Any]:
            if v is None or isinstance(v, str):
                return [v] * n
            out = list(np.asarray(v, dtype=object)) if not isinstance(v, list) else list(v)
            if len(out) != n:
                raise ValueError("column length")
            return out

        sev = col(severity)
        for s in set(sev):
            if s not in SEVERITIES:
                raise ValueError(s)
        for k, v in (("severity", sev), ("layer", col(layer)), ("fid", col(fid)),
                     ("layer_other", col(layer_other)), ("fid_other", col(fid_other)),
                     ("feature_id", col(feature_id)), ("message_zh", list(zh)),
                     ("message_en", list(en)), ("area_m2", col(area)), ("value", col(value))):
            self._cols[k].extend(v)
        self._geoms.extend(col(geometry))

    def count(self, severity: str) -> int:
        return sum(1 for s in self._cols["severity"] if s == severity)

    def area(self, severity: str | None = None) -> float:
        total = 0.0
        for s, a in zip(self._cols["severity"], self._cols["area_m2"], strict=True):
            if (severity is None or s == severity) and a is not None and not (
                    isinstance(a, float) and math.isnan(a)):
                total += float(a)
        return total

    def frame(self, crs: Any = None) -> gpd.GeoDataFrame:
        data: dict[str, Any] = {}
        for k in _KEYS:
            v = self._cols[k]
            if k in ("fid", "fid_other"):
                data[k] = pd.array([None if x is None or (isinstance(x, float) and
                                                          math.isnan(x)) else int(x)
                                    for x in v], dtype="Int64")
            elif k in ("area_m2", "value"):
                data[k] = np.asarray([np.nan if x is None else float(x) for x in v],
                                     dtype=np.float64)
            else:
                data[k] = pd.Series([None if x is None else str(x) for x in v], dtype=object)
        geoms = _object_array(self._geoms)
        data["feature_fid"] = data.pop("fid")
        data["other_fid"] = data.pop("fid_other")
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=crs))


# =========================================================================== results

@dataclass
class CheckResult:
    """The outcome of one check."""

    id: str
    group: str
    zh: str
    en: str
    blocking: bool
    status: str = "pass"
    findings: Findings = field(default_factory=Findings)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: CPU time of the process during the check (all threads), for load-independent timing
    cpu_seconds: float = 0.0
    #: result feature tables to store (table name → GeoDataFrame in the project CRS)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    #: attribute tables to store (name → DataFrame) and tables for the report only
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    report_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: (layer, column, fids, values): a column written into a project layer
    column_updates: list[tuple[str, str, np.ndarray, np.ndarray]] = field(default_factory=list)
    #: chart makers: name → callable(path) drawing a PNG (run by the report writer)
    charts: dict[str, Callable[[Path], Any]] = field(default_factory=dict)

    def note(self, zh: str, en: str) -> None:
        self.notes.append({"zh": zh, "en": en})

    @property
    def errors(self) -> int:
        return self.findings.count("error")

    @property
    def warnings(self) -> int:
        return self.findings.count("warning")

    @property
    def infos(self) -> int:
        return self.findings.count("info")

    @property
    def failed(self) -> bool:
        return self.status in ("fail", "error")

    @property
    def status_zh(self) -> str:
        return STATUSES[self.status][0]

    def finish(self) -> None:
        """Set the status from the findings unless the check chose one (skip/error)."""
        if self.status in ("skip", "error"):
            return
        self.status = "fail" if self.errors else "warn" if self.warnings else "pass"

    def to_dict(self, findings: int | None = 20) -> dict[str, Any]:
        d = {"id": self.id, "group": self.group, "zh": self.zh, "en": self.en,
             "blocking": self.blocking, "status": self.status, "status_zh": self.status_zh,
             "errors": self.errors, "warnings": self.warnings, "infos": self.infos,
             "error_area_m2": round(self.findings.area("error"), 3),
             "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
             "summary": _jsonable(self.summary),
             "notes": self.notes}
        if findings:
            fr = self.findings.frame()
            rows = fr.drop(columns="geometry").head(findings)
            d["findings"] = [_jsonable({k: v for k, v in r.items()})
                             for r in rows.to_dict(orient="records")]
        return d


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating | float):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, np.bool_):
        return bool(v)
    if v is pd.NA:
        return None
    return v


@dataclass
class CheckRun:
    """All checks of one ``run_checks`` call."""

    run_id: str
    created_at: str
    project: Project
    results: list[CheckResult]
    versions: dict[str, str]
    settings: dict[str, Any]
    seconds: float = 0.0
    seconds_write: float = 0.0
    seconds_read: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """False when a blocking check failed."""
        return not any(r.blocking and r.failed for r in self.results)

    @property
    def blocking_failures(self) -> list[str]:
        return [r.id for r in self.results if r.blocking and r.failed]

    def result(self, check_id: str) -> CheckResult:
        for r in self.results:
            if r.id == check_id:
                return r
        raise KeyError(check_id)

    def findings(self) -> gpd.GeoDataFrame:
        """Every finding of the run (the rows written to ``mp_qa_errors``)."""
        return _findings_frame(self)

    def to_dict(self, findings: int | None = 20) -> dict[str, Any]:
        return {"run_id": self.run_id, "created_at": self.created_at,
                "project": str(self.project.folder), "county": self.project.county,
                "passed": self.passed, "blocking_failures": self.blocking_failures,
                "versions": self.versions, "settings": _jsonable(self.settings),
                "area_method": self.settings.get("area_method", "planar"),
                "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "seconds_read": round(self.seconds_read, 3),
                "seconds_write": round(self.seconds_write, 3),
                "checks": [r.to_dict(findings) for r in self.results]}


# =========================================================================== context

@dataclass
class LayerData:
    """One layer read once for all checks: attributes, geometry array, fids."""

    record: LayerRecord
    frame: gpd.GeoDataFrame
    geoms: np.ndarray
    fids: np.ndarray
    _area: np.ndarray | None = None
    _unified: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    _ids: np.ndarray | None = None
    id_field: str | None = None

    @property
    def name(self) -> str:
        return self.record.name

    def __len__(self) -> int:
        return len(self.fids)

    @property
    def area(self) -> np.ndarray:
        if self._area is None:
            a = shapely.area(self.geoms)
            self._area = np.where(np.isnan(a), 0.0, a)
        return self._area

    @property
    def polygonal(self) -> bool:
        return (self.record.geometry_type or "").endswith("Polygon")

    def column(self, names: Iterable[str]) -> str | None:
        """The first of ``names`` that is a column of the layer ($code/$name: the registered
        code/name field)."""
        for n in names:
            if n == "$code":
                n = self.record.code_field or ""
            elif n == "$name":
                n = self.record.name_field or ""
            if n and n in self.frame.columns:
                return n
        return None

    def feature_ids(self, id_fields: Sequence[str]) -> np.ndarray:
        if self._ids is None:
            f = self.column(id_fields)
            self.id_field = f
            if f is None:
                self._ids = np.full(len(self), None, dtype=object)
            else:
                self._ids = _texts(self.frame[f])
        return self._ids

    def unified(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(2023 code or None, status, candidates tuple) per feature: from the mp_* columns
        an import leaves, else from a ydyh2023 code field, else status "none"."""
        if self._unified is None:
            from .classification import STATUS_OK, load_scheme

            n = len(self)
            fr = self.frame
            if "mp_code" in fr.columns and "mp_status" in fr.columns:
                status = _texts(fr["mp_status"])
                status[np.equal(status, None)] = "unknown"
                code = _texts(fr["mp_code"])
                code[status != STATUS_OK] = None
                cand_col = (_texts(fr["mp_candidates"]) if "mp_candidates" in fr.columns
                            else np.full(n, None, dtype=object))
                cands = _object_array(_per_unique(
                    cand_col, lambda x: tuple(c for c in (x or "").split(",") if c)))
            elif (self.record.scheme or "").lower() == "ydyh2023" and \
                    self.record.code_field in fr.columns:
                scheme = load_scheme("ydyh2023")
                raw = fr[self.record.code_field].astype(object).to_numpy()
                norm = np.asarray(_per_unique(raw, scheme.normalise), dtype=object)
                ok = np.asarray([c is not None and c in scheme.entries for c in norm])
                code = np.where(ok, norm, None).astype(object)
                status = np.where(ok, STATUS_OK, "unknown").astype(object)
                cands = _object_array([()] * n)
            else:
                code = np.full(n, None, dtype=object)
                status = np.full(n, "none", dtype=object)
                cands = _object_array([()] * n)
            self._unified = (code, status, cands)
        return self._unified

    def construction(self) -> np.ndarray:
        """Planned/current construction land (三大类 建设用地): a definite 2023 code in the
        group, or a pending (待定) mapping whose candidates all are."""
        from .classification import is_construction

        def f(c: str | None, cs: tuple[str, ...]) -> bool:
            if c is not None:
                return is_construction(c)
            return bool(cs) and all(is_construction(x) for x in cs)

        return np.asarray(self.map_classes(f), dtype=bool)

    def map_classes(self, fn: Callable[[str | None, tuple[str, ...]], Any]) -> np.ndarray:
        """``fn(code, candidates)`` per feature, computed once per distinct pair."""
        code, _, cands = self.unified()
        key = np.asarray([c if c is not None else "|" + ",".join(cs)
                          for c, cs in zip(code.tolist(), cands.tolist(), strict=True)],
                         dtype=object)
        codes, uniques = pd.factorize(key, use_na_sentinel=False)

        def call(u: str) -> Any:
            if u.startswith("|"):
                return fn(None, tuple(x for x in u[1:].split(",") if x))
            return fn(u, ())

        return _object_array([call(u) for u in uniques])[codes]

    def code_prefix(self, prefixes: Sequence[str]) -> np.ndarray:
        """Features whose 2023 code (or every pending candidate) starts with a prefix."""
        pre = tuple(prefixes)

        def f(c: str | None, cs: tuple[str, ...]) -> bool:
            if c is not None:
                return c.startswith(pre)
            return bool(cs) and all(x.startswith(pre) for x in cs)

        return np.asarray(self.map_classes(f), dtype=bool)


def _object_array(items: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``items`` (tuples stay elements, not rows)."""
    out = np.empty(len(items), dtype=object)
    for k, v in enumerate(items):
        out[k] = v
    return out


def _text(v: Any) -> str | None:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if v.is_integer():
            return str(int(v))
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    t = str(v).strip()
    return t or None


def _texts(values: Any) -> np.ndarray:
    """:func:`_text` of a whole column, vectorised (an object array of str or None)."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    kind = s.dtype.kind
    if kind == "f":
        a = s.to_numpy(dtype=np.float64)
        out = np.full(len(a), None, dtype=object)
        ok = ~np.isnan(a)
        whole = ok & (a == np.round(a))
        out[whole] = a[whole].astype(np.int64).astype(str).astype(object)
        part = ok & ~whole
        out[part] = a[part].astype(str).astype(object)
        return out
    if kind in "iu":
        return s.to_numpy().astype(str).astype(object)
    obj = s.astype(object)
    if pd.api.types.infer_dtype(obj, skipna=True) in ("string", "empty"):
        out = obj.where(obj.notna(), None).to_numpy(dtype=object, copy=True)
        present = np.flatnonzero(~np.equal(out, None))
        stripped = np.char.strip(out[present].astype(str))
        out[present] = np.where(stripped == "", None, stripped).astype(object)
        return out
    codes, uniques = pd.factorize(obj, use_na_sentinel=True)
    mapped = np.asarray([_text(u) for u in uniques] + [None], dtype=object)
    return mapped[np.where(codes < 0, len(uniques), codes)]


def _per_unique(values: Sequence[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``[fn(v) for v in values]`` computed once per distinct value."""
    arr = values if isinstance(values, np.ndarray) else _object_array(list(values))
    if not len(arr):
        return []
    try:
        codes, uniques = pd.factorize(arr, use_na_sentinel=False)
    except TypeError:  # unhashable values
        return [fn(v) for v in arr]
    # factorize turns None into NaN: both mean "missing" here
    res = _object_array([fn(None if isinstance(u, float) and math.isnan(u) else u)
                         for u in uniques])
    return list(res[codes])


@dataclass
class Tiles:
    """A square grid over the county's box and the county's piece in each tile."""

    x0: float
    y0: float
    size: float
    nx: int
    ny: int
    boxes: np.ndarray
    county_area: np.ndarray
    county_piece: np.ndarray  # shapely geometry or None per tile
    interior: np.ndarray  # tile box covered by the county

    def bounds(self, k: int) -> tuple[float, float, float, float]:
        tx, ty = k % self.nx, k // self.nx
        return (self.x0 + tx * self.size, self.y0 + ty * self.size,
                self.x0 + (tx + 1) * self.size, self.y0 + (ty + 1) * self.size)

    def ranges(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Tile index ranges (clipped to the grid) of boxes ``b`` (n, 4)."""
        tx0 = np.clip(np.floor((b[:, 0] - self.x0) / self.size), 0, self.nx - 1).astype(int)
        tx1 = np.clip(np.floor((b[:, 2] - self.x0) / self.size), 0, self.nx - 1).astype(int)
        ty0 = np.clip(np.floor((b[:, 1] - self.y0) / self.size), 0, self.ny - 1).astype(int)
        ty1 = np.clip(np.floor((b[:, 3] - self.y0) / self.size), 0, self.ny - 1).astype(int)
        return tx0, tx1, ty0, ty1

    def pairs(self, b: np.ndarray, subset: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(feature, tile) pairs of every tile each box of ``b[subset]`` overlaps."""
        idx = np.arange(len(b)) if subset is None else np.asarray(subset)
        if not len(idx):
            return np.empty(0, int), np.empty(0, int)
        tx0, tx1, ty0, ty1 = self.ranges(b[idx])
        wx, wy = tx1 - tx0 + 1, ty1 - ty0 + 1
        cnt = wx * wy
        feat = np.repeat(idx, cnt)
        start = np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.arange(cnt.sum()) - start
        wxr = np.repeat(wx, cnt)
        tx = np.repeat(tx0, cnt) + k % wxr
        ty = np.repeat(ty0, cnt) + k // wxr
        return feat, ty * self.nx + tx


class CheckContext:
    """What the checks share in one run: the project, its settings and parameter table,
    every layer read once, the county geometry and tiles, townships, and per-layer caches
    (overlaps, outside parts) so that a 质检 check and a 三区三线 check on the same layer
    compute them once."""

    def __init__(self, project: Project, params: QAParams | None = None,
                 task: Task | None = None, threads: int = 2) -> None:
        self.project = project
        self.params = params or load_params()
        self.task = ensure_task(task)
        self.threads = max(int(threads), 1)
        self.settings: dict[str, Any] = {**SETTING_DEFAULTS, **project.settings}
        self.records = project.layers()
        self._layers: dict[str, LayerData] = {}
        self.cache: dict[Any, Any] = {}
        self.seconds_read = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ settings
    def setting(self, key: str) -> Any:
        return self.settings.get(key, SETTING_DEFAULTS.get(key))

    @property
    def xy_tol(self) -> float:
        return float(self.setting("qa_xy_tolerance_m"))

    @property
    def min_piece(self) -> float:
        return float(self.setting("qa_min_piece_m2"))

    # ------------------------------------------------------------------ layers
    def record(self, name: str) -> LayerRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(name)

    def vector_records(self, roles: Iterable[str] | None = None,
                       polygon: bool = True) -> list[LayerRecord]:
        want = set(roles) if roles is not None else None
        out = []
        for r in self.records:
            if r.kind != "vector" or (want is not None and r.role not in want):
                continue
            if polygon and not (r.geometry_type or "").endswith("Polygon"):
                continue
            out.append(r)
        return out

    def layers_of_role(self, role: str) -> list[str]:
        return [r.name for r in self.vector_records([role])]

    def layer(self, name: str) -> LayerData:
        if name not in self._layers:
            t = time.perf_counter()
            gdf = self.project.read_layer(name)
            geoms = np.asarray(gdf.geometry.values, dtype=object)
            self._layers[name] = LayerData(self.record(name), gdf, geoms,
                                           gdf.index.to_numpy(dtype=np.int64))
            self.seconds_read += time.perf_counter() - t
        return self._layers[name]

    def feature_ids(self, layer: LayerData) -> np.ndarray:
        return layer.feature_ids(self.params.fields("id"))

    def plan_layers(self) -> list[str]:
        """The plan layers whose construction land is checked: the setting ``plan_layers``,
        else the 国土空间规划 layer(s), else 土地利用规划 and 城乡规划."""
        names = self.setting("plan_layers")
        if names:
            return [n for n in names if any(r.name == n for r in self.records)]
        sp = self.layers_of_role("spatial_plan")
        return sp or self.layers_of_role("land_use_plan") + self.layers_of_role("urban_plan")

    def plan_layer(self) -> str | None:
        """The one plan layer that stands for "the plan" (indicators, 三生): the setting
        ``plan_layer``, else the first 国土空间规划, else the first 土地利用规划."""
        name = self.setting("plan_layer")
        if name and any(r.name == name for r in self.records):
            return str(name)
        for role in ("spatial_plan", "land_use_plan"):
            got = self.layers_of_role(role)
            if got:
                return got[0]
        return None

    def current_layer(self) -> str | None:
        name = self.setting("current_layer")
        if name and any(r.name == name for r in self.records):
            return str(name)
        got = self.layers_of_role("current_use")
        return got[0] if got else None

    # ------------------------------------------------------------------ county
    @property
    def county_layer(self) -> str | None:
        got = self.layers_of_role("admin_boundary")
        return got[0] if got else None

    @property
    def county(self) -> Any:
        """The county (union of the 行政区 layer's features), or None without one."""
        if "county" not in self.cache:
            name = self.county_layer
            if name is None:
                self.cache["county"] = None
            else:
                g = self.layer(name).geoms
                g = g[~shapely.is_missing(g)]
                self.cache["county"] = shapely.union_all(g) if len(g) else None
        return self.cache["county"]

    @property
    def county_area(self) -> float:
        c = self.county
        return float(c.area) if c is not None else float("nan")

    @property
    def tiles(self) -> Tiles | None:
        if "tiles" not in self.cache:
            self.cache["tiles"] = _make_tiles(self.county) if self.county is not None else None
        return self.cache["tiles"]

    # ------------------------------------------------------------------ townships
    def townships_of(self, geoms: Sequence[Any]) -> np.ndarray:
        """The 乡镇 containing each geometry's representative point ("" where none)."""
        from .conflicts import load_townships

        g = np.asarray(geoms, dtype=object)
        out = np.full(len(g), "", dtype=object)
        ok = ~shapely.is_missing(g)
        if not ok.any():
            return out
        ok[ok] = ~shapely.is_empty(g[ok])
        if not ok.any():
            return out
        if "townships" not in self.cache:
            self.cache["townships"] = load_townships(self.project)
        pts = shapely.point_on_surface(g[ok])
        out[ok] = self.cache["townships"].lookup(pts)
        return out

    # ------------------------------------------------------------------ shared geometry
    def overlaps(self, name: str, task: Task | None = None) -> OverlapPieces:
        key = ("overlaps", name)
        if key not in self.cache:
            self.cache[key] = layer_overlaps(self.layer(name).geoms, xy_tol=self.xy_tol,
                                             task=task or self.task, threads=self.threads)
        return self.cache[key]

    def outside(self, name: str, task: Task | None = None) -> OutsideParts | None:
        key = ("outside", name)
        if key not in self.cache:
            if self.county is None:
                self.cache[key] = None
            else:
                lay = self.layer(name)
                self.cache[key] = outside_parts(lay.geoms, lay.area, self.county, self.tiles,
                                                xy_tol=self.xy_tol, task=task or self.task)
        return self.cache[key]


# =========================================================================== geometry helpers

def _parallel(fn: Callable[..., np.ndarray], arr: np.ndarray, threads: int,
              *args: Any) -> np.ndarray:
    """An element-wise shapely function over ``arr`` in ``threads`` chunks (shapely releases
    the GIL, so the chunks run on both cores)."""
    n = len(arr)
    if threads <= 1 or n < 20_000:
        return fn(arr, *args)
    cuts = np.linspace(0, n, threads + 1).astype(int)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qa") as ex:
        parts = list(ex.map(lambda k: fn(arr[cuts[k]:cuts[k + 1]], *args), range(threads)))
    return np.concatenate(parts)


def _noise(geoms: np.ndarray, area: np.ndarray, xy_tol: float) -> np.ndarray:
    """Pieces narrower than the XY tolerance (mean width 2A/P) or smaller than its square."""
    per = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(per > 0, 2.0 * area / per, 0.0)
    return (width < xy_tol) | (area < xy_tol * xy_tol)


def _make_tiles(county: Any, target: int = _TILES_TARGET) -> Tiles:
    x0, y0, x1, y1 = county.bounds
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    size = math.sqrt(w * h / target)
    nx, ny = max(math.ceil(w / size), 1), max(math.ceil(h / size), 1)
    tx, ty = np.meshgrid(np.arange(nx), np.arange(ny))
    tx, ty = tx.ravel(), ty.ravel()
    boxes = shapely.box(x0 + tx * size, y0 + ty * size, x0 + (tx + 1) * size,
                        y0 + (ty + 1) * size)
    res = overlay_intersection(np.asarray([county], dtype=object), boxes, threads=1)
    area = np.zeros(len(boxes))
    piece = np.full(len(boxes), None, dtype=object)
    area[res.b_idx] = res.area
    piece[res.b_idx] = res.geometry
    interior = area >= size * size * (1 - 1e-12)
    return Tiles(x0, y0, size, nx, ny, boxes, area, piece, interior)


def _run_chunks(work: Callable[[int, int], Any], chunks: list[tuple[int, int]], threads: int,
                task: Task, total: int, label: str) -> list[Any]:
    """Run ``work(lo, hi)`` per chunk on a small pool, reporting progress and checking the
    cancel token from the calling thread as chunks finish."""
    outs: list[Any] = [None] * len(chunks)
    if threads <= 1 or len(chunks) <= 1:
        done = 0
        for k, (lo, hi) in enumerate(chunks):
            outs[k] = work(lo, hi)
            done += hi - lo
            task.progress(done / max(total, 1), label)
        return outs
    ex = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qa")
    try:
        futs: dict[Future[Any], int] = {ex.submit(work, lo, hi): k
                                        for k, (lo, hi) in enumerate(chunks)}
        pending = set(futs)
        done = 0
        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for f in finished:
                k = futs[f]
                outs[k] = f.result()
                done += chunks[k][1] - chunks[k][0]
            task.progress(done / max(total, 1), label)
    except BaseException:
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return outs


# --------------------------------------------------------------------------- overlaps

@dataclass
class OverlapPieces:
    """Overlaps within one layer: pieces of ``geoms[i] ∩ geoms[j]`` (i < j, positions)."""

    i: np.ndarray
    j: np.ndarray
    geometry: np.ndarray
    area: np.ndarray
    pairs_checked: int = 0
    noise: int = 0
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    #: box-overlapping pairs set aside because their convex hulls are separated (noise)
    separated: int = 0


_HULL_K = 10  # hulls with more vertices (≈1 % of parcels) skip the separation test


@dataclass
class _Hulls:
    """Convex outlines padded to ``_HULL_K`` vertices: vertices ``V`` (n, K, 2, relative to
    an origin), outward unit edge normals ``N`` (n, K, 2), edge offsets ``O`` = N·V (n, K),
    valid-edge mask ``M``, centres ``C`` (n, 2) and ``ok`` (an outline with 3..K vertices)."""

    V: np.ndarray
    N: np.ndarray
    O: np.ndarray
    M: np.ndarray
    C: np.ndarray
    ok: np.ndarray


def _padded_rings(rings: np.ndarray, origin: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices of closed rings padded to K (repeating the first), their count and ok."""
    K = _HULL_K
    n = len(rings)
    xy, ri = shapely.get_coordinates(rings, return_index=True)
    xy = xy - origin
    cnt = np.bincount(ri, minlength=n)
    m = np.maximum(cnt - 1, 0)  # without the closing vertex
    ok = (m >= 3) & (m <= K)
    start = np.cumsum(cnt) - cnt
    pos = np.arange(len(xy)) - start[ri]
    keep = ok[ri] & (pos < m[ri])
    V = np.zeros((n, K, 2))
    V[ri[keep], pos[keep]] = xy[keep]
    pad = np.arange(K)[None, :] >= m[:, None]
    V = np.where(pad[:, :, None], V[:, :1, :], V)
    return V, m, ok


def _hulls(geoms: np.ndarray, origin: tuple[float, float]) -> _Hulls:
    """Each feature's convex outline: its own exterior ring where that is convex (most
    parcels), else its convex hull."""
    n = len(geoms)
    K = _HULL_K
    org = np.asarray(origin, dtype=np.float64)
    tid = shapely.get_type_id(geoms)
    base = geoms.copy()  # one-part MultiPolygons (as imports store them) as their polygon
    one = np.flatnonzero(tid == _MULTIPOLYGON)
    one = one[shapely.get_num_geometries(geoms[one]) == 1]
    base[one] = shapely.get_geometry(geoms[one], 0)
    simple = np.zeros(n, dtype=bool)
    poly = np.flatnonzero(shapely.get_type_id(base) == _POLYGON)
    simple[poly] = shapely.get_num_interior_rings(base[poly]) == 0
    V = np.zeros((n, K, 2))
    m = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    s_idx = np.flatnonzero(simple)
    V[s_idx], m[s_idx], ok[s_idx] = _padded_rings(base[s_idx], org)
    # convex (all turns one way, collinear allowed)?
    d = np.roll(V, -1, axis=1) - V
    last = np.clip(m - 1, 0, K - 1)
    d[np.arange(n), last] = V[:, 0] - V[np.arange(n), last]
    d2 = np.roll(d, -1, axis=1)
    d2[np.arange(n), last] = d[:, 0]
    cross = d[..., 0] * d2[..., 1] - d[..., 1] * d2[..., 0]
    real = np.arange(K)[None, :] < m[:, None]
    scale = np.hypot(d[..., 0], d[..., 1]) * np.hypot(d2[..., 0], d2[..., 1])
    eps = 1e-9 * scale
    convex = ok & (np.all(~real | (cross >= -eps), axis=1) | np.all(~real | (cross <= eps),
                                                                     axis=1))
    redo = np.flatnonzero(~convex & ~shapely.is_missing(geoms))
    if len(redo):
        hull = shapely.convex_hull(geoms[redo])
        hp = shapely.get_type_id(hull) == _POLYGON
        rings = shapely.get_exterior_ring(np.where(hp, hull, None))
        V[redo], m[redo], ok[redo] = _padded_rings(rings, org)
        ok[redo] &= hp
    nxt = np.roll(V, -1, axis=1)
    last = np.clip(m - 1, 0, K - 1)
    nxt[np.arange(n), last] = V[:, 0]  # the last real edge closes the ring
    d = nxt - V
    length = np.hypot(d[..., 0], d[..., 1])
    pad = np.arange(K)[None, :] >= m[:, None]
    M = ~pad & (length > 0) & ok[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        N = np.stack([d[..., 1], -d[..., 0]], axis=-1) / np.where(length > 0, length, 1.0)[
            ..., None]
    C = (V * ~pad[:, :, None]).sum(axis=1) / np.maximum(m, 1)[:, None]
    inward = ((C[:, None, :] - V) * N).sum(axis=-1) > 0
    N = np.where(inward[..., None], -N, N)
    O = (V * N).sum(axis=-1)
    return _Hulls(V, N, O, M, C, ok)


def _separated(h: _Hulls, i: np.ndarray, j: np.ndarray, tol: float,
               chunk: int = 50_000, axes: int = 2, task: Task | None = None) -> np.ndarray:
    """Pairs whose convex outlines a line separates to within ``tol``: an edge of one with
    every vertex of the other at most ``tol`` inside it. Their common part then lies in a
    strip narrower than ``tol``, so its mean width 2A/P is below ``tol``: noise. Only the
    ``axes`` edges of each side facing the other's centre are tried (a neighbour sharing an
    edge is separated by that edge); a pair not shown separated goes to the exact test."""
    out = np.zeros(len(i), dtype=bool)
    for lo in range(0, len(i), chunk):
        if task is not None:
            task.progress(lo / len(i), "图层内重叠 / overlaps: separating outlines")
        a, b = i[lo:lo + chunk], j[lo:lo + chunk]
        sep = np.zeros(len(a), dtype=bool)
        for x, y in ((a, b), (b, a)):
            nx = h.N[x]
            toward = h.C[y] - h.C[x]
            score = np.where(h.M[x], (nx * toward[:, None, :]).sum(axis=-1), -np.inf)
            top = np.argpartition(-score, axes - 1, axis=1)[:, :axes]
            n_sel = np.take_along_axis(nx, top[:, :, None], axis=1)
            o_sel = np.take_along_axis(h.O[x], top, axis=1)
            m_sel = np.take_along_axis(h.M[x], top, axis=1)
            vy = h.V[y]
            proj = (n_sel[:, :, None, 0] * vy[:, None, :, 0]
                    + n_sel[:, :, None, 1] * vy[:, None, :, 1]).min(axis=2)
            sep |= (m_sel & (proj >= o_sel - tol)).any(axis=1)
        out[lo:lo + chunk] = sep & h.ok[a] & h.ok[b]
    return out


def _interior_pairs(geoms: np.ndarray, i: np.ndarray, j: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    """Of the pairs (i, j): those whose interiors meet, and their intersection."""
    failures: list[tuple[int, int, str]] = []
    u, inv = np.unique(i, return_inverse=True)
    prep = shapely.from_wkb(shapely.to_wkb(geoms[u]))  # private prepared copies
    shapely.prepare(prep)
    gi, gj = prep[inv], geoms[j]
    try:
        hit = np.flatnonzero(shapely.intersects(gi, gj))
        hit = hit[~shapely.touches(gi[hit], gj[hit])]
    except ShapelyError:
        hit_l = []
        for k in range(len(i)):
            try:
                if shapely.intersects(gi[k], gj[k]) and not shapely.touches(gi[k], gj[k]):
                    hit_l.append(k)
            except ShapelyError:
                hit_l.append(k)
        hit = np.asarray(hit_l, dtype=np.int64)
    a, b = geoms[i[hit]], gj[hit]
    try:
        inter = shapely.intersection(a, b)
    except ShapelyError:
        inter = np.full(len(hit), None, dtype=object)
        for k in range(len(hit)):
            try:
                inter[k] = shapely.intersection(a[k], b[k])
            except ShapelyError:
                try:
                    inter[k] = shapely.intersection(shapely.make_valid(a[k]),
                                                    shapely.make_valid(b[k]))
                except ShapelyError as exc:
                    failures.append((int(i[hit[k]]), int(j[hit[k]]), str(exc)))
    return i[hit], j[hit], polygonal_parts(inter), failures


def layer_overlaps(geoms: Sequence[Any], *, xy_tol: float = 0.001, task: Task | None = None,
                   threads: int = 2, chunk: int = _PAIR_CHUNK) -> OverlapPieces:
    """Overlaps between the features of one polygon layer (see the module doc)."""
    task = ensure_task(task)
    g = np.asarray(geoms, dtype=object)
    ok = np.flatnonzero(~shapely.is_missing(g))
    ok = ok[~shapely.is_empty(g[ok])]
    empty = OverlapPieces(np.empty(0, np.int64), np.empty(0, np.int64),
                          np.empty(0, object), np.empty(0))
    if len(ok) < 2:
        return empty
    sub = g[ok]
    tree = shapely.STRtree(sub)
    i, j = tree.query(sub)
    keep = i < j
    i, j = i[keep], j[keep]
    empty.pairs_checked = len(i)
    if not len(i):
        return empty
    n_pairs = len(i)
    task.progress(0.05, "图层内重叠 / overlaps: separating hulls")
    b = shapely.total_bounds(sub)
    hulls = _hulls(sub, (float(b[0]), float(b[1])))
    sep = _separated(hulls, i, j, xy_tol, task=task.sub(0.1, 0.2))
    i, j = i[~sep], j[~sep]
    empty.separated = int(sep.sum())
    task.progress(0.2, "图层内重叠 / overlaps")
    if not len(i):
        return empty
    cuts = list(range(0, len(i), chunk)) + [len(i)]
    chunks = [(cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1)]
    outs = _run_chunks(lambda lo, hi: _interior_pairs(sub, i[lo:hi], j[lo:hi]), chunks,
                       threads, task.sub(0.2, 1.0), len(i), "图层内重叠 / overlaps")
    ii = np.concatenate([o[0] for o in outs]).astype(np.int64)
    jj = np.concatenate([o[1] for o in outs]).astype(np.int64)
    pg = np.concatenate([o[2] for o in outs]) if outs else np.empty(0, object)
    fails = [f for o in outs for f in o[3]]
    area = shapely.area(pg)
    area = np.where(np.isnan(area), 0.0, area)
    real = area > 0
    noise = real & _noise(pg, area, xy_tol)
    keep = real & ~noise
    return OverlapPieces(ok[ii[keep]], ok[jj[keep]], pg[keep], area[keep], n_pairs,
                         int(noise.sum()), [(int(ok[a]), int(ok[b]), m) for a, b, m in fails],
                         int(sep.sum()))


# --------------------------------------------------------------------------- outside

@dataclass
class OutsideParts:
    """Parts of features outside the county: feature positions, geometry, area."""

    idx: np.ndarray
    geometry: np.ndarray
    area: np.ndarray
    noise: int = 0


def outside_parts(geoms: np.ndarray, area: np.ndarray, county: Any, tiles: Tiles | None, *,
                  xy_tol: float = 0.001, task: Task | None = None) -> OutsideParts:
    """The part of each feature that lies outside ``county`` (see the module doc)."""
    task = ensure_task(task)
    g = np.asarray(geoms, dtype=object)
    ok = ~shapely.is_missing(g)
    ok[ok] = ~shapely.is_empty(g[ok])
    idx = np.flatnonzero(ok)
    if tiles is None:
        tiles = _make_tiles(county)
    b = shapely.bounds(g[idx])
    inside_grid = ((b[:, 0] >= tiles.x0) & (b[:, 1] >= tiles.y0)
                   & (b[:, 2] <= tiles.x0 + tiles.nx * tiles.size)
                   & (b[:, 3] <= tiles.y0 + tiles.ny * tiles.size))
    # inside: every tile the feature's box meets lies wholly in the county
    safe = np.zeros(len(idx), dtype=bool)
    grid = np.flatnonzero(inside_grid)
    feat, tile = tiles.pairs(b, grid)
    outside_tile = np.zeros(len(idx), dtype=bool)
    outside_tile[feat[~tiles.interior[tile]]] = True
    safe[grid] = ~outside_tile[grid]
    cand = idx[~safe]
    empty = OutsideParts(np.empty(0, np.int64), np.empty(0, object), np.empty(0))
    if not len(cand):
        return empty
    task.progress(0.1, "县域范围 / outside the county")
    pieces_t = np.flatnonzero(~shapely.is_missing(tiles.county_piece))
    res = overlay_intersection(g[cand], tiles.county_piece[pieces_t], task=task.sub(0.1, 0.8))
    inside = np.bincount(res.a_idx, weights=res.area, minlength=len(cand)).astype(float)
    left = area[cand] - inside
    sus = cand[left > xy_tol * xy_tol]
    if not len(sus):
        return empty
    try:
        diff = shapely.difference(g[sus], county)
    except ShapelyError:
        diff = np.asarray([shapely.difference(shapely.make_valid(x), county) for x in g[sus]],
                          dtype=object)
    diff = polygonal_parts(diff)
    parts, of = shapely.get_parts(diff, return_index=True)
    if not len(parts):
        return empty
    pa = shapely.area(parts)
    noisy = _noise(parts, pa, xy_tol)
    parts, of, pa = parts[~noisy], of[~noisy], pa[~noisy]
    n_noise = int(noisy.sum())
    if not len(parts):
        return OutsideParts(np.empty(0, np.int64), np.empty(0, object), np.empty(0), n_noise)
    feats = np.unique(of)
    geom = np.empty(len(feats), dtype=object)
    counts = np.bincount(np.searchsorted(feats, of), minlength=len(feats))
    for k, f in enumerate(feats):
        sel = parts[of == f]
        geom[k] = sel[0] if counts[k] == 1 else shapely.multipolygons(sel)
    areas = np.bincount(np.searchsorted(feats, of), weights=pa, minlength=len(feats))
    task.progress(1.0, "县域范围 / outside the county")
    return OutsideParts(sus[feats], geom, areas, n_noise)


# --------------------------------------------------------------------------- gaps

@dataclass
class GapPieces:
    geometry: np.ndarray
    area: np.ndarray
    tiles_unioned: int = 0
    noise: int = 0


def coverage_gaps(geoms: np.ndarray, area: np.ndarray, tiles: Tiles, *, xy_tol: float = 0.001,
                  extra: Sequence[np.ndarray] = (), task: Task | None = None) -> GapPieces:
    """Parts of the county covered by no feature of a full-coverage layer.

    ``extra`` are arrays of geometries already known to disturb the area balance of a tile
    (overlap pieces, parts outside the county); tiles they touch are always unioned.
    """
    task = ensure_task(task)
    g = np.asarray(geoms, dtype=object)
    ok = ~shapely.is_missing(g)
    ok[ok] = ~shapely.is_empty(g[ok])
    idx = np.flatnonzero(ok)
    nt = tiles.nx * tiles.ny
    b = shapely.bounds(g[idx])
    tx0, tx1, ty0, ty1 = tiles.ranges(b)
    single = (tx0 == tx1) & (ty0 == ty1)
    sums = np.bincount((ty0 * tiles.nx + tx0)[single], weights=area[idx[single]],
                       minlength=nt).astype(np.float64)  # (an empty bincount is int)
    feat, tile = tiles.pairs(b, np.flatnonzero(~single))
    feat = idx[feat]
    order = np.argsort(tile, kind="stable")
    feat, tile = feat[order], tile[order]
    starts = np.searchsorted(tile, np.arange(nt + 1))
    busy = np.flatnonzero(starts[1:] > starts[:-1])
    for n_done, k in enumerate(busy):
        if n_done % 64 == 0:
            task.progress(0.3 * n_done / len(busy), "缝隙 / gaps: area per tile")
        fs = g[feat[starts[k]:starts[k + 1]]]
        clipped = shapely.clip_by_rect(fs, *tiles.bounds(int(k)))
        sums[k] += float(np.nansum(shapely.area(clipped)))
    task.progress(0.3, "缝隙 / gaps: area per tile")
    flagged = np.abs(tiles.county_area - sums) > _TILE_EPS_M2
    for arr in extra:
        arr = np.asarray(arr, dtype=object)
        arr = arr[~shapely.is_missing(arr)] if len(arr) else arr
        if len(arr):
            _, et = tiles.pairs(shapely.bounds(arr))
            flagged[et] = True
    flagged &= tiles.county_area > 0
    # features per flagged tile (all of them: those wholly inside and those crossing)
    all_feat, all_tile = tiles.pairs(b)
    all_feat = idx[all_feat]
    sel = flagged[all_tile]
    all_feat, all_tile = all_feat[sel], all_tile[sel]
    order = np.argsort(all_tile, kind="stable")
    all_feat, all_tile = all_feat[order], all_tile[order]
    pieces: list[Any] = []
    flagged_idx = np.flatnonzero(flagged)
    for n_done, k in enumerate(flagged_idx):
        task.progress(0.3 + 0.6 * n_done / max(len(flagged_idx), 1), "缝隙 / gaps: locating")
        lo, hi = np.searchsorted(all_tile, [k, k + 1])
        county_t = tiles.county_piece[k]
        if hi == lo:
            pieces.append(county_t)
            continue
        clip = overlay_intersection(g[all_feat[lo:hi]],
                                    np.asarray([shapely.box(*tiles.bounds(int(k)))], dtype=object),
                                    threads=1)
        cover = _union(clip.geometry, xy_tol)
        try:
            gap = shapely.difference(county_t, cover)
        except ShapelyError:
            gap = shapely.difference(county_t, cover, grid_size=xy_tol)
        pieces.append(gap)
    if not pieces:
        return GapPieces(np.empty(0, object), np.empty(0), len(flagged_idx))
    parts = shapely.get_parts(polygonal_parts(np.asarray(pieces, dtype=object)))
    parts = parts[~shapely.is_missing(parts)]
    pa = shapely.area(parts)
    noisy = _noise(parts, pa, xy_tol)
    parts = parts[~noisy]
    if not len(parts):
        return GapPieces(np.empty(0, object), np.empty(0), len(flagged_idx), int(noisy.sum()))
    merged = shapely.get_parts(_union(parts, xy_tol))  # join gaps cut by tile lines
    merged = merged[shapely.get_type_id(merged) == _POLYGON]
    ma = shapely.area(merged)
    task.progress(1.0, "缝隙 / gaps")
    order = np.lexsort((shapely.bounds(merged)[:, 1], shapely.bounds(merged)[:, 0]))
    return GapPieces(merged[order], ma[order], len(flagged_idx), int(noisy.sum()))


def _union(geoms: np.ndarray, grid: float) -> Any:
    try:
        return shapely.union_all(geoms)
    except ShapelyError:
        try:
            return shapely.union_all(shapely.make_valid(geoms))
        except ShapelyError:
            return shapely.union_all(geoms, grid_size=grid)


# --------------------------------------------------------------------------- vertices

def vertex_problems(geoms: np.ndarray, *, xy_tol: float, spike_deg: float,
                    polygons: bool = True, lines: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[dict[int, list[tuple[float, float]]],
                               dict[int, list[tuple[float, float]]]]:
    """Duplicate vertices (consecutive vertices closer than ``xy_tol``) and spikes (an
    angle under ``spike_deg`` between two segments each at least ``xy_tol`` long) per
    feature position: ``({pos: [(x, y), …]}, {pos: [(x, y), …]})``."""
    g = np.asarray(geoms, dtype=object)
    dup: dict[int, list[tuple[float, float]]] = {}
    spk: dict[int, list[tuple[float, float]]] = {}
    if lines is not None:  # rings and their feature positions, computed by the caller
        lines, feat_of_line = lines
    else:
        ok = ~shapely.is_missing(g)
        idx = np.flatnonzero(ok)
        if not len(idx):
            return dup, spk
        parts, part_of = shapely.get_parts(g[idx], return_index=True)
        if polygons:
            pt = shapely.get_type_id(parts) == _POLYGON
            parts, part_of = parts[pt], part_of[pt]
            lines, line_of = shapely.get_rings(parts, return_index=True)
            feat_of_line = idx[part_of[line_of]]
        else:
            feat_of_line = idx[part_of]
            lines = parts
    if not len(lines):
        return dup, spk
    xy, li = shapely.get_coordinates(lines, return_index=True)
    if len(xy) < 2:
        return dup, spk
    same = li[1:] == li[:-1]
    seg = np.hypot(*(xy[1:] - xy[:-1]).T)
    bad = np.flatnonzero(same & (seg < xy_tol))
    for k in bad:
        dup.setdefault(int(feat_of_line[li[k]]), []).append((float(xy[k + 1, 0]),
                                                             float(xy[k + 1, 1])))
    if not polygons or spike_deg <= 0:
        return dup, spk
    n = np.bincount(li, minlength=len(lines))
    start = np.cumsum(n) - n
    m = n - 1  # closed rings: drop the repeated closing vertex
    keep = np.ones(len(xy), dtype=bool)
    keep[(start + n - 1)[n > 0]] = False
    P, ring = xy[keep], li[keep]
    mr = np.repeat(m, np.maximum(m, 0))
    st = np.repeat(np.cumsum(np.maximum(m, 0)) - np.maximum(m, 0), np.maximum(m, 0))
    pos = np.arange(len(P)) - st
    valid = mr >= 3
    prev = st + (pos - 1) % np.maximum(mr, 1)
    nxt = st + (pos + 1) % np.maximum(mr, 1)
    v1, v2 = P[prev] - P, P[nxt] - P
    l1, l2 = np.hypot(*v1.T), np.hypot(*v2.T)
    valid &= (l1 >= xy_tol) & (l2 >= xy_tol)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.clip((v1 * v2).sum(axis=1) / (l1 * l2), -1.0, 1.0)
    ang = np.degrees(np.arccos(cos))
    hits = np.flatnonzero(valid & (ang < spike_deg))
    for k in hits:
        spk.setdefault(int(feat_of_line[ring[k]]), []).append((float(P[k, 0]), float(P[k, 1])))
    return dup, spk


# =========================================================================== the 质检 checks

def _fmt_ids(fid: Any, fid_label: Any) -> tuple[str, str]:
    if fid_label:
        return f"要素 {fid}（{fid_label}）", f"feature {fid} ({fid_label})"
    return f"要素 {fid}", f"feature {fid}"


def _checked_records(ctx: CheckContext, polygon: bool = True) -> list[LayerRecord]:
    return ctx.vector_records(ctx.params.roles("checked"), polygon=polygon)


def check_required_layers(ctx: CheckContext, res: CheckResult) -> None:
    """Required layers (by role) and their fields (domain.md §8.2 item 1)."""
    present = []
    for req in ctx.params.required_layers:
        sev = "error" if req["blocking"] else "warning"
        names = [n for role in req["roles"] for n in ctx.layers_of_role(role)]
        roles_zh = "或".join(ROLES[r][0] for r in req["roles"])
        if not names:
            res.findings.add(sev, f"缺少必备图层：{req['zh']}（图层用途：{roles_zh}）",
                             f"required layer missing: {req['en']} (role: "
                             f"{' or '.join(req['roles'])})")
            continue
        present.append(names[0])
        for name in names:
            rec = ctx.record(name)
            cols = _layer_columns(ctx.project, name)
            for alts in req["fields"]:
                found = False
                shown = []
                for f in alts:
                    real = (rec.code_field if f == "$code" else rec.name_field if f == "$name"
                            else f)
                    if f in ("$code", "$name") and not real:
                        shown.append("地类代码字段" if f == "$code" else "地类名称字段")
                        continue
                    shown.append(real)
                    if real in cols:
                        found = True
                        break
                if not found:
                    res.findings.add(sev, f"图层“{name}”缺少必备字段：{' 或 '.join(shown)}",
                                     f"layer {name} lacks a required field: "
                                     f"{' or '.join(shown)}", layer=name)
    res.summary = {"layers_present": present}


def _layer_columns(project: Project, name: str) -> list[str]:
    with contextlib.closing(project.connect()) as conn:
        return [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]


def check_crs(ctx: CheckContext, res: CheckResult) -> None:
    """Project CRS is a CGCS2000 3° Gauss-Krüger zone that fits the county; every layer is
    stored in it (domain.md §8.2 item 2)."""
    from . import crs as crsmod

    epsg = ctx.project.epsg
    info = crsmod.gk_info(epsg)
    if info is None or info.degrees != 3:
        res.findings.add("error", f"项目坐标系 EPSG:{epsg} 不是 CGCS2000 3° 高斯-克吕格投影带",
                         f"the project CRS EPSG:{epsg} is not a CGCS2000 3° Gauss-Krüger zone")
    with contextlib.closing(ctx.project.connect()) as conn:
        srs = {r[0]: r[1] for r in conn.execute(
            "SELECT table_name, srs_id FROM gpkg_geometry_columns")}
    layers = {}
    for rec in ctx.records:
        if rec.kind != "vector":
            continue
        s = srs.get(rec.name)
        layers[rec.name] = s
        if s != epsg:
            res.findings.add("error", f"图层“{rec.name}”的坐标系 EPSG:{s} 与项目坐标系 EPSG:{epsg} 不一致",
                             f"layer {rec.name} is stored in EPSG:{s}, not the project CRS "
                             f"EPSG:{epsg}", layer=rec.name, value=s)
        if rec.crs_assumed:
            res.findings.add("warning", f"图层“{rec.name}”的源坐标系是导入时确认的假定（{rec.source_crs}）",
                             f"the source CRS of layer {rec.name} was an assumption confirmed "
                             f"on import ({rec.source_crs})", layer=rec.name)
    county = ctx.county
    if info is not None and county is not None:
        from pyproj import Transformer

        c = county.centroid
        lon, _ = Transformer.from_crs(epsg, 4490, always_xy=True).transform(c.x, c.y)
        off = abs(lon - info.central_meridian)
        res.summary["county_longitude"] = round(lon, 4)
        if off > 1.5 + 0.1:
            res.findings.add("warning", f"县域中心经度 {lon:.2f}° 距投影带中央经线 {info.central_meridian}° "
                             f"{off:.2f}°，超出 3° 带的半带宽",
                             f"the county's central longitude {lon:.2f}° is {off:.2f}° from the "
                             f"zone's central meridian {info.central_meridian}°, beyond half a "
                             f"3° zone", value=off)
    res.summary.update({"project_epsg": epsg, "layers": layers})


def check_geometry_valid(ctx: CheckContext, res: CheckResult) -> None:
    """Null and empty geometries, self-intersection and other invalidity, empty or zero-area
    parts and empty rings (errors); duplicate and spike vertices (warnings)."""
    tol = ctx.xy_tol
    spike = float(ctx.setting("qa_spike_angle_deg"))
    recs = _checked_records(ctx, polygon=False)
    per_layer: dict[str, dict[str, int]] = {}
    for n_l, rec in enumerate(recs):
        ctx.task.progress(n_l / max(len(recs), 1), f"几何有效性 / geometry: {rec.name}")
        lay = ctx.layer(rec.name)
        g = lay.geoms
        ids = ctx.feature_ids(lay)
        poly = lay.polygonal
        counts = {"null": 0, "empty": 0, "invalid": 0, "empty_parts": 0, "duplicate": 0,
                  "spike": 0}
        missing = shapely.is_missing(g)
        for k in np.flatnonzero(missing):
            zh, en = _fmt_ids(lay.fids[k], ids[k])
            res.findings.add("error", f"{zh}没有几何", f"{en} has no geometry", layer=rec.name,
                             fid=int(lay.fids[k]), feature_id=ids[k])
        counts["null"] = int(missing.sum())
        present = np.flatnonzero(~missing)
        empty = present[shapely.is_empty(g[present])]
        for k in empty:
            zh, en = _fmt_ids(lay.fids[k], ids[k])
            res.findings.add("error", f"{zh}的几何为空", f"{en} has an empty geometry",
                             layer=rec.name, fid=int(lay.fids[k]), feature_id=ids[k])
        counts["empty"] = len(empty)
        present = np.setdiff1d(present, empty)
        sub = ctx.task.sub(n_l / max(len(recs), 1), (n_l + 1) / max(len(recs), 1))
        valid = _parallel(shapely.is_valid, g[present], ctx.threads)
        sub.progress(0.3, f"几何有效性 / geometry: {rec.name}")
        bad = present[~valid]
        if len(bad):
            reasons = shapely.is_valid_reason(g[bad])
            for k, why in zip(bad, reasons, strict=True):
                zh, en = _fmt_ids(lay.fids[k], ids[k])
                loc = _reason_point(why)
                kind_zh = _REASON_ZH.get(why.split("[")[0].strip(), "几何无效")
                res.findings.add("error", f"{zh}几何无效：{kind_zh}（{why}）",
                                 f"{en} is invalid: {why}", layer=rec.name,
                                 fid=int(lay.fids[k]), feature_id=ids[k],
                                 geometry=loc if loc is not None else g[k])
        counts["invalid"] = len(bad)
        lines = None
        if poly and len(present):
            parts, of = shapely.get_parts(g[present], return_index=True)
            pa = shapely.area(parts)
            zero = shapely.is_empty(parts) | (pa <= tol * tol)
            polys = shapely.get_type_id(parts) == _POLYGON
            rings, rof = shapely.get_rings(parts, return_index=True)
            lines = (rings, present[of[rof]]) if polys.all() else None
            empty_ring = np.zeros(len(parts), dtype=bool)
            er = rof[shapely.is_empty(rings)]
            empty_ring[er] = True
            flag = zero | empty_ring
            for f in np.unique(of[flag]):
                k = present[f]
                nz = int((zero & (of == f)).sum())
                ner = int((empty_ring & (of == f)).sum())
                zh, en = _fmt_ids(lay.fids[k], ids[k])
                what_zh = "、".join(x for x in (f"{nz} 个空的或零面积的部分" if nz else "",
                                                  f"{ner} 个空环" if ner else "") if x)
                what_en = ", ".join(x for x in (f"{nz} empty or zero-area part(s)" if nz else "",
                                                f"{ner} empty ring(s)" if ner else "") if x)
                res.findings.add("error", f"{zh}含有{what_zh}", f"{en} has {what_en}",
                                 layer=rec.name, fid=int(lay.fids[k]), feature_id=ids[k],
                                 geometry=g[k], value=nz + ner)
                counts["empty_parts"] += 1
        sub.progress(0.6, f"几何有效性 / geometry: {rec.name}")
        dup, spk = vertex_problems(g, xy_tol=tol, spike_deg=spike, polygons=poly, lines=lines)
        for kind, found in (("duplicate", dup), ("spike", spk)):
            for k, pts in sorted(found.items()):
                zh, en = _fmt_ids(lay.fids[k], ids[k])
                if kind == "duplicate":
                    mz = f"{zh}有 {len(pts)} 处重复节点（相邻节点距离小于 {tol:g} m）"
                    me = (f"{en} has {len(pts)} duplicate vertices (consecutive vertices "
                          f"closer than {tol:g} m)")
                else:
                    mz = f"{zh}有 {len(pts)} 处尖刺（夹角小于 {spike:g}°）"
                    me = f"{en} has {len(pts)} spike vertices (angle under {spike:g}°)"
                res.findings.add("warning", mz, me, layer=rec.name, fid=int(lay.fids[k]),
                                 feature_id=ids[k], geometry=shapely.multipoints(pts),
                                 value=len(pts))
            counts[kind] = len(found)
        per_layer[rec.name] = counts
    res.summary = {"layers": per_layer, "xy_tolerance_m": tol, "spike_angle_deg": spike}


_REASON_ZH = {"Self-intersection": "自相交", "Ring Self-intersection": "环自相交",
              "Too few points": "节点过少", "Interior is disconnected": "内部不连通",
              "Hole lies outside shell": "洞在外环之外", "Nested holes": "洞嵌套",
              "Nested shells": "外环嵌套", "Duplicate Rings": "重复的环",
              "Invalid Coordinate": "坐标无效", "Ring is not closed": "环未闭合"}


def _reason_point(why: str) -> Any:
    m = re.search(r"\[\s*([-0-9.eE+]+)\s+([-0-9.eE+]+)", why)
    if not m:
        return None
    try:
        return shapely.Point(float(m.group(1)), float(m.group(2)))
    except ValueError:
        return None


def _piece_findings(res: CheckResult, ctx: CheckContext, severity_big: str, layer: str,
                    fids: np.ndarray, ids: np.ndarray, geoms: np.ndarray, areas: np.ndarray,
                    zh: Sequence[str], en: Sequence[str], *,
                    fid_other: np.ndarray | None = None, layer_other: str | None = None
                    ) -> tuple[int, float, int, float]:
    """Findings for pieces: ``severity_big`` at or above the minimum piece area, 提示 below.
    Returns (count big, area big, count small, area small)."""
    small = areas < ctx.min_piece
    sev = np.where(small, "info", severity_big).tolist()
    zhs = [zh[k] + (f"（小于 {ctx.min_piece:g} m²，仅提示）" if small[k] else "")
           for k in range(len(areas))]
    ens = [en[k] + (f" (below {ctx.min_piece:g} m², listed only)" if small[k] else "")
           for k in range(len(areas))]
    res.findings.add_many(sev, zhs, ens, layer=layer, fid=fids, feature_id=ids,
                          geometry=geoms, area=areas, fid_other=fid_other,
                          layer_other=layer_other)
    return (int((~small).sum()), float(areas[~small].sum()), int(small.sum()),
            float(areas[small].sum()))


def check_overlaps(ctx: CheckContext, res: CheckResult) -> None:
    """Overlaps between features of the same polygon layer (domain.md §8.2 item 4)."""
    recs = _checked_records(ctx)
    out: dict[str, Any] = {}
    for n_l, rec in enumerate(recs):
        sub = ctx.task.sub(n_l / len(recs), (n_l + 1) / len(recs))
        lay = ctx.layer(rec.name)
        ov = ctx.overlaps(rec.name, task=sub)
        ids = ctx.feature_ids(lay)
        fa, fb = lay.fids[ov.i], lay.fids[ov.j]
        ia, ib = ids[ov.i], ids[ov.j]
        zh = [f"图层“{rec.name}”{_fmt_ids(fa[k], ia[k])[0]}与{_fmt_ids(fb[k], ib[k])[0]}重叠 "
              f"{ov.area[k]:,.2f} m²" for k in range(len(fa))]
        en = [f"layer {rec.name}: {_fmt_ids(fa[k], ia[k])[1]} overlaps "
              f"{_fmt_ids(fb[k], ib[k])[1]} by {ov.area[k]:,.2f} m²" for k in range(len(fa))]
        c, a, cs, as_ = _piece_findings(res, ctx, "error", rec.name, fa, ia, ov.geometry,
                                        ov.area, zh, en, fid_other=fb, layer_other=rec.name)
        for a_pos, b_pos, msg in ov.failures:
            res.findings.add("error", f"图层“{rec.name}”要素 {lay.fids[a_pos]} 与要素 "
                             f"{lay.fids[b_pos]} 无法求交：{msg}",
                             f"layer {rec.name}: features {lay.fids[a_pos]} and "
                             f"{lay.fids[b_pos]} cannot be intersected: {msg}",
                             layer=rec.name, fid=int(lay.fids[a_pos]),
                             fid_other=int(lay.fids[b_pos]))
        out[rec.name] = {"pairs_checked": ov.pairs_checked, "overlaps": c,
                         "overlap_area_m2": round(a, 4), "below_min": cs,
                         "below_min_area_m2": round(as_, 4), "noise_pieces": ov.noise,
                         "separated_pairs": ov.separated}
    res.summary = {"layers": out, "xy_tolerance_m": ctx.xy_tol,
                   "min_piece_m2": ctx.min_piece}


def check_gaps(ctx: CheckContext, res: CheckResult) -> None:
    """Gaps of the full-coverage layers (现状, 规划用地, 规划分区, 乡镇界) against the county
    boundary (domain.md §8.2 item 4)."""
    if ctx.county is None:
        res.status = "skip"
        res.note("没有行政区图层，无法检查缝隙", "no administrative boundary layer: gaps not checked")
        return
    recs = ctx.vector_records(ctx.params.roles("full_coverage"))
    out: dict[str, Any] = {}
    for n_l, rec in enumerate(recs):
        sub = ctx.task.sub(n_l / len(recs), (n_l + 1) / len(recs))
        lay = ctx.layer(rec.name)
        # without the overlap pieces, tiles where an overlap and a gap cancel are missed
        extra = [ctx.overlaps(rec.name, task=sub.sub(0.0, 0.4)).geometry]
        outside = ctx.outside(rec.name, task=sub.sub(0.4, 0.5))
        if outside is not None:
            extra.append(outside.geometry)
        gaps = coverage_gaps(lay.geoms, lay.area, ctx.tiles, xy_tol=ctx.xy_tol, extra=extra,
                             task=sub.sub(0.5, 1.0))
        n = len(gaps.area)
        zh = [f"图层“{rec.name}”在县域内有缝隙（无图斑覆盖）{x:,.2f} m²" for x in gaps.area]
        en = [f"layer {rec.name} leaves a gap of {x:,.2f} m² in the county" for x in gaps.area]
        c, a, cs, as_ = _piece_findings(res, ctx, "error", rec.name, np.full(n, None),
                                        np.full(n, None), gaps.geometry, gaps.area, zh, en)
        out[rec.name] = {"gaps": c, "gap_area_m2": round(a, 4), "below_min": cs,
                         "below_min_area_m2": round(as_, 4),
                         "tiles_unioned": gaps.tiles_unioned, "noise_pieces": gaps.noise}
    res.summary = {"layers": out, "county_area_m2": round(ctx.county_area, 3),
                   "tiles": ctx.tiles.nx * ctx.tiles.ny if ctx.tiles else 0}


def check_outside_county(ctx: CheckContext, res: CheckResult) -> None:
    """Features (or parts) outside the county boundary (domain.md §8.2 item 5)."""
    if ctx.county is None:
        res.status = "skip"
        res.note("没有行政区图层，无法检查", "no administrative boundary layer: not checked")
        return
    recs = ctx.vector_records(ctx.params.roles("within_county"))
    res.summary = {"layers": outside_findings(ctx, res, recs, "error")}


def outside_findings(ctx: CheckContext, res: CheckResult, recs: list[LayerRecord],
                     severity: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n_l, rec in enumerate(recs):
        sub = ctx.task.sub(n_l / len(recs), (n_l + 1) / len(recs))
        lay = ctx.layer(rec.name)
        op = ctx.outside(rec.name, task=sub)
        ids = ctx.feature_ids(lay)
        f, i = lay.fids[op.idx], ids[op.idx]
        zh = [f"图层“{rec.name}”{_fmt_ids(f[k], i[k])[0]}有 {op.area[k]:,.2f} m² 位于县域范围外"
              for k in range(len(f))]
        en = [f"layer {rec.name}: {_fmt_ids(f[k], i[k])[1]} lies outside the county by "
              f"{op.area[k]:,.2f} m²" for k in range(len(f))]
        c, a, cs, as_ = _piece_findings(res, ctx, severity, rec.name, f, i, op.geometry,
                                        op.area, zh, en)
        out[rec.name] = {"features": c, "outside_area_m2": round(a, 4), "below_min": cs,
                         "below_min_area_m2": round(as_, 4), "noise_pieces": op.noise}
    return out


_GROUP_ZH = {"construction": "建设用地", "agricultural": "农用地", "other": "其他用地"}
_GROUP_EN = {"construction": "construction land", "agricultural": "agricultural land",
             "other": "other land"}


def fragment_groups(lay: LayerData) -> np.ndarray:
    """Class group per feature for the minimum mapping area: construction (三大类 建设用地),
    agricultural (农用地), other (everything else, and layers without codes). A pending code
    takes the group with the smallest minimum among its candidates."""
    from .classification import load_scheme

    scheme = load_scheme("ydyh2023")

    def group_of(c: str) -> str:
        e = scheme.get(c)
        if e is None:
            return "other"
        if e.is_construction:
            return "construction"
        return "agricultural" if e.category == "农用地" else "other"

    rank = {"construction": 0, "agricultural": 1, "other": 2}

    def f(c: str | None, cs: tuple[str, ...]) -> str:
        if c is not None:
            return group_of(c)
        if cs:
            return min((group_of(x) for x in cs), key=rank.__getitem__)
        return "other"

    return lay.map_classes(f)


def check_fragments(ctx: CheckContext, res: CheckResult) -> None:
    """Patches under the minimum mapping area of their class group (domain.md §5.4: 三调
    建设用地 200 m², 农用地 400 m², 其他 600 m²; project setting ``min_fragment_m2``)."""
    mins = {**SETTING_DEFAULTS["min_fragment_m2"], **dict(ctx.setting("min_fragment_m2"))}
    out: dict[str, Any] = {}
    for rec in ctx.vector_records(ctx.params.roles("fragments")):
        lay = ctx.layer(rec.name)
        grp = fragment_groups(lay)
        limit = np.asarray([float(mins[gname]) for gname in grp.tolist()])
        area = lay.area
        hit = np.flatnonzero((area < limit) & ~shapely.is_missing(lay.geoms))
        ids = ctx.feature_ids(lay)
        zh = [f"{_fmt_ids(lay.fids[k], ids[k])[0]}面积 {area[k]:,.1f} m²，小于"
              f"{_GROUP_ZH[grp[k]]}最小上图面积 {limit[k]:g} m²" for k in hit]
        en = [f"{_fmt_ids(lay.fids[k], ids[k])[1]}: {area[k]:,.1f} m², under the minimum "
              f"mapping area of {_GROUP_EN[grp[k]]} ({limit[k]:g} m²)" for k in hit]
        res.findings.add_many("warning", zh, en, layer=rec.name, fid=lay.fids[hit],
                              feature_id=ids[hit], geometry=lay.geoms[hit], area=area[hit],
                              value=limit[hit])
        out[rec.name] = {g: int(((grp == g) & np.isin(np.arange(len(lay)), hit)).sum())
                         for g in mins}
    res.summary = {"layers": out, "min_fragment_m2": mins}


def check_slivers(ctx: CheckContext, res: CheckResult) -> None:
    """Thin patches by the §5.4 sliver rule: scale test (area ≤ ``sliver_max_area_m2`` or
    mean width ≤ ``sliver_max_mean_width_m``) and shape test (≥ 2 of compactness ≤ 0.25,
    shape index ≥ 2, P²/A ≥ 40)."""
    max_area = float(ctx.setting("sliver_max_area_m2"))
    max_width = float(ctx.setting("sliver_max_mean_width_m"))
    out: dict[str, int] = {}
    for rec in ctx.vector_records(ctx.params.roles("fragments")):
        lay = ctx.layer(rec.name)
        ok = ~shapely.is_missing(lay.geoms)
        m = sliver_metrics(lay.geoms, lay.area)
        sl = is_sliver(m["area"], m["mean_width"], max_area=max_area, max_width=max_width,
                       compactness=m["compactness"]) & ok & (lay.area > 0)
        hit = np.flatnonzero(sl)
        ids = ctx.feature_ids(lay)
        zh = [f"{_fmt_ids(lay.fids[k], ids[k])[0]}为狭长图斑：面积 {m['area'][k]:,.1f} m²，"
              f"平均宽度 {m['mean_width'][k]:.2f} m，紧凑度 {m['compactness'][k]:.3f}" for k in hit]
        en = [f"{_fmt_ids(lay.fids[k], ids[k])[1]} is a sliver: {m['area'][k]:,.1f} m², "
              f"mean width {m['mean_width'][k]:.2f} m, compactness {m['compactness'][k]:.3f}"
              for k in hit]
        res.findings.add_many("warning", zh, en, layer=rec.name, fid=lay.fids[hit],
                              feature_id=ids[hit], geometry=lay.geoms[hit],
                              area=m["area"][hit], value=m["mean_width"][hit])
        out[rec.name] = len(hit)
    res.summary = {"layers": out, "sliver_max_area_m2": max_area,
                   "sliver_max_mean_width_m": max_width}


def _coded_records(ctx: CheckContext) -> list[tuple[LayerRecord, Any]]:
    from .classification import load_scheme

    out = []
    for rec in _checked_records(ctx, polygon=False):
        if rec.scheme and rec.code_field:
            try:
                out.append((rec, load_scheme(rec.scheme)))
            except StandardsError:
                out.append((rec, None))
    return out


def check_code_domain(ctx: CheckContext, res: CheckResult) -> None:
    """Every code exists in the layer's declared scheme; no empty codes. A code whose mapping
    to the 2023 classification needs a human decision (待定) is listed as 提示."""
    out: dict[str, Any] = {}
    for rec, scheme in _coded_records(ctx):
        lay = ctx.layer(rec.name)
        ids = ctx.feature_ids(lay)
        if scheme is None:
            res.findings.add("error", f"图层“{rec.name}”声明的分类标准 {rec.scheme} 不存在",
                             f"layer {rec.name} declares an unknown scheme {rec.scheme}",
                             layer=rec.name)
            continue
        if rec.code_field not in lay.frame.columns:
            res.findings.add("error", f"图层“{rec.name}”缺少代码字段 {rec.code_field}",
                             f"layer {rec.name} lacks its code field {rec.code_field}",
                             layer=rec.name)
            continue
        raw = lay.frame[rec.code_field].astype(object).to_numpy()
        norm = np.asarray(_per_unique(raw, scheme.normalise), dtype=object)
        valid = np.asarray([c is not None and c in scheme.entries for c in norm], dtype=bool)
        missing = np.equal(norm, None)
        for k in np.flatnonzero(missing):
            zh, en = _fmt_ids(lay.fids[k], ids[k])
            res.findings.add("error", f"{zh}的代码字段 {rec.code_field} 为空",
                             f"{en}: code field {rec.code_field} is empty", layer=rec.name,
                             fid=int(lay.fids[k]), feature_id=ids[k], geometry=lay.geoms[k])
        bad = np.flatnonzero(~valid & ~missing)
        for k in bad:
            zh, en = _fmt_ids(lay.fids[k], ids[k])
            res.findings.add("error", f"{zh}的代码 {raw[k]} 不在分类标准 {scheme.version_id} 中",
                             f"{en}: code {raw[k]} is not in {scheme.version_id}",
                             layer=rec.name, fid=int(lay.fids[k]), feature_id=ids[k],
                             geometry=lay.geoms[k])
        _, status, cands = lay.unified()
        pend = np.flatnonzero((status == "待定") & valid)
        for k in pend:
            zh, en = _fmt_ids(lay.fids[k], ids[k])
            cs = "、".join(cands[k])
            res.findings.add("info", f"{zh}的代码 {raw[k]} 对应 2023 用地用海分类待定（候选 {cs}）",
                             f"{en}: code {raw[k]} needs a decision to map to the 2023 "
                             f"classification (candidates {', '.join(cands[k])})",
                             layer=rec.name, fid=int(lay.fids[k]), feature_id=ids[k],
                             geometry=lay.geoms[k])
        out[rec.name] = {"scheme": scheme.version_id, "features": len(lay),
                         "empty": int(missing.sum()), "invalid": len(bad),
                         "pending": len(pend)}
    res.summary = {"layers": out}


def _code_name_verdict(scheme: Any, pair: tuple[Any, Any]) -> tuple[str, str | None]:
    import unicodedata

    raw_code, raw_name = pair
    c = scheme.normalise(raw_code)
    if c is None or c not in scheme.entries:
        return "skip", None
    expected = scheme.entries[c].name
    nm = _text(raw_name)
    if nm is None:
        return "empty", expected
    nm = unicodedata.normalize("NFKC", nm).strip()
    if nm == expected or scheme.code_for_name(nm) == c:
        return "ok", expected
    return "mismatch", expected


def check_code_name(ctx: CheckContext, res: CheckResult) -> None:
    """Code and name agree: the name is the scheme's name of the code or a listed alias."""
    out: dict[str, Any] = {}
    for rec, scheme in _coded_records(ctx):
        lay = ctx.layer(rec.name)
        if scheme is None or not rec.name_field or rec.name_field not in lay.frame.columns \
                or rec.code_field not in lay.frame.columns:
            continue
        ids = ctx.feature_ids(lay)
        codes = _texts(lay.frame[rec.code_field])
        names = _texts(lay.frame[rec.name_field])
        pair_keys = _object_array(list(zip(codes.tolist(), names.tolist(), strict=True)))

        v = _per_unique(pair_keys, functools.partial(_code_name_verdict, scheme))
        n_bad = n_empty = 0
        for k, (kind, expected) in enumerate(v):
            if kind in ("ok", "skip"):
                continue
            zh, en = _fmt_ids(lay.fids[k], ids[k])
            if kind == "empty":
                n_empty += 1
                res.findings.add("error", f"{zh}的名称字段 {rec.name_field} 为空（代码 {codes[k]} 应为“{expected}”）",
                                 f"{en}: name field {rec.name_field} is empty (code "
                                 f"{codes[k]} is {expected})", layer=rec.name,
                                 fid=int(lay.fids[k]), feature_id=ids[k],
                                 geometry=lay.geoms[k])
            else:
                n_bad += 1
                res.findings.add("error", f"{zh}的名称“{names[k]}”与代码 {codes[k]}（{expected}）不一致",
                                 f"{en}: name {names[k]!r} does not match code {codes[k]} "
                                 f"({expected})", layer=rec.name, fid=int(lay.fids[k]),
                                 feature_id=ids[k], geometry=lay.geoms[k])
        out[rec.name] = {"mismatch": n_bad, "empty": n_empty,
                         "fields": [rec.code_field, rec.name_field]}
    res.summary = {"layers": out}


def check_unique_ids(ctx: CheckContext, res: CheckResult) -> None:
    """Identifier fields (BSM, JBNTTBBH, XBH …) are filled and unique within their layer."""
    out: dict[str, Any] = {}
    for rec in _checked_records(ctx, polygon=False):
        lay = ctx.layer(rec.name)
        for f in ctx.params.fields("id"):
            if f not in lay.frame.columns:
                continue
            vals = _texts(lay.frame[f])
            empty = np.equal(vals, None)
            for k in np.flatnonzero(empty):
                res.findings.add("error", f"要素 {lay.fids[k]} 的标识码字段 {f} 为空",
                                 f"feature {lay.fids[k]}: id field {f} is empty",
                                 layer=rec.name, fid=int(lay.fids[k]), geometry=lay.geoms[k])
            s = pd.Series(vals[~empty], index=np.flatnonzero(~empty))
            dup = s[s.duplicated(keep=False)]
            groups = dup.groupby(dup.values).groups if len(dup) else {}
            for value, members in groups.items():
                members = np.asarray(list(members))
                fl = lay.fids[members]
                for k in members:
                    others = ", ".join(str(x) for x in fl if x != lay.fids[k])
                    res.findings.add("error", f"要素 {lay.fids[k]} 的 {f}“{value}”重复（另见要素 {others}）",
                                     f"feature {lay.fids[k]}: {f} {value!r} is not unique "
                                     f"(also features {others})", layer=rec.name,
                                     fid=int(lay.fids[k]), feature_id=str(value),
                                     geometry=lay.geoms[k])
            out[f"{rec.name}.{f}"] = {"empty": int(empty.sum()), "duplicated_values":
                                      len(groups), "duplicated_features": len(dup)}
    res.summary = {"fields": out}


def check_admin_codes(ctx: CheckContext, res: CheckResult) -> None:
    """行政区代码 fields hold 6 or 12 digits (error otherwise); codes not under the
    project's county code are warnings."""
    county_code = _text(ctx.setting("admin_code"))
    out: dict[str, Any] = {}
    for rec in _checked_records(ctx, polygon=False):
        lay = ctx.layer(rec.name)
        for f in ctx.params.fields("admin_code"):
            if f not in lay.frame.columns:
                continue
            vals = _texts(lay.frame[f])

            def verdict(v: str | None) -> str:
                if v is None or not re.fullmatch(r"[0-9]{6}|[0-9]{12}", v):
                    return "bad"
                if county_code and re.fullmatch(r"[0-9]{6}", county_code) and \
                        not v.startswith(county_code[:6]) and not \
                        county_code.startswith(v[:6].rstrip("0") or "x"):
                    return "foreign"
                return "ok"

            v = _per_unique(vals, verdict)
            nb = nf = 0
            for k, kind in enumerate(v):
                if kind == "ok":
                    continue
                zh, en = _fmt_ids(lay.fids[k], None)
                if kind == "bad":
                    nb += 1
                    res.findings.add("error", f"{zh}的行政区代码 {f}“{vals[k]}”不是 6 位或 12 位数字",
                                     f"{en}: admin code {f} {vals[k]!r} is not 6 or 12 digits",
                                     layer=rec.name, fid=int(lay.fids[k]), geometry=lay.geoms[k])
                else:
                    nf += 1
                    res.findings.add("warning", f"{zh}的行政区代码 {f}“{vals[k]}”不属于本县（{county_code}）",
                                     f"{en}: admin code {f} {vals[k]} is not under the county's "
                                     f"code {county_code}", layer=rec.name,
                                     fid=int(lay.fids[k]), geometry=lay.geoms[k])
            out[f"{rec.name}.{f}"] = {"invalid": nb, "foreign": nf}
    res.summary = {"fields": out, "county_code": county_code}


def computed_areas(ctx: CheckContext, lay: LayerData) -> np.ndarray:
    """Feature areas by the project's area method (planar in the project CRS, or ellipsoidal
    on the CGCS2000 ellipsoid)."""
    if ctx.setting("area_method") != "ellipsoidal":
        return lay.area
    from pyproj import Geod

    geod = Geod(ellps="GRS80")
    ll = gpd.GeoSeries(lay.geoms, crs=ctx.project.epsg).to_crs(4490)
    return np.asarray([abs(geod.geometry_area_perimeter(g)[0]) if g is not None else 0.0
                       for g in ll.values])


def check_area_field(ctx: CheckContext, res: CheckResult) -> None:
    """Stored area fields (TBMJ, MJ …) equal the computed area within ``area_tolerance_m2``
    (plus the field's own rounding). The field's unit (m², 公顷 or 亩) is the one under which
    most stored values agree with the computed areas."""
    tol = float(ctx.setting("area_tolerance_m2"))
    out: dict[str, Any] = {}
    for rec in _checked_records(ctx):
        lay = ctx.layer(rec.name)
        for f in ctx.params.fields("area"):
            if f not in lay.frame.columns:
                continue
            stored = pd.to_numeric(lay.frame[f], errors="coerce").to_numpy(dtype=np.float64)
            comp = computed_areas(ctx, lay)
            have = ~np.isnan(stored) & (comp > 0)
            dec = _decimals(stored[have])
            unit, scale, limit, best = "m²", 1.0, tol, -1
            for u, sc in (("m²", 1.0), ("公顷", 10_000.0), ("亩", 10_000.0 / 15.0)):
                rounding = 0.5 * 10.0 ** (-dec) * sc if dec is not None else 0.0
                lim = max(tol, rounding) + 1e-9
                fits = int((np.abs(stored[have] * sc - comp[have]) <= lim).sum())
                if fits > best:  # the unit under which most stored values agree
                    unit, scale, limit, best = u, sc, lim, fits
            diff = stored * scale - comp
            for k in np.flatnonzero(np.isnan(stored)):
                zh, en = _fmt_ids(lay.fids[k], ctx.feature_ids(lay)[k])
                res.findings.add("error", f"{zh}的面积字段 {f} 为空", f"{en}: area field {f} is "
                                 "empty", layer=rec.name, fid=int(lay.fids[k]),
                                 feature_id=ctx.feature_ids(lay)[k], geometry=lay.geoms[k])
            bad = np.flatnonzero(~np.isnan(stored) & (np.abs(diff) > limit))
            ids = ctx.feature_ids(lay)
            zh = [f"{_fmt_ids(lay.fids[k], ids[k])[0]}的面积字段 {f} = {stored[k]:,.4f} {unit}，"
                  f"计算面积 {comp[k] / scale:,.4f} {unit}，相差 {diff[k]:,.2f} m²" for k in bad]
            en = [f"{_fmt_ids(lay.fids[k], ids[k])[1]}: area field {f} = {stored[k]:,.4f} "
                  f"{unit}, computed {comp[k] / scale:,.4f} {unit}, off by {diff[k]:,.2f} m²"
                  for k in bad]
            res.findings.add_many("error", zh, en, layer=rec.name, fid=lay.fids[bad],
                                  feature_id=ids[bad], geometry=lay.geoms[bad],
                                  area=comp[bad], value=diff[bad])
            out[f"{rec.name}.{f}"] = {"unit": unit, "tolerance_m2": round(limit, 6),
                                      "mismatches": len(bad),
                                      "max_abs_diff_m2": round(float(np.nanmax(np.abs(diff)))
                                                               if len(diff) else 0.0, 6)}
    res.summary = {"fields": out, "area_method": ctx.setting("area_method"),
                   "area_tolerance_m2": tol}


def _decimals(v: np.ndarray) -> int | None:
    if not len(v):
        return None
    for d in range(7):
        if np.all(np.abs(np.round(v, d) - v) < 1e-9 * np.maximum(1.0, np.abs(v))):
            return d
    return None


# =========================================================================== registry

CheckFunc = Callable[[CheckContext, CheckResult], None]

_QA_CHECKS: dict[str, CheckFunc] = {
    "required_layers": check_required_layers,
    "crs": check_crs,
    "geometry_valid": check_geometry_valid,
    "overlaps": check_overlaps,
    "gaps": check_gaps,
    "outside_county": check_outside_county,
    "fragments": check_fragments,
    "slivers": check_slivers,
    "code_domain": check_code_domain,
    "code_name": check_code_name,
    "unique_ids": check_unique_ids,
    "admin_codes": check_admin_codes,
    "area_field": check_area_field,
}

#: relative cost, for one coherent progress bar
_WEIGHTS = {"overlaps": 6.0, "gaps": 2.0, "outside_county": 2.0, "farmland_balance": 3.0,
            "sansheng": 3.0, "geometry_valid": 2.0, "rl_self_overlap": 1.0}


def _implementations() -> dict[str, CheckFunc]:
    from . import indicators, redlines, sansheng

    impl = dict(_QA_CHECKS)
    impl.update(redlines.CHECKS)
    impl.update(indicators.CHECKS)
    impl.update(sansheng.CHECKS)
    return impl


def available_checks(params: QAParams | None = None) -> list[dict[str, Any]]:
    """The checks in the table's order: ``[{"id", "group", "zh", "en", "blocking"}, …]``."""
    params = params or load_params()
    impl = _implementations()
    missing = [c["id"] for c in params.checks if c["id"] not in impl]
    if missing:
        raise StandardsError("standards.qa_checks", f"质检参数表列出了未实现的检查项 {missing}",
                             f"the QA table lists checks that do not exist: {missing}",
                             path=params.path)
    return params.checks


def run_checks(project: Project, only: Iterable[str] | None = None, *,
               task: Task | None = None, write: bool = True, threads: int = 2,
               params: QAParams | None = None) -> CheckRun:
    """Run the checks (all, or the ids in ``only``) and store their results (``write``).

    Each check's unexpected failure is caught and reported as that check's status "error"
    (blocking if the check is), so one broken check never hides the others' results.
    Raises :class:`~multiplan.core.tasks.Cancelled` when the task is cancelled (nothing is
    written then).
    """
    if write:
        project.guard_analysis("mp_qa_errors", "运行质检并写入结果（含 mp_sansheng 字段）",
                                 "running the checks and storing their results (including "
                                 "the mp_sansheng column)")
    task = ensure_task(task)
    params = params or load_params()
    specs = available_checks(params)
    impl = _implementations()
    ids = [c["id"] for c in specs]
    if only is not None:
        only = list(dict.fromkeys(only))
        unknown = [c for c in only if c not in ids]
        if unknown:
            raise QAError("qa.unknown_check", f"未知的检查项：{', '.join(unknown)}；可用："
                          f"{', '.join(ids)}", f"unknown check(s): {', '.join(unknown)}; "
                          f"available: {', '.join(ids)}")
        specs = [c for c in specs if c["id"] in only]
    t0 = time.perf_counter()
    c0 = time.process_time()
    ctx = CheckContext(project, params, task, threads)
    weights = np.asarray([_WEIGHTS.get(c["id"], 0.5) for c in specs])
    edges = np.r_[0.0, np.cumsum(weights) / weights.sum()] * 0.95
    results: list[CheckResult] = []
    for k, spec in enumerate(specs):
        res = CheckResult(spec["id"], spec["group"], spec["zh"], spec["en"], spec["blocking"])
        sub = task.sub(edges[k], edges[k + 1])
        ctx.task = sub
        sub.progress(0.0, f"{spec['zh']} / {spec['en']}")
        t = time.perf_counter()
        c = time.process_time()
        read0 = ctx.seconds_read
        try:
            impl[spec["id"]](ctx, res)
        except Cancelled:
            raise
        except MultiplanError as exc:
            res.status = "error"
            res.note(f"检查无法完成：{exc.zh}", f"the check could not run: {exc.en}")
        except Exception as exc:  # noqa: BLE001 — a broken check must not hide the others
            res.status = "error"
            res.note(f"检查出错：{type(exc).__name__}: {exc}",
                     f"the check failed: {type(exc).__name__}: {exc}")
        res.seconds = time.perf_counter() - t
        res.cpu_seconds = time.process_time() - c
        res.summary.setdefault("seconds_reading_layers", round(ctx.seconds_read - read0, 3))
        res.finish()
        results.append(res)
    ctx.task = task
    versions = _versions(ctx)
    run = CheckRun(uuid.uuid4().hex, _now(), project, results, versions,
                   {k: ctx.settings.get(k) for k in (*SETTING_DEFAULTS, "area_method")})
    run.seconds_read = ctx.seconds_read
    run.seconds = time.perf_counter() - t0
    if write:
        task.progress(0.96, "写入结果 / writing results")
        t = time.perf_counter()
        store_run(ctx, run)
        run.seconds_write = time.perf_counter() - t
        run.seconds = time.perf_counter() - t0
    run.cpu_seconds = time.process_time() - c0
    task.progress(1.0, "检查完成 / checks done")
    return run


def _versions(ctx: CheckContext) -> dict[str, str]:
    from multiplan import __version__

    from .classification import load_scheme, sansheng_table_version
    from .indicators import load_indicator_table

    overrides = ctx.setting("sansheng_overrides") or None
    try:
        ss = sansheng_table_version(overrides)
    except StandardsError:
        ss = "invalid overrides"
    return {"multiplan": __version__, "qa_checks": ctx.params.version_id,
            "indicators": load_indicator_table().version_id,
            "ydyh2023": load_scheme("ydyh2023").version_id, "sansheng": ss}


# =========================================================================== storage

def _findings_frame(run: CheckRun) -> gpd.GeoDataFrame:
    frames = []
    for r in run.results:
        f = r.findings.frame(crs=run.project.epsg)
        f.insert(0, "check_id", r.id)
        f.insert(1, "check_zh", r.zh)
        f.insert(2, "blocking", int(r.blocking))
        f["error_id"] = [f"{r.id}-{k + 1:06d}" for k in range(len(f))]
        frames.append(f)
    if frames:
        out = pd.concat(frames, ignore_index=True)
    else:
        out = Findings().frame(crs=run.project.epsg)
        for c in ("check_id", "check_zh", "blocking", "error_id"):
            out[c] = pd.Series([], dtype=object)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=run.project.epsg)
    out["run_id"] = run.run_id
    out["created_at"] = run.created_at
    out["severity_zh"] = out["severity"].map(lambda s: SEVERITIES[s][0] if s else None)
    out["blocking"] = out["blocking"].astype("int64")
    return out


def _with_townships(ctx: CheckContext, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame["township"] = ctx.townships_of(frame.geometry.to_numpy()) if len(frame) else \
        pd.Series([], dtype=object)
    return frame


_GPKG_EXT_DDL = ('CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, '
                 'extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, '
                 'CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))')
_TRIGGERS = [
    ('CREATE TRIGGER "{r}_insert" AFTER INSERT ON "{t}" WHEN (new."geom" NOT NULL AND NOT '
    'ST_IsEmpty(NEW."geom")) BEGIN INSERT OR REPLACE INTO "{r}" VALUES (NEW."fid",'
    'ST_MinX(NEW."geom"), ST_MaxX(NEW."geom"),ST_MinY(NEW."geom"), ST_MaxY(NEW."geom")); END'),
    ('CREATE TRIGGER "{r}_update1" AFTER UPDATE OF "geom" ON "{t}" WHEN OLD."fid" = NEW."fid" '
    'AND (NEW."geom" NOTNULL AND NOT ST_IsEmpty(NEW."geom")) BEGIN INSERT OR REPLACE INTO '
    '"{r}" VALUES (NEW."fid",ST_MinX(NEW."geom"), ST_MaxX(NEW."geom"),ST_MinY(NEW."geom"), '
    'ST_MaxY(NEW."geom")); END'),
    ('CREATE TRIGGER "{r}_update2" AFTER UPDATE OF "geom" ON "{t}" WHEN OLD."fid" = NEW."fid" '
    'AND (NEW."geom" ISNULL OR ST_IsEmpty(NEW."geom")) BEGIN DELETE FROM "{r}" WHERE id = '
    'OLD."fid"; END'),
    ('CREATE TRIGGER "{r}_update3" AFTER UPDATE ON "{t}" WHEN OLD."fid" != NEW."fid" AND '
    '(NEW."geom" NOTNULL AND NOT ST_IsEmpty(NEW."geom")) BEGIN DELETE FROM "{r}" WHERE id = '
    'OLD."fid"; INSERT OR REPLACE INTO "{r}" VALUES (NEW."fid",ST_MinX(NEW."geom"), '
    'ST_MaxX(NEW."geom"),ST_MinY(NEW."geom"), ST_MaxY(NEW."geom")); END'),
    ('CREATE TRIGGER "{r}_update4" AFTER UPDATE ON "{t}" WHEN OLD."fid" != NEW."fid" AND '
    '(NEW."geom" ISNULL OR ST_IsEmpty(NEW."geom")) BEGIN DELETE FROM "{r}" WHERE id IN '
    '(OLD."fid", NEW."fid"); END'),
    ('CREATE TRIGGER "{r}_delete" AFTER DELETE ON "{t}" WHEN old."geom" NOT NULL BEGIN DELETE '
    'FROM "{r}" WHERE id = OLD."fid"; END'),
]
_COUNT_TRIGGERS = [
    ('CREATE TRIGGER "trigger_insert_feature_count_{t}" AFTER INSERT ON "{t}" BEGIN UPDATE '
    "gpkg_ogr_contents SET feature_count = feature_count + 1 WHERE lower(table_name) = "
    "lower('{t}'); END"),
    ('CREATE TRIGGER "trigger_delete_feature_count_{t}" AFTER DELETE ON "{t}" BEGIN UPDATE '
    "gpkg_ogr_contents SET feature_count = feature_count - 1 WHERE lower(table_name) = "
    "lower('{t}'); END"),
]


def _gpkg_blobs(geoms: np.ndarray, srs_id: int) -> tuple[list[bytes | None], np.ndarray]:
    """GeoPackage binary geometries (little endian, xy envelope; empty flagged) and the
    (n, 4) bounds (NaN for missing/empty)."""
    import struct

    n = len(geoms)
    if n == 0:
        return [], np.zeros((0, 4))
    wkb = shapely.to_wkb(geoms, byte_order=1, output_dimension=2)
    bounds = shapely.bounds(geoms)
    empty = np.zeros(n, dtype=bool)
    present = ~shapely.is_missing(geoms)
    empty[present] = shapely.is_empty(geoms[present])
    out: list[bytes | None] = []
    for k in range(n):
        w = wkb[k]
        if w is None:
            out.append(None)
        elif empty[k]:
            out.append(b"GP\x00\x11" + struct.pack("<i", srs_id) + w)
        else:
            b = bounds[k]
            out.append(b"GP\x00\x03" + struct.pack("<i4d", srs_id, b[0], b[2], b[1], b[3]) + w)
    return out, bounds


def _sql_type(s: pd.Series) -> str:
    kind = s.dtype.kind
    if kind in "iub" or str(s.dtype) in ("Int64", "Int32", "boolean"):
        return "INTEGER"
    return "REAL" if kind == "f" else "TEXT"


def _write_feature_table(conn: sqlite3.Connection, name: str, frame: gpd.GeoDataFrame,
                         geometry_type: str, srs_id: int, description: str) -> None:
    """(Re)create a GeoPackage feature table with ``frame``'s rows, its R-tree, triggers and
    metadata rows, inside the caller's transaction (the same DDL GDAL writes, so GDAL and
    QGIS read and edit it as their own). Plain SQL: writing through GDAL would need a
    temporary table and a rename per table, ≈0.3 s each (renaming the R-tree dominates)."""
    if table_exists(conn, name):
        drop_gpkg_table(conn, name)
    cols = [c for c in frame.columns if c != frame.geometry.name]
    decl = "".join(f', "{c}" {_sql_type(frame[c])}' for c in cols)
    conn.execute(f'CREATE TABLE "{name}" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 f'"geom" {geometry_type.upper()}{decl})')
    geoms = np.asarray(frame.geometry.values, dtype=object)
    blobs, bounds = _gpkg_blobs(geoms, srs_id)
    values = [_sql_column(frame[c]) for c in cols]
    rows = zip(range(1, len(frame) + 1), blobs, *values, strict=True)
    marks = ", ".join("?" for _ in range(len(cols) + 2))
    names = ", ".join(f'"{c}"' for c in ["fid", "geom", *cols])
    conn.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({marks})', rows)
    rtree = f"rtree_{name}_geom"
    conn.execute(f'CREATE VIRTUAL TABLE "{rtree}" USING rtree(id, minx, maxx, miny, maxy)')
    ok = np.flatnonzero(~np.isnan(bounds[:, 0])) if len(bounds) else np.zeros(0, int)
    conn.executemany(f'INSERT INTO "{rtree}" VALUES (?, ?, ?, ?, ?)',
                     ((int(k) + 1, float(bounds[k, 0]), float(bounds[k, 2]),
                       float(bounds[k, 1]), float(bounds[k, 3])) for k in ok))
    ext = ((float(np.min(bounds[ok, 0])), float(np.min(bounds[ok, 1])),
            float(np.max(bounds[ok, 2])), float(np.max(bounds[ok, 3]))) if len(ok)
           else (None, None, None, None))
    conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
                 "last_change, min_x, min_y, max_x, max_y, srs_id) VALUES (?, 'features', ?, ?, "
                 "strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?)",
                 (name, name, description, *ext, srs_id))
    conn.execute("INSERT INTO gpkg_geometry_columns (table_name, column_name, "
                 "geometry_type_name, srs_id, z, m) VALUES (?, 'geom', ?, ?, 0, 0)",
                 (name, geometry_type.upper(), srs_id))
    conn.execute(_GPKG_EXT_DDL)
    conn.execute("INSERT OR REPLACE INTO gpkg_extensions (table_name, column_name, "
                 "extension_name, definition, scope) VALUES (?, 'geom', 'gpkg_rtree_index', "
                 "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')", (name,))
    for t in _TRIGGERS:
        conn.execute(t.format(t=name, r=rtree))
    if table_exists(conn, "gpkg_ogr_contents"):
        conn.execute("INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count) "
                     "VALUES (?, ?)", (name, len(frame)))
        for t in _COUNT_TRIGGERS:
            conn.execute(t.format(t=name))


def _write_attribute_table(conn: sqlite3.Connection, name: str, df: pd.DataFrame,
                           description: str) -> None:
    cols = []
    for c in df.columns:
        kind = df[c].dtype.kind
        cols.append((c, "INTEGER" if kind in "iub" else "REAL" if kind == "f" else "TEXT"))
    if table_exists(conn, name):
        conn.execute(f'DROP TABLE "{name}"')
    decl = ", ".join(f'"{c}" {t}' for c, t in cols)
    conn.execute(f'CREATE TABLE "{name}" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL'
                 f'{", " + decl if decl else ""})')
    register_attributes_table(conn, name, description)
    if len(df) and cols:
        marks = ", ".join("?" for _ in cols)
        names = ", ".join(f'"{c}"' for c, _ in cols)
        rows = []
        for rec in df.itertuples(index=False, name=None):
            rows.append(tuple(_sql_value(v) for v in rec))
        conn.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({marks})', rows)


def _sql_column(s: pd.Series) -> list[Any]:
    """A column as SQLite values (None for missing), converted per column."""
    kind = s.dtype.kind
    if isinstance(s.dtype, np.dtype):
        if kind == "f":
            a = s.to_numpy(dtype=np.float64)
            out = a.astype(object)
            out[np.isnan(a)] = None
            return out.tolist()
        if kind in "iub":
            return s.to_numpy().astype(np.int64).tolist()
    return [v if v is None or type(v) is str else _sql_value(v)
            for v in s.astype(object).tolist()]


def _sql_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.integer | np.bool_):
        return int(v)
    if isinstance(v, np.floating | float):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, dict | list):
        return json.dumps(_jsonable(v), ensure_ascii=False)
    return v if isinstance(v, int | str | bytes) else str(v)


_RUN_COLUMNS: list[tuple[str, str]] = [
    ("check_id", "TEXT NOT NULL UNIQUE"), ("run_id", "TEXT NOT NULL"), ("grp", "TEXT"),
    ("title_zh", "TEXT"), ("title_en", "TEXT"), ("status", "TEXT"), ("blocking", "INTEGER"),
    ("errors", "INTEGER"), ("warnings", "INTEGER"), ("infos", "INTEGER"),
    ("error_area_m2", "REAL"), ("seconds", "REAL"), ("summary", "TEXT"), ("notes", "TEXT"),
    ("settings", "TEXT"), ("versions", "TEXT"), ("created_at", "TEXT"),
]


def store_run(ctx: CheckContext, run: CheckRun) -> None:
    """Write the run: findings into ``mp_qa_errors`` (rows of the checks run are replaced),
    result layers, attribute tables, layer columns and ``mp_qa_runs`` — the table switches
    in one SQLite transaction."""
    import pyogrio

    project = run.project
    ran = [r.id for r in run.results]
    new = _with_townships(ctx, run.findings())
    with contextlib.closing(project.connect()) as conn:
        have = table_exists(conn, ERRORS_TABLE)
    if have:
        marks = ", ".join(f"'{c}'" for c in ran)
        old = pyogrio.read_dataframe(project.gpkg, layer=ERRORS_TABLE,
                                     where=f"check_id NOT IN ({marks})", use_arrow=True)
        if len(old):
            old = old.set_crs(project.epsg, allow_override=True)
            new = pd.concat([old[[c for c in new.columns if c in old.columns]], new],
                            ignore_index=True)
            new = gpd.GeoDataFrame(new, geometry="geometry", crs=project.epsg)
    new = new[[*FINDING_COLUMNS, "geometry"]]
    for c, t in _FINDING_COLUMNS:
        if t == "INTEGER" and c not in ("feature_fid", "other_fid"):
            new[c] = new[c].astype("int64")
        elif c in ("feature_fid", "other_fid"):
            new[c] = new[c].astype("Int64")
    srs = project.epsg
    with project.transaction() as conn:
        _write_feature_table(conn, ERRORS_TABLE, new, "GEOMETRY", srs,
                             "multiplan 质检 findings (错误/警告/提示)")
        for r in run.results:
            for name, frame in r.layers.items():
                _write_feature_table(conn, name, _multi(frame, srs), "MULTIPOLYGON", srs,
                                     f"multiplan {r.id} result ({r.zh})")
        for r in run.results:
            for name, df in r.tables.items():
                _write_attribute_table(conn, name, df, f"multiplan {r.id} results")
            for layer, column, fids, values in r.column_updates:
                _update_column(conn, layer, column, fids, values)
        cols = ", ".join(f'"{c}" {t}' for c, t in _RUN_COLUMNS)
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{RUNS_TABLE}" ('
                     f'"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
        register_attributes_table(conn, RUNS_TABLE, "multiplan 质检 runs (one row per check)")
        for r in run.results:
            conn.execute(f'DELETE FROM "{RUNS_TABLE}" WHERE "check_id" = ?', (r.id,))
            row = (r.id, run.run_id, r.group, r.zh, r.en, r.status, int(r.blocking),
                   r.errors, r.warnings, r.infos, r.findings.area("error"), r.seconds,
                   json.dumps(_jsonable(r.summary), ensure_ascii=False),
                   json.dumps(r.notes, ensure_ascii=False),
                   json.dumps(_jsonable(run.settings), ensure_ascii=False),
                   json.dumps(run.versions, ensure_ascii=False), run.created_at)
            conn.execute(f'INSERT INTO "{RUNS_TABLE}" ({", ".join(c for c, _ in _RUN_COLUMNS)}) '
                         f'VALUES ({", ".join("?" for _ in _RUN_COLUMNS)})', row)
        project._audit(conn, "qa.run", None, {
            "run_id": run.run_id, "checks": ran, "passed": run.passed,
            "blocking_failures": run.blocking_failures,
            "findings": {r.id: [r.errors, r.warnings, r.infos] for r in run.results},
            "versions": run.versions})


def _multi(frame: gpd.GeoDataFrame, epsg: int) -> gpd.GeoDataFrame:
    g = np.asarray(frame.geometry.values, dtype=object)
    if len(g):
        single = np.flatnonzero(shapely.get_type_id(g) == _POLYGON)
        g = g.copy()
        if len(single):
            g[single] = shapely.multipolygons(g[single], indices=np.arange(len(single)))
    out = frame.copy()
    out = out.set_geometry(gpd.GeoSeries(g, index=frame.index, crs=epsg))
    return out


def _update_column(conn: sqlite3.Connection, layer: str, column: str, fids: np.ndarray,
                   values: np.ndarray) -> None:
    from .editing import register_gpkg_functions

    register_gpkg_functions(conn)  # GDAL's R-tree triggers name ST_* functions on any UPDATE
    have = [r[1] for r in conn.execute(f'PRAGMA table_info("{layer}")')]
    if column not in have:
        conn.execute(f'ALTER TABLE "{layer}" ADD COLUMN "{column}" TEXT')
    conn.executemany(f'UPDATE "{layer}" SET "{column}" = ? WHERE "fid" = ?',
                     zip([None if v is None else str(v) for v in values.tolist()],
                         [int(f) for f in fids.tolist()], strict=True))


def read_errors(project: Project, check_id: str | None = None) -> gpd.GeoDataFrame:
    """The stored findings (optionally of one check)."""
    import pyogrio

    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, ERRORS_TABLE):
            return gpd.GeoDataFrame({c: [] for c in FINDING_COLUMNS},
                                    geometry=gpd.GeoSeries([], crs=project.epsg))
    where = None
    if check_id:
        where = "check_id = '" + check_id.replace("'", "''") + "'"
    return pyogrio.read_dataframe(project.gpkg, layer=ERRORS_TABLE, where=where,
                                  use_arrow=True)


def read_runs(project: Project) -> list[dict[str, Any]]:
    """The stored per-check summary rows, in the table's check order."""
    with contextlib.closing(project.connect()) as conn:
        if not table_exists(conn, RUNS_TABLE):
            return []
        rows = [dict(r) for r in conn.execute(f'SELECT * FROM "{RUNS_TABLE}"')]
    order = {c["id"]: k for k, c in enumerate(load_params().checks)}
    for r in rows:
        for k in ("summary", "notes", "settings", "versions"):
            r[k] = json.loads(r[k]) if r.get(k) else None
    return sorted(rows, key=lambda r: order.get(r["check_id"], 1_000))
