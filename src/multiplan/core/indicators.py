"""Binding indicators (约束性指标) and the farmland requisition–compensation balance (耕地占补平衡).

Indicators
    The upper-level plan hands each county 耕地保有量, 永久基本农田保护面积, 生态保护红线面积,
    城乡建设用地规模 and 开发强度 (construction land ÷ county land area). Their definitions (how
    each is measured on the plan) live in ``resources/standards/indicators.json`` (versioned,
    schema-checked, no eval). Targets are entered per project (:func:`set_targets`, stored in
    the setting ``indicator_targets`` in 公顷, or as a ratio for 开发强度) or imported from a
    CSV table (:func:`import_targets_csv`). The ``indicators`` check compares the plan with
    each target: for a *min* indicator the surplus is plan − target, for a *max* indicator
    target − plan; a negative surplus is a deficit (an error, blocking).

耕地占补平衡
    The ``farmland_balance`` check overlays 现状 (current use) with the plan through the overlay
    kernel: cultivated land (2023 code 01…) that the plan makes construction land is *占用*;
    land not cultivated now that the plan makes cultivated is *补充*. Balanced when 补充 ≥ 占用
    by area; where a grade field is present (ZLDJ, GDZLDJ, GDDB … — lower is better, as in
    耕地质量等别/等级) on both sides, also by quality: for every grade g, the land added at
    grade g or better must be at least the land taken at grade g or better (占优补优). The
    pieces are stored in ``mp_farmland_balance``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .errors import MultiplanError, StandardsError
from .layers import ROLES
from .overlay import overlay_intersection
from .project import Project
from .qa import CheckContext, CheckResult, LayerData, _noise

__all__ = [
    "BALANCE_TABLE",
    "CHECKS",
    "RESULTS_TABLE",
    "IndicatorTable",
    "TargetError",
    "import_targets_csv",
    "load_indicator_table",
    "parse_targets_csv",
    "set_targets",
    "validate_indicator_table",
]

RESULTS_TABLE = "mp_indicator_results"
BALANCE_TABLE = "mp_farmland_balance"
_KINDS = ("plan_codes", "layer_area", "plan_construction", "construction_share")


class TargetError(MultiplanError):
    """An indicator target (entered or imported) is not usable."""

    exit_code = 3


# =========================================================================== the table

@dataclass(frozen=True)
class IndicatorTable:
    data: dict[str, Any]
    path: str | None = None

    @property
    def version_id(self) -> str:
        return f"{self.data['id']}/{self.data['version']}"

    @property
    def indicators(self) -> list[dict[str, Any]]:
        return list(self.data["indicators"])

    def indicator(self, key: str) -> dict[str, Any] | None:
        """By id, Chinese or English name (case and blanks ignored)."""
        k = re.sub(r"\s+", "", str(key)).lower()
        for ind in self.data["indicators"]:
            for v in (ind["id"], ind["zh"], ind["en"]):
                if re.sub(r"\s+", "", v).lower() == k:
                    return ind
        return None

    @property
    def units(self) -> dict[str, float]:
        return dict(self.data["units"])

    @property
    def balance(self) -> dict[str, Any]:
        return dict(self.data["farmland_balance"])


def _bad(path: str | None, where: str, zh: str, en: str) -> StandardsError:
    return StandardsError("standards.indicators", f"指标参数表 {where}：{zh}",
                          f"indicator table, {where}: {en}", path=path)


def validate_indicator_table(data: Any, path: str | None = None) -> None:
    """Check the structure of an ``indicators`` table (no eval); raise naming the entry."""
    if not isinstance(data, dict):
        raise _bad(path, "顶层", "必须是 JSON 对象", "must be a JSON object")
    for k in ("id", "version", "kind", "title", "source", "confidence", "units", "indicators",
              "farmland_balance"):
        if k not in data:
            raise _bad(path, "表头", f"缺少 {k}", f"missing key {k!r}")
    if data["kind"] != "indicators":
        raise _bad(path, "表头", "kind 须为 indicators", "kind must be 'indicators'")
    extra = set(data) - {"id", "version", "kind", "title", "source", "confidence", "notes",
                         "units", "indicators", "farmland_balance"}
    if extra:
        raise _bad(path, "顶层", f"未知的键 {sorted(extra)}", f"unknown keys {sorted(extra)}")
    units = data["units"]
    if not isinstance(units, dict) or not units or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            for v in units.values()):
        raise _bad(path, "units", "须为 单位 → 正数换算系数", "must map units to positive factors")
    seen: set[str] = set()
    if not isinstance(data["indicators"], list) or not data["indicators"]:
        raise _bad(path, "indicators", "须为非空列表", "must be a non-empty list")
    for i, ind in enumerate(data["indicators"]):
        where = f"indicators[{i}]"
        if not isinstance(ind, dict) or set(ind) != {"id", "zh", "en", "direction", "unit",
                                                     "measure"}:
            raise _bad(path, where, "键须为 id, zh, en, direction, unit, measure",
                       "keys must be id, zh, en, direction, unit, measure")
        if not isinstance(ind["id"], str) or not re.fullmatch(r"[a-z][a-z0-9_]*", ind["id"]):
            raise _bad(path, where, f"编号 {ind['id']!r} 无效", f"bad id {ind['id']!r}")
        if ind["id"] in seen:
            raise _bad(path, where, f"编号 {ind['id']} 重复", f"duplicate id {ind['id']}")
        seen.add(ind["id"])
        if ind["direction"] not in ("min", "max"):
            raise _bad(path, where, "direction 须为 min 或 max", "direction must be min or max")
        if ind["unit"] not in ("ha", "ratio"):
            raise _bad(path, where, "unit 须为 ha 或 ratio", "unit must be ha or ratio")
        m = ind["measure"]
        if not isinstance(m, dict) or m.get("kind") not in _KINDS:
            raise _bad(path, where, f"measure.kind 须为 {', '.join(_KINDS)}",
                       f"measure.kind must be one of {', '.join(_KINDS)}")
        allowed = {"plan_codes": {"kind", "prefixes"}, "layer_area": {"kind", "role"},
                   "plan_construction": {"kind", "exclude_prefixes"},
                   "construction_share": {"kind"}}[m["kind"]]
        if set(m) != allowed:
            raise _bad(path, where, f"measure 的键须为 {sorted(allowed)}",
                       f"measure keys must be {sorted(allowed)}")
        for key in ("prefixes", "exclude_prefixes"):
            if key in m and (not isinstance(m[key], list) or not all(
                    isinstance(p, str) and re.fullmatch(r"(?:[0-9]{2}){1,3}", p)
                    for p in m[key])):
                raise _bad(path, where, f"{key} 须为 2023 代码前缀列表",
                           f"{key} must be a list of 2023 code prefixes")
        if "role" in m and m["role"] not in ROLES:
            raise _bad(path, where, f"图层用途 {m['role']!r} 无效", f"unknown role {m['role']!r}")
        if ind["unit"] == "ratio" and m["kind"] != "construction_share":
            raise _bad(path, where, "只有开发强度以比例计", "only construction_share is a ratio")
    fb = data["farmland_balance"]
    if not isinstance(fb, dict) or set(fb) != {"cultivated_prefixes", "grade_fields",
                                               "grade_better"}:
        raise _bad(path, "farmland_balance", "键须为 cultivated_prefixes, grade_fields, "
                   "grade_better", "keys must be cultivated_prefixes, grade_fields, grade_better")
    if fb["grade_better"] not in ("lower", "higher"):
        raise _bad(path, "farmland_balance", "grade_better 须为 lower 或 higher",
                   "grade_better must be lower or higher")
    for key in ("cultivated_prefixes", "grade_fields"):
        if not isinstance(fb[key], list) or not all(isinstance(x, str) and x for x in fb[key]):
            raise _bad(path, f"farmland_balance.{key}", "须为文字列表", "must be a list of text")


@cache
def _packaged() -> IndicatorTable:
    res = resources.files("multiplan").joinpath("resources", "standards", "indicators.json")
    data = json.loads(res.read_text(encoding="utf-8"))
    validate_indicator_table(data, str(res))
    return IndicatorTable(data, str(res))


def load_indicator_table(path: str | Path | None = None) -> IndicatorTable:
    """The packaged indicator definitions (cached), or a validated copy at ``path``."""
    if path is None:
        return _packaged()
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _bad(str(p), "文件", f"无法读取：{exc}", f"cannot read: {exc}") from None
    validate_indicator_table(data, str(p))
    return IndicatorTable(data, str(p))


# =========================================================================== targets

def _canonical(table: IndicatorTable, ind: dict[str, Any], value: Any, unit: str | None,
               where: str) -> float:
    try:
        v = float(str(value).replace(",", "").strip())
    except (TypeError, ValueError):
        raise TargetError("indicators.bad_value", f"{where}：目标值 {value!r} 不是数字",
                          f"{where}: target {value!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise TargetError("indicators.bad_value", f"{where}：目标值 {value!r} 无效",
                          f"{where}: target {value!r} is not a non-negative number")
    u = (unit or "").strip()
    if not u:
        return v
    factors = table.units
    key = u if u in factors else u.lower()
    if key not in factors:
        raise TargetError("indicators.bad_unit", f"{where}：未知单位 {u!r}（可用：{'、'.join(factors)}）",
                          f"{where}: unknown unit {u!r} (known: {', '.join(factors)})")
    ratio_units = {"ratio", "%", "percent"}
    if (ind["unit"] == "ratio") != (key in ratio_units):
        raise TargetError("indicators.bad_unit", f"{where}：单位 {u} 不适用于{ind['zh']}",
                          f"{where}: unit {u} does not fit {ind['en']}")
    return v * float(factors[key])


def set_targets(project: Project, targets: dict[str, Any], *,
                table: IndicatorTable | None = None, replace: bool = False) -> dict[str, float]:
    """Store targets (id or name → value in 公顷 / ratio, or ``(value, unit)``). Returns the
    stored mapping (canonical units, by indicator id)."""
    table = table or load_indicator_table()
    current = {} if replace else dict(project.setting("indicator_targets", {}) or {})
    for key, value in targets.items():
        ind = table.indicator(key)
        if ind is None:
            raise TargetError("indicators.unknown", f"未知的指标：{key}",
                              f"unknown indicator: {key}")
        unit = None
        if isinstance(value, tuple | list):
            value, unit = value
        current[ind["id"]] = _canonical(table, ind, value, unit, ind["zh"])
    project.set_settings(indicator_targets=current)
    return current


_NAME_COLS = ("指标", "指标名称", "indicator", "id", "name")
_VALUE_COLS = ("目标值", "下达值", "指标值", "target", "value")
_UNIT_COLS = ("单位", "unit")


def parse_targets_csv(path: str | Path, table: IndicatorTable | None = None
                      ) -> dict[str, float]:
    """Read a target table (CSV, UTF-8 or GBK): columns 指标/indicator, 目标值/target and
    optionally 单位/unit. Returns {indicator id: canonical value}; errors name the row."""
    table = table or load_indicator_table()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TargetError("indicators.unreadable", f"无法读取指标表：{exc}",
                          f"cannot read the target table: {exc}", path=p) from None
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise TargetError("indicators.encoding", "指标表编码无法识别", "unknown encoding", path=p)
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise TargetError("indicators.empty", "指标表为空", "the target table is empty", path=p)
    head = [c.strip().lower() for c in rows[0]]

    def col(names: tuple[str, ...]) -> int | None:
        for n in names:
            if n.lower() in head:
                return head.index(n.lower())
        return None

    ci, cv, cu = col(_NAME_COLS), col(_VALUE_COLS), col(_UNIT_COLS)
    if ci is None or cv is None:
        raise TargetError("indicators.columns", "指标表须有“指标”和“目标值”两列（或 indicator, target）",
                          "the target table needs columns 指标/indicator and 目标值/target",
                          path=p)
    out: dict[str, float] = {}
    for n, r in enumerate(rows[1:], start=2):
        where = f"{p.name} 第 {n} 行"
        name = r[ci].strip() if ci < len(r) else ""
        if not name:
            continue
        ind = table.indicator(name)
        if ind is None:
            raise TargetError("indicators.unknown", f"{where}：未知的指标“{name}”",
                              f"{p.name} row {n}: unknown indicator {name!r}", path=p)
        value = r[cv] if cv < len(r) else ""
        unit = r[cu] if cu is not None and cu < len(r) else None
        out[ind["id"]] = _canonical(table, ind, value, unit, where)
    return out


def import_targets_csv(project: Project, path: str | Path) -> dict[str, float]:
    """Read a target table (see :func:`parse_targets_csv`) and store it in the project."""
    targets = parse_targets_csv(path)
    current = dict(project.setting("indicator_targets", {}) or {})
    current.update(targets)
    project.set_settings(indicator_targets=current)
    return current


# =========================================================================== measuring

def measure(ctx: CheckContext, ind: dict[str, Any]) -> tuple[float | None, str, str]:
    """The plan's value of an indicator (公顷 or ratio) and how it was measured (zh, en)."""
    m = ind["measure"]
    kind = m["kind"]
    if kind == "layer_area":
        names = ctx.layers_of_role(m["role"])
        if not names:
            return None, f"缺少{ROLES[m['role']][0]}图层", f"no {m['role']} layer"
        a = sum(float(ctx.layer(n).area.sum()) for n in names)
        return a / 1e4, f"图层 {'、'.join(names)} 图斑面积合计", f"Σ feature area of {', '.join(names)}"
    plan = ctx.plan_layer()
    if plan is None:
        return None, "缺少规划用地图层", "no plan layer"
    lay = ctx.layer(plan)
    if kind == "plan_codes":
        sel = lay.code_prefix(m["prefixes"])
        return (float(lay.area[sel].sum()) / 1e4,
                f"“{plan}”中代码 {'/'.join(m['prefixes'])} 开头的图斑",
                f"features of {plan} with codes {'/'.join(m['prefixes'])}…")
    constr = lay.construction()
    if kind == "plan_construction":
        ex = m["exclude_prefixes"]
        sel = constr & ~lay.code_prefix(ex) if ex else constr
        return (float(lay.area[sel].sum()) / 1e4,
                f"“{plan}”中的建设用地（不含 {'/'.join(ex)}）",
                f"construction land of {plan} (without {'/'.join(ex)})")
    county = ctx.county_area
    if not county or not math.isfinite(county):
        return None, "缺少行政区图层", "no administrative boundary layer"
    return (float(lay.area[constr].sum()) / county,
            f"“{plan}”建设用地 ÷ 县域面积", f"construction land of {plan} ÷ county area")


def check_indicators(ctx: CheckContext, res: CheckResult) -> None:
    """Plan values of the binding indicators against the targets handed down."""
    table = load_indicator_table()
    targets = dict(ctx.setting("indicator_targets") or {})
    rows = []
    for ind in table.indicators:
        value, how_zh, how_en = measure(ctx, ind)
        target = targets.get(ind["id"])
        target = float(target) if target is not None else None
        surplus = None
        status = "no_target" if target is None else "no_value" if value is None else None
        if status is None:
            surplus = value - target if ind["direction"] == "min" else target - value
            tol = 1e-9 * max(1.0, abs(target))
            status = "ok" if surplus >= -tol else "deficit"
        unit_zh = "公顷" if ind["unit"] == "ha" else "比例"

        def show(v: float | None, unit: str = ind["unit"]) -> str:
            if v is None:
                return "—"
            return f"{v:,.2f} 公顷" if unit == "ha" else f"{v * 100:.2f}%"

        if status == "deficit":
            if ind["direction"] == "min":
                zh = (f"{ind['zh']}：规划 {show(value)}，低于下达指标 {show(target)}，"
                      f"缺口 {show(-surplus)}")
                en = (f"{ind['en']}: plan {value:,.4f}, below the target {target:,.4f} "
                      f"({ind['unit']}); deficit {-surplus:,.4f}")
            else:
                zh = (f"{ind['zh']}：规划 {show(value)}，超过下达指标 {show(target)}，"
                      f"超出 {show(-surplus)}")
                en = (f"{ind['en']}: plan {value:,.4f}, above the target {target:,.4f} "
                      f"({ind['unit']}); excess {-surplus:,.4f}")
            res.findings.add("error", zh, en, value=surplus)
        elif status == "no_value" and target is not None:
            res.findings.add("error", f"{ind['zh']}：无法计算规划值（{how_zh}）",
                             f"{ind['en']}: the plan value cannot be measured ({how_en})")
        rows.append({"indicator": ind["id"], "zh": ind["zh"], "en": ind["en"],
                     "direction": ind["direction"], "unit": ind["unit"], "unit_zh": unit_zh,
                     "plan_value": value, "target": target, "surplus": surplus,
                     "status": status, "basis_zh": how_zh, "basis_en": how_en})
    df = pd.DataFrame(rows)
    res.tables[RESULTS_TABLE] = df
    res.report_tables["indicators"] = df
    res.summary = {"version": table.version_id, "targets": len(targets),
                   "deficits": int((df["status"] == "deficit").sum()),
                   "rows": df.to_dict(orient="records")}
    if not targets:
        res.status = "skip"
        res.note("尚未录入上级下达的指标（项目设置 indicator_targets 或导入指标表）；只列出规划值",
                 "no targets entered yet (setting indicator_targets or an imported table); "
                 "plan values only")


# =========================================================================== 耕地占补平衡

def _codes_not(lay: LayerData, prefixes: list[str]) -> np.ndarray:
    """Features whose 2023 code is known (or all candidates agree) and does not start with
    any of ``prefixes``."""
    pre = tuple(prefixes)

    def f(c: str | None, cs: tuple[str, ...]) -> bool:
        if c is not None:
            return not c.startswith(pre)
        return bool(cs) and not any(x.startswith(pre) for x in cs)

    return np.asarray(lay.map_classes(f), dtype=bool)


def _grades(lay: LayerData, fields: list[str]) -> tuple[str | None, np.ndarray]:
    f = lay.column(fields)
    if f is None:
        return None, np.full(len(lay), np.nan)
    return f, pd.to_numeric(lay.frame[f], errors="coerce").to_numpy(dtype=np.float64)


def check_farmland_balance(ctx: CheckContext, res: CheckResult) -> None:
    """耕地占补平衡 between 现状 and the plan (see the module doc)."""
    table = load_indicator_table()
    params = table.balance
    epsg = ctx.project.epsg
    cur_name, plan_name = ctx.current_layer(), ctx.plan_layer()
    if cur_name is None or plan_name is None:
        res.status = "skip"
        res.note("缺少现状用地或规划用地图层，未计算耕地占补平衡",
                 "no current land-use or plan layer: balance not computed")
        res.layers[BALANCE_TABLE] = _balance_frame([], epsg)
        return
    cur, plan = ctx.layer(cur_name), ctx.layer(plan_name)
    pre = params["cultivated_prefixes"]
    cur_cult, cur_not = cur.code_prefix(pre), _codes_not(cur, pre)
    plan_cult, plan_constr = plan.code_prefix(pre), plan.construction()
    g_cur_f, g_cur = _grades(cur, params["grade_fields"])
    g_plan_f, g_plan = _grades(plan, params["grade_fields"])
    parts = []
    for kind, a_sel, b_sel, grades, span in (
            ("占用", np.flatnonzero(cur_cult), np.flatnonzero(plan_constr), "a", (0.0, 0.5)),
            ("补充", np.flatnonzero(cur_not), np.flatnonzero(plan_cult), "b", (0.5, 1.0))):
        r = overlay_intersection(cur.geoms[a_sel], plan.geoms[b_sel],
                                 task=ctx.task.sub(*span), threads=ctx.threads)
        keep = ~_noise(r.geometry, r.area, ctx.xy_tol) if len(r) else np.zeros(0, bool)
        ai, bi = a_sel[r.a_idx[keep]], b_sel[r.b_idx[keep]]
        parts.append({"kind": kind, "cur": ai, "plan": bi, "geometry": r.geometry[keep],
                      "area": r.area[keep],
                      "grade": g_cur[ai] if grades == "a" else g_plan[bi]})
    cur_code, plan_code = cur.unified()[0], plan.unified()[0]
    rows = []
    for p in parts:
        n = len(p["area"])
        rows.append(gpd.GeoDataFrame({
            "kind": [p["kind"]] * n, "current_layer": [cur_name] * n,
            "current_fid": cur.fids[p["cur"]], "current_code": cur_code[p["cur"]],
            "plan_layer": [plan_name] * n, "plan_fid": plan.fids[p["plan"]],
            "plan_code": plan_code[p["plan"]], "grade": p["grade"], "area_m2": p["area"],
            "area_ha": p["area"] / 1e4, "township": ctx.townships_of(p["geometry"])},
            geometry=gpd.GeoSeries(p["geometry"], crs=epsg)))
    frame = _balance_frame(rows, epsg)
    res.layers[BALANCE_TABLE] = frame
    occ = float(parts[0]["area"].sum())
    add = float(parts[1]["area"].sum())
    balanced = add + 1e-6 >= occ
    res.summary = {"current_layer": cur_name, "plan_layer": plan_name,
                   "occupied_ha": round(occ / 1e4, 4), "added_ha": round(add / 1e4, 4),
                   "net_ha": round((add - occ) / 1e4, 4), "balanced_by_area": balanced,
                   "grade_field_current": g_cur_f, "grade_field_plan": g_plan_f,
                   "layer": BALANCE_TABLE}
    if not balanced:
        res.findings.add("error", f"耕地占补不平衡：规划占用耕地 {occ / 1e4:,.2f} 公顷，补充耕地 "
                         f"{add / 1e4:,.2f} 公顷，缺口 {(occ - add) / 1e4:,.2f} 公顷",
                         f"farmland balance not met: the plan takes {occ / 1e4:,.2f} ha of "
                         f"cultivated land and adds {add / 1e4:,.2f} ha; short by "
                         f"{(occ - add) / 1e4:,.2f} ha", area=occ - add, value=add - occ)
    # by township
    if len(frame):
        tw = frame.assign(township=frame["township"].replace("", "（县域外）"))
        piv = pd.pivot_table(tw, index="township", columns="kind", values="area_ha",
                             aggfunc="sum", fill_value=0.0, margins=True, margins_name="合计")
        for k in ("占用", "补充"):
            if k not in piv.columns:
                piv[k] = 0.0
        piv = piv[["占用", "补充"]]
        piv["净增（公顷）"] = piv["补充"] - piv["占用"]
        piv.index.name = "乡镇"
        res.report_tables["farmland_balance_by_township"] = piv.reset_index()
    # by quality grade
    better = params["grade_better"]
    if g_cur_f or g_plan_f:
        occ_g, add_g = parts[0]["grade"], parts[1]["grade"]
        grades = sorted({float(x) for x in np.r_[occ_g, add_g] if not np.isnan(x)},
                        reverse=better == "higher")
        tab = pd.DataFrame({
            "grade": grades,
            "occupied_ha": [float(parts[0]["area"][occ_g == g].sum()) / 1e4 for g in grades],
            "added_ha": [float(parts[1]["area"][add_g == g].sum()) / 1e4 for g in grades]})
        if np.isnan(occ_g).any() or np.isnan(add_g).any():
            tab.loc[len(tab)] = [np.nan, float(parts[0]["area"][np.isnan(occ_g)].sum()) / 1e4,
                                 float(parts[1]["area"][np.isnan(add_g)].sum()) / 1e4]
        res.report_tables["farmland_balance_by_grade"] = tab
        res.summary["by_grade"] = tab.to_dict(orient="records")
        if g_cur_f and g_plan_f and len(grades):
            # 占优补优: at every grade, added land at that grade or better covers the taken
            cum_occ = np.cumsum(tab["occupied_ha"].to_numpy()[:len(grades)])
            cum_add = np.cumsum(tab["added_ha"].to_numpy()[:len(grades)])
            short = np.flatnonzero(cum_add + 1e-10 < cum_occ)
            ok_q = not len(short) and not np.isnan(occ_g).any()
            res.summary["balanced_by_quality"] = bool(ok_q)

            def w_mean(a: np.ndarray, g: np.ndarray) -> float:
                m = ~np.isnan(g)
                return float((a[m] * g[m]).sum() / a[m].sum()) if a[m].sum() > 0 else float("nan")

            res.summary["mean_grade_occupied"] = round(w_mean(parts[0]["area"], occ_g), 3)
            res.summary["mean_grade_added"] = round(w_mean(parts[1]["area"], add_g), 3)
            if not ok_q:
                if len(short):
                    g = grades[int(short[0])]
                    zh_g = f"{g:g} 等及更优的补充耕地 {cum_add[short[0]]:,.2f} 公顷少于占用的 {cum_occ[short[0]]:,.2f} 公顷"
                    en_g = (f"added land of grade {g:g} or better ({cum_add[short[0]]:,.2f} ha) "
                            f"is less than the land taken at that grade ({cum_occ[short[0]]:,.2f} ha)")
                else:
                    zh_g, en_g = "部分占用耕地没有质量等别", "some cultivated land taken has no grade"
                res.findings.add("error", f"耕地占补质量不平衡（占优补优）：{zh_g}",
                                 f"farmland quality not balanced: {en_g}")
        else:
            res.summary["balanced_by_quality"] = None
            res.note("只有一侧图层有耕地质量等别字段，质量平衡无法判定",
                     "only one side carries a grade field: quality balance not decided")


def _balance_frame(rows: list[gpd.GeoDataFrame], epsg: int) -> gpd.GeoDataFrame:
    rows = [r for r in rows if len(r)]
    if rows:
        return gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), geometry="geometry",
                                crs=epsg)
    cols: dict[str, Any] = {c: pd.Series([], dtype=object) for c in (
        "kind", "current_layer", "current_code", "plan_layer", "plan_code", "township")}
    for c in ("current_fid", "plan_fid"):
        cols[c] = pd.Series([], dtype="int64")
    for c in ("grade", "area_m2", "area_ha"):
        cols[c] = pd.Series([], dtype="float64")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=epsg))


CHECKS = {"indicators": check_indicators, "farmland_balance": check_farmland_balance}
