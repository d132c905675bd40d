"""Assessment run records (``mp_assessment_runs``) and the assessment gate.

Each completed run is one row of ``mp_assessment_runs``, a GeoPackage attribute table
(registered in ``gpkg_contents`` like the other ``mp_*`` tables, so QGIS and GDAL list it):
the effective parameters and their fingerprint, the rule-file id/version/SHA-256, the
SHA-256 of every input layer and raster, the outputs (path, SHA-256), the grid, a summary
and the time. The table is created the first time a run is recorded; a project that never
ran the assessment simply has no such table, so no schema migration is needed.

:func:`assessment_gate` (and its boolean shorthand :func:`assessment_is_current`) compares
the latest recorded run with the project as it is now: the same parameters, rule file and
cell size, the same set of input layers with the same content, and the outputs still on
disk unchanged. Any difference makes the gate false, with the reason in both languages.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

RUNS_TABLE = "mp_assessment_runs"

_COLUMNS = [
    ("run_id", "TEXT NOT NULL UNIQUE"),
    ("time", "TEXT NOT NULL"),
    ("status", "TEXT NOT NULL"),
    ("multiplan_version", "TEXT"),
    ("rule_file", "TEXT NOT NULL"),
    ("params_sha256", "TEXT NOT NULL"),
    ("params", "TEXT NOT NULL"),
    ("cell_size_m", "REAL NOT NULL"),
    ("grid", "TEXT NOT NULL"),
    ("inputs", "TEXT NOT NULL"),
    ("outputs", "TEXT NOT NULL"),
    ("summary", "TEXT"),
    ("notes", "TEXT"),
]


def ensure_table(conn: sqlite3.Connection) -> None:
    cols = ", ".join(f'"{n}" {t}' for n, t in _COLUMNS)
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{RUNS_TABLE}" ('
                 f'"fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {cols})')
    conn.execute("INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
                 "description) VALUES (?, 'attributes', ?, ?)",
                 (RUNS_TABLE, RUNS_TABLE, "multiplan 双评价 assessment runs"))


def insert_run(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    ensure_table(conn)
    vals = {k: (json.dumps(v, ensure_ascii=False, default=str)
                if isinstance(v, (dict, list)) else v) for k, v in row.items()}
    keys = ", ".join(f'"{k}"' for k in vals)
    conn.execute(f'INSERT INTO "{RUNS_TABLE}" ({keys}) VALUES '
                 f'({", ".join("?" for _ in vals)})', list(vals.values()))


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    for k in ("rule_file", "params", "grid", "inputs", "outputs", "summary", "notes"):
        if d.get(k):
            d[k] = json.loads(d[k])
    return d


def list_runs(project: Any) -> list[dict[str, Any]]:
    """All recorded runs, oldest first (empty when the assessment never ran)."""
    with contextlib.closing(project.connect()) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                            (RUNS_TABLE,)).fetchone():
            return []
        rows = conn.execute(f'SELECT * FROM "{RUNS_TABLE}" ORDER BY "fid"').fetchall()
    return [_decode(r) for r in rows]


def latest_run(project: Any) -> dict[str, Any] | None:
    runs = list_runs(project)
    return runs[-1] if runs else None


@dataclass
class GateResult:
    """Whether the latest assessment run matches the project as it is now."""

    current: bool
    code: str
    zh: str
    en: str
    run_id: str | None = None
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.current

    def to_dict(self) -> dict[str, Any]:
        return {"current": self.current, "code": self.code, "zh": self.zh, "en": self.en,
                "run_id": self.run_id, "changed": self.changed}


def assessment_gate(project: Any) -> GateResult:
    """Compare the latest recorded run with the current inputs, parameters and outputs."""
    from multiplan.core.errors import MultiplanError

    from .inputs import file_sha256, input_fingerprints, resolve_inputs
    from .params import fingerprint, project_parameters, rule_file_info

    run = latest_run(project)
    if run is None:
        return GateResult(False, "assessment.never_run", "尚未运行双评价",
                          "the assessment has never been run")
    rid = run["run_id"]
    try:
        params = project_parameters(project)
    except MultiplanError as exc:
        return GateResult(False, "assessment.params_invalid",
                          f"当前双评价参数无效：{exc.zh}", f"current parameters are invalid: "
                          f"{exc.en}", rid)
    cell = float(project.setting("assessment_cell_size_m", 30.0))
    if run["rule_file"].get("sha256") != rule_file_info()["sha256"]:
        return GateResult(False, "assessment.rule_file_changed",
                          f"参数文件已更新（记录为 {run['rule_file'].get('version_id')}，现为 "
                          f"{rule_file_info()['version_id']}）",
                          "the packaged parameter file changed since the run", rid,
                          ["rule_file"])
    if float(run["cell_size_m"]) != cell:
        return GateResult(False, "assessment.cell_changed",
                          f"评价网格尺寸已改变（{run['cell_size_m']} → {cell} 米）",
                          f"the assessment cell size changed ({run['cell_size_m']} → {cell} m)",
                          rid, ["assessment_cell_size_m"])
    if run["params_sha256"] != fingerprint(params, cell):
        changed = _changed_sections(run["params"], params)
        return GateResult(False, "assessment.params_changed",
                          f"双评价参数已修改（{'、'.join(changed) or '参数'}）",
                          f"assessment parameters changed ({', '.join(changed) or 'parameters'})",
                          rid, changed)
    try:
        resolved = resolve_inputs(project, params)
    except MultiplanError as exc:
        return GateResult(False, "assessment.inputs_invalid",
                          f"当前输入不完整：{exc.zh}", f"current inputs are incomplete: {exc.en}",
                          rid)
    now = input_fingerprints(project, resolved)
    then = run["inputs"]
    added = sorted(set(now) - set(then))
    removed = sorted(set(then) - set(now))
    changed = sorted(n for n in set(now) & set(then) if now[n]["sha256"] != then[n]["sha256"])
    if added or removed or changed:
        parts_zh, parts_en = [], []
        if changed:
            parts_zh.append(f"已修改：{'、'.join(changed)}")
            parts_en.append(f"changed: {', '.join(changed)}")
        if added:
            parts_zh.append(f"新增：{'、'.join(added)}")
            parts_en.append(f"added: {', '.join(added)}")
        if removed:
            parts_zh.append(f"已删除：{'、'.join(removed)}")
            parts_en.append(f"removed: {', '.join(removed)}")
        return GateResult(False, "assessment.inputs_changed",
                          "评价输入图层已变化（" + "；".join(parts_zh) + "）",
                          "assessment input layers changed (" + "; ".join(parts_en) + ")",
                          rid, changed + added + removed)
    for name, out in run["outputs"].items():
        path = project.folder / out["path"]
        if not path.is_file() or file_sha256(path) != out["sha256"]:
            return GateResult(False, "assessment.outputs_changed",
                              f"评价结果 {name} 已缺失或被修改", f"the result {name} is missing "
                              "or was modified", rid, [name])
    return GateResult(True, "assessment.current", "双评价结果为最新", "the assessment is current",
                      rid)


def assessment_is_current(project: Any) -> bool:
    """True only when the latest recorded run matches the current inputs, parameters and
    outputs (see :func:`assessment_gate` for the reason when it does not)."""
    return assessment_gate(project).current


def _changed_sections(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        if k in ("engine", "notes"):
            continue
        if json.dumps(old.get(k), sort_keys=True) != json.dumps(new.get(k), sort_keys=True):
            out.append(k)
    return out
