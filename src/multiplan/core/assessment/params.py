"""The 双评价 parameter file: load, schema check, per-project overrides, fingerprint.

The defaults live in ``resources/standards/assessment_2019.json`` (versioned; every value
carries its confidence tag). A project keeps only its overrides, under the setting
``assessment_params``; :func:`effective_parameters` deep-merges them over the file (dicts
merge key by key, anything else is replaced) and checks the result again, so a bad
override is refused with the key that is wrong. Nothing is ever evaluated: thresholds are
numbers, actions are one of a few named operations.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from multiplan.core.errors import StandardsError

RULE_FILE = "assessment_2019"
SETTING_KEY = "assessment_params"

#: Top-level sections that do not change results (left out of the fingerprint).
NON_RESULT_SECTIONS = ("engine", "notes", "title", "source", "confidence")

OPS = ("none", "add", "set")
CLOSED = ("left", "right")


def _fail(where: str, zh: str, en: str, path: str | None) -> StandardsError:
    return StandardsError("assessment.params", f"双评价参数 {where}：{zh}",
                          f"assessment parameter {where}: {en}", path=path, feature=where)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_grade(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5


# ------------------------------------------------------------------------- checks
def _check_breaks(where: str, t: dict[str, Any], path: str | None, n_out: int | None = None,
                  key: str = "breaks") -> None:
    b = t.get(key)
    if not isinstance(b, list) or not b or not all(_is_num(x) for x in b):
        raise _fail(where, f"{key} 必须是非空数字列表", f"{key} must be a non-empty list of "
                    "numbers", path)
    if any(b[i] >= b[i + 1] for i in range(len(b) - 1)):
        raise _fail(where, f"{key} 必须严格递增", f"{key} must be strictly increasing", path)
    if t.get("closed") not in CLOSED:
        raise _fail(where, "closed 必须是 'left' 或 'right'", "closed must be 'left' or 'right'",
                    path)
    if n_out is not None and n_out != len(b) + 1:
        raise _fail(where, f"分级数应为断点数 + 1（{len(b) + 1}）",
                    f"needs one more output than breaks ({len(b) + 1})", path)


def _check_action(where: str, a: Any, path: str | None) -> None:
    if not isinstance(a, dict) or a.get("op") not in OPS:
        raise _fail(where, f"操作必须是 {OPS} 之一", f"action op must be one of {OPS}", path)
    if a["op"] == "set" and not _is_grade(a.get("value")):
        raise _fail(where, "set 的值必须是 1–5 的整数", "set needs an integer value 1–5", path)
    if a["op"] == "add" and not (isinstance(a.get("value"), int)
                                 and not isinstance(a.get("value"), bool)
                                 and -4 <= a["value"] <= 4):
        raise _fail(where, "add 的值必须是 −4…4 的整数", "add needs an integer value −4…4", path)


def _check_matrix(where: str, m: Any, path: str | None, max_value: int = 5) -> None:
    t = m.get("table") if isinstance(m, dict) else None
    if (not isinstance(t, list) or len(t) != 5
            or not all(isinstance(r, list) and len(r) == 5 for r in t)):
        raise _fail(where, "矩阵必须是 5 × 5", "matrix must be 5 × 5", path)
    for r in t:
        for v in r:
            if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= max_value):
                raise _fail(where, f"矩阵值必须是 1–{max_value} 的整数",
                            f"matrix values must be integers 1–{max_value}", path)


def validate(params: dict[str, Any], path: str | None = None) -> None:
    """Check a (merged) parameter dict; raise :class:`StandardsError` naming the key."""
    if not isinstance(params, dict):
        raise _fail("(top)", "必须是 JSON 对象", "must be a JSON object", path)
    for key in ("id", "version", "kind", "factors", "modifiers", "matrices", "penalties",
                "concentration", "classes", "capacity", "plan_check", "inputs",
                "relief_window", "thi", "location", "water_indicator", "engine"):
        if key not in params:
            raise _fail(key, "缺少该节", "section missing", path)
    if params["kind"] != "assessment_parameters":
        raise _fail("kind", "必须是 assessment_parameters", "must be 'assessment_parameters'",
                    path)
    for name, t in params["factors"].items():
        where = f"factors.{name}"
        if not isinstance(t, dict):
            raise _fail(where, "必须是对象", "must be an object", path)
        g = t.get("grades")
        if not isinstance(g, list) or not all(_is_grade(x) for x in g):
            raise _fail(where, "grades 必须是 1–5 的整数列表", "grades must be integers 1–5", path)
        _check_breaks(where, t, path, len(g))
        if "confidence" not in t:
            raise _fail(where, "缺少 confidence 标记", "lacks its confidence tag", path)
    for name, t in params["modifiers"].items():
        where = f"modifiers.{name}"
        acts = t.get("actions")
        if not isinstance(acts, list):
            raise _fail(where, "actions 必须是列表", "actions must be a list", path)
        _check_breaks(where, t, path, len(acts))
        for a in acts:
            _check_action(where, a, path)
        if "confidence" not in t:
            raise _fail(where, "缺少 confidence 标记", "lacks its confidence tag", path)
    rw = params["relief_window"]
    if not isinstance(rw.get("window_cells"), list) or not all(
            isinstance(w, int) and w >= 1 for w in rw["window_cells"]):
        raise _fail("relief_window", "window_cells 必须是正整数列表",
                    "window_cells must be positive integers", path)
    _check_breaks("relief_window", rw, path, len(rw["window_cells"]), key="cell_size_breaks_m")
    for name, m in params["matrices"].items():
        _check_matrix(f"matrices.{name}", m, path,
                      max_value=3 if name in ("ecology_concentration", "agriculture_contiguity")
                      else 5)
    for side in ("urban", "agriculture"):
        steps = params["penalties"].get(side)
        if not isinstance(steps, list):
            raise _fail(f"penalties.{side}", "必须是列表", "must be a list", path)
        for i, step in enumerate(steps):
            where = f"penalties.{side}[{i}]"
            if not isinstance(step, dict) or not isinstance(step.get("factor"), str):
                raise _fail(where, "缺少 factor", "lacks 'factor'", path)
            for r in step.get("rules", []):
                _check_action(where, r, path)
                if not isinstance(r.get("when"), list) or not all(
                        isinstance(v, int) for v in r["when"]):
                    raise _fail(where, "when 必须是整数列表", "'when' must be a list of integers",
                                path)
                if "if_current" in r and not all(_is_grade(v) for v in r["if_current"]):
                    raise _fail(where, "if_current 必须是 1–5 的整数列表",
                                "'if_current' must be grades 1–5", path)
            if "confidence" not in step:
                raise _fail(where, "缺少 confidence 标记", "lacks its confidence tag", path)
    conc = params["concentration"]
    if conc.get("connectivity") not in (4, 8):
        raise _fail("concentration.connectivity", "必须是 4 或 8", "must be 4 or 8", path)
    for side, choices in (("agriculture", ("compactness", "contiguity_matrix", "none")),
                          ("urban", ("compactness", "none"))):
        if conc.get(side, {}).get("method") not in choices:
            raise _fail(f"concentration.{side}.method", f"必须是 {choices} 之一",
                        f"must be one of {choices}", path)
    if conc["agriculture"].get("terrain") not in ("plain", "hilly"):
        raise _fail("concentration.agriculture.terrain", "必须是 plain 或 hilly",
                    "must be 'plain' or 'hilly'", path)
    cp = conc.get("compactness", {})
    acts = cp.get("actions")
    if not isinstance(acts, list):
        raise _fail("concentration.compactness", "actions 必须是列表", "actions must be a list",
                    path)
    _check_breaks("concentration.compactness", cp, path, len(acts))
    for a in acts:
        _check_action("concentration.compactness", a, path)
    cls = params["classes"]
    if cls.get("scheme") not in ("three", "two"):
        raise _fail("classes.scheme", "必须是 three 或 two", "must be 'three' or 'two'", path)
    for scheme in ("three", "two"):
        mp = cls["suitability"].get(scheme)
        if not isinstance(mp, dict) or sorted(mp) != ["1", "2", "3", "4", "5"] or not all(
                v in (1, 2, 3) for v in mp.values()):
            raise _fail(f"classes.suitability.{scheme}", "必须把 1–5 级各映射到类别 1–3",
                        "must map each grade 1–5 to a class 1–3", path)
    for side in ("agriculture", "urban"):
        ind = params["water_indicator"].get(side)
        if ind not in params["water_indicator"]["choices"][side]:
            raise _fail(f"water_indicator.{side}", "不是可选指标之一", "not one of the choices", path)
    loc = params["location"]
    if not (_is_num(loc.get("speed_kmh")) and loc["speed_kmh"] > 0
            and _is_num(loc.get("detour_factor")) and loc["detour_factor"] >= 1):
        raise _fail("location", "speed_kmh 须 > 0，detour_factor 须 ≥ 1",
                    "speed_kmh must be > 0 and detour_factor ≥ 1", path)
    thi = params["thi"]
    if not isinstance(thi.get("lapse_correction"), bool) or thi.get("tie") not in (
            "worse", "better"):
        raise _fail("thi", "lapse_correction 须为布尔值，tie 须为 worse/better",
                    "lapse_correction must be a boolean and tie 'worse' or 'better'", path)
    _validate_capacity(params["capacity"], path)
    _validate_plan_check(params["plan_check"], path)
    eng = params["engine"]
    if not (isinstance(eng.get("block_size"), int) and eng["block_size"] >= 16
            and isinstance(eng.get("workers"), int) and eng["workers"] >= 1):
        raise _fail("engine", "block_size ≥ 16，workers ≥ 1", "block_size ≥ 16 and workers ≥ 1",
                    path)


def _validate_capacity(cap: dict[str, Any], path: str | None) -> None:
    for key in ("irrigation_quota_m3_per_mu", "urban_water_m3_per_capita",
                "urban_land_m2_per_capita"):
        v = cap.get(key)
        if v is not None and not (_is_num(v) and v > 0):
            raise _fail(f"capacity.{key}", "必须是正数或 null", "must be a positive number or null",
                        path)
    w = cap.get("water_by_sector_m3")
    if w is not None and not (isinstance(w, dict) and all(
            k in ("agriculture", "urban") and _is_num(v) and v >= 0 for k, v in w.items())):
        raise _fail("capacity.water_by_sector_m3",
                    "必须是 {agriculture, urban} → 非负数，或 null",
                    "must map agriculture/urban to non-negative numbers, or be null", path)
    if cap.get("water_split") not in ("modulus", "area"):
        raise _fail("capacity.water_split", "必须是 modulus 或 area", "must be 'modulus' or 'area'",
                    path)
    if not isinstance(cap.get("scenarios"), list):
        raise _fail("capacity.scenarios", "必须是列表", "must be a list", path)
    for i, sc in enumerate(cap["scenarios"]):
        if not isinstance(sc, dict) or not isinstance(sc.get("id"), str):
            raise _fail(f"capacity.scenarios[{i}]", "每个情景须有 id", "each scenario needs an id",
                        path)


def _validate_plan_check(pc: dict[str, Any], path: str | None) -> None:
    results = ("urban_suitability", "agriculture_suitability", "eco_importance")
    for i, r in enumerate(pc.get("rules", [])):
        where = f"plan_check.rules[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("id"), str):
            raise _fail(where, "缺少 id", "lacks 'id'", path)
        if r.get("result") not in results:
            raise _fail(where, f"result 必须是 {results} 之一", f"result must be one of {results}",
                        path)
        feats = r.get("features")
        if not (feats in ("all", "construction") or (
                isinstance(feats, dict) and isinstance(feats.get("code_prefixes"), list))):
            raise _fail(where, "features 必须是 all、construction 或 {code_prefixes: [...]}",
                        "features must be 'all', 'construction' or {code_prefixes: [...]}", path)
        if not isinstance(r.get("classes"), list) or not r["classes"]:
            raise _fail(where, "classes 不能为空", "classes must be a non-empty list", path)


# ------------------------------------------------------------------------- loading
def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        data = json.loads(text, object_pairs_hook=_no_dupes)
    except ValueError as exc:
        raise StandardsError("assessment.params_json", f"双评价参数文件不是有效的 JSON：{exc}",
                             f"assessment parameter file is not valid JSON: {exc}",
                             path=path) from None
    return data


def rule_file_path() -> Path:
    return Path(str(resources.files("multiplan").joinpath(
        "resources", "standards", f"{RULE_FILE}.json")))


@cache
def _load_default() -> tuple[str, dict[str, Any]]:
    path = rule_file_path()
    text = path.read_text(encoding="utf-8")
    data = _parse(text, str(path))
    validate(data, str(path))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), data


def default_parameters() -> dict[str, Any]:
    """A fresh copy of the packaged defaults (validated)."""
    return copy.deepcopy(_load_default()[1])


def rule_file_info() -> dict[str, str]:
    """``{"id", "version", "version_id", "sha256"}`` of the packaged parameter file."""
    sha, data = _load_default()
    return {"id": data["id"], "version": data["version"],
            "version_id": f"{data['id']}/{data['version']}", "sha256": sha}


def clear_cache() -> None:
    _load_default.cache_clear()


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base``: dicts key by key, everything else replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_overrides_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON file of overrides (a partial parameter dict) given by a user."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StandardsError("assessment.params_file", f"无法读取参数文件：{exc}",
                             f"cannot read the parameter file: {exc}", path=str(p)) from None
    data = _parse(text, str(p))
    if not isinstance(data, dict):
        raise StandardsError("assessment.params_file", "参数文件顶层必须是 JSON 对象",
                             "the parameter file must hold a JSON object", path=str(p))
    for key in ("id", "version", "kind"):
        data.pop(key, None)  # a full copy of the rule file is accepted as overrides
    validate(deep_merge(default_parameters(), data), str(p))
    return data


def effective_parameters(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults merged with ``overrides``, validated."""
    params = default_parameters()
    if overrides:
        params = deep_merge(params, overrides)
        validate(params, f"project setting {SETTING_KEY}")
    return params


def project_overrides(project: Any) -> dict[str, Any]:
    v = project.setting(SETTING_KEY) or {}
    return v if isinstance(v, dict) else {}


def project_parameters(project: Any) -> dict[str, Any]:
    """The project's effective parameters (defaults + its ``assessment_params`` overrides)."""
    return effective_parameters(project_overrides(project))


def set_project_overrides(project: Any, overrides: dict[str, Any], *, merge: bool = True) -> None:
    """Store overrides in the project (merged into the existing ones unless ``merge=False``);
    refused (project unchanged) when the merged result fails the schema check."""
    new = deep_merge(project_overrides(project), overrides) if merge else dict(overrides)
    effective_parameters(new)
    project.set_settings(**{SETTING_KEY: new})


def fingerprint(params: dict[str, Any], cell_size: float) -> str:
    """SHA-256 of what decides results: the parameters without engine/notes, and the cell."""
    core = {k: v for k, v in params.items() if k not in NON_RESULT_SECTIONS}
    core["_cell_size_m"] = float(cell_size)
    text = json.dumps(core, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
