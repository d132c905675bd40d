"""Statistics tables of the public-disclosure export (issue 9 part 5).

Every table here is built from a computation that already exists elsewhere in the core; this
module only gathers, labels and writes them:

* 用地用海结构 — 现状 vs 规划 by level-1 class of the unified 2023 code
  (:meth:`multiplan.core.qa.LayerData.unified`, the same per-layer reading every check uses);
* 三区三线面积 — :func:`multiplan.core.redlines.control_line_area` per control-line role;
* 三生空间 — :func:`multiplan.core.sansheng.compute` (county rows);
* 差异图斑汇总 — the stored register (:func:`multiplan.core.conflicts.read_register`) grouped by
  type and severity, with the headline numbers of :func:`~multiplan.core.conflicts.register_summary`;
* 双评价结果 and 承载规模 — the latest recorded run
  (:func:`multiplan.core.assessment.records.latest_run`; its township statistics and capacity).

Each table carries the area method and the rule/parameter versions it depends on (the
``note`` of a :class:`StatTable`); the XLSX sheet prints them above the table and every CSV
row carries them in two columns, so a table never travels without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ..project import Project
from ..tasks import Task, ensure_task

__all__ = ["StatTable", "area_method_text", "build_tables", "versions", "write_tables"]

METHOD_COL = "面积算法 area method"
VERSION_COL = "版本 versions"

CONTROL_ROLES = (("eco_redline", "生态保护红线"), ("basic_farmland", "永久基本农田"),
                 ("urban_boundary", "城镇开发边界"))


@dataclass
class StatTable:
    """One statistics table: a stable key, a sheet title, the frame and what it depends on."""

    key: str
    title: str
    frame: pd.DataFrame
    area_method: str
    versions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def area_method_text(project: Project, method: str | None = None) -> str:
    method = method or str(project.setting("area_method") or "planar")
    if method == "ellipsoidal":
        return ("椭球面积（CGCS2000 椭球，pyproj.Geod）/ ellipsoidal area on the CGCS2000 "
                "ellipsoid (pyproj.Geod)")
    return (f"平面面积（项目坐标系 EPSG:{project.epsg} 高斯-克吕格投影）/ planar area in the "
            f"project CRS EPSG:{project.epsg} (Gauss-Krüger)")


def _areas(lay: Any, method: str) -> np.ndarray:
    """Per-feature areas of a LayerData: planar from the layer (cached there), ellipsoidal
    with pyproj.Geod on GRS80 (CGCS2000's ellipsoid differs by < 0.1 mm in b)."""
    if method != "ellipsoidal":
        return lay.area
    import geopandas as gpd
    from pyproj import Geod

    geod = Geod(ellps="GRS80")
    ll = gpd.GeoSeries(lay.geoms, crs=lay.frame.crs).to_crs(4490)
    return np.asarray([0.0 if g is None or g.is_empty else
                       abs(geod.geometry_area_perimeter(g)[0]) for g in ll.values], dtype=float)


def versions(project: Project) -> dict[str, str]:
    """Version ids of every rule and parameter table an export depends on."""
    from ..assessment.records import latest_run
    from ..classification import load_scheme, sansheng_table_version
    from ..conflicts import load_rules
    from ..indicators import load_indicator_table
    from ..qa import load_params

    out = {
        "conflict_rules": load_rules().version_id,
        "qa_checks": load_params().version_id,
        "indicators": load_indicator_table().version_id,
        "sansheng": sansheng_table_version(project.setting("sansheng_overrides") or None),
    }
    for sid in ("ydyh2023", "gbt21010_2017", "gbt21010_2007", "gb50137_2011"):
        out[f"classification.{sid}"] = load_scheme(sid).version_id
    from ..sheets import styles_version

    out["sheet_styles"] = styles_version()
    run = latest_run(project)
    if run is not None:
        rf = run.get("rule_file") or {}
        out["assessment_params"] = str(rf.get("version_id", ""))
        out["assessment_params_sha256"] = str(run.get("params_sha256", ""))
        out["assessment_run"] = str(run.get("run_id", ""))
    else:
        from ..assessment.params import rule_file_info
        out["assessment_params"] = rule_file_info()["version_id"] + "（未运行 / never run）"
    return out


# --------------------------------------------------------------------------- tables

def _class_versions(ctx: Any, names: list[str | None]) -> list[str]:
    """The 2023 table and, for a layer imported from a legacy scheme, its crosswalk."""
    from ..classification import load_crosswalk, load_scheme

    out = [load_scheme("ydyh2023").version_id]
    for n in names:
        if n is None:
            continue
        scheme = ctx.record(n).scheme
        if scheme and scheme.lower() != "ydyh2023":
            try:
                out.append(load_crosswalk(scheme).version_id)
            except Exception:  # noqa: BLE001 — an unknown scheme is named as it is
                out.append(f"{scheme} (no crosswalk)")
    return list(dict.fromkeys(out))


def _level1(ctx: Any, name: str | None, method: str) -> pd.DataFrame:
    from ..classification import STATUS_PENDING

    cols = ["code", "area_m2"]
    if name is None:
        return pd.DataFrame(columns=cols)
    lay = ctx.layer(name)
    code, status, _ = lay.unified()
    l1 = np.asarray([c[:2] if isinstance(c, str) and len(c) >= 2 else
                     ("待定" if s == STATUS_PENDING else "未分类") for c, s in zip(code, status,
                                                                           strict=True)],
                    dtype=object)
    df = pd.DataFrame({"code": l1, "area_m2": _areas(lay, method)})
    return df.groupby("code", sort=True)["area_m2"].sum().reset_index()


def landuse_structure(ctx: Any, method: str) -> StatTable:
    from ..classification import load_scheme

    scheme = load_scheme("ydyh2023")
    cur_name, plan_name = ctx.current_layer(), ctx.plan_layer()
    cur = _level1(ctx, cur_name, method).set_index("code")["area_m2"]
    plan = _level1(ctx, plan_name, method).set_index("code")["area_m2"]
    codes = sorted(set(cur.index) | set(plan.index), key=lambda c: (not c[:1].isdigit(), c))
    ct, pt = float(cur.sum()), float(plan.sum())
    rows = []
    for c in codes:
        e = scheme.get(c) if c[:1].isdigit() else None
        a, b = float(cur.get(c, 0.0)), float(plan.get(c, 0.0))
        rows.append({"一级类代码": c, "一级类名称": e.name if e else c,
                     "现状面积（公顷）": round(a / 1e4, 4),
                     "现状占比（%）": round(a / ct * 100, 4) if ct else 0.0,
                     "规划面积（公顷）": round(b / 1e4, 4),
                     "规划占比（%）": round(b / pt * 100, 4) if pt else 0.0,
                     "增减（公顷）": round((b - a) / 1e4, 4)})
    rows.append({"一级类代码": "合计", "一级类名称": "合计 total",
                 "现状面积（公顷）": round(ct / 1e4, 4), "现状占比（%）": 100.0 if ct else 0.0,
                 "规划面积（公顷）": round(pt / 1e4, 4), "规划占比（%）": 100.0 if pt else 0.0,
                 "增减（公顷）": round((pt - ct) / 1e4, 4)})
    notes = [f"现状图层 current layer: {cur_name or '（无 none）'}",
             f"规划图层 plan layer: {plan_name or '（无 none）'}",
             ("类别取统一的 2023 用地用海代码前两位；“待定”为映射未决的图斑 / level-1 class of the "
             "unified 2023 code; 待定 = crosswalk pending")]
    return StatTable("landuse_structure", "用地用海结构", pd.DataFrame(rows),
                     area_method_text(ctx.project, method),
                     _class_versions(ctx, [cur_name, plan_name]), notes)


def control_lines(ctx: Any, method: str) -> StatTable:
    from ..redlines import control_line_area

    county = ctx.county
    county_area = (float(_areas(ctx.layer(ctx.county_layer), method).sum())
                   if county is not None else float("nan"))
    rows = []
    for role, zh in CONTROL_ROLES:
        names = ctx.layers_of_role(role)
        if method == "ellipsoidal":
            area = float(sum(_areas(ctx.layer(n), method).sum() for n in names))
        else:
            area = control_line_area(ctx, role)
        count = int(sum(len(ctx.layer(n)) for n in names))
        rows.append({"控制线": zh, "图层": "、".join(names) or "（无 none）", "图斑数": count,
                     "面积（公顷）": round(area / 1e4, 4),
                     "占县域（%）": round(area / county_area * 100, 4)
                     if county_area and np.isfinite(county_area) else None})
    notes = [f"县域面积 county area: {county_area / 1e4:,.4f} 公顷" if np.isfinite(county_area)
             else "项目无行政区图层 / no county boundary layer",
             ("面积为图层要素面积之和（图层内重叠会重复计入，见质检）/ sum of feature areas "
             "(overlaps within a layer count twice; see the QA checks)")]
    return StatTable("control_lines", "三区三线面积", pd.DataFrame(rows),
                     area_method_text(ctx.project, method), [], notes)


def sansheng_shares(ctx: Any) -> StatTable:
    from .. import sansheng

    try:
        name = sansheng._layer_choice(ctx, None)
    except sansheng.SanshengError as exc:
        return StatTable("sansheng", "三生空间", pd.DataFrame(columns=["三生类别", "面积（公顷）",
                                                                    "占比（%）"]),
                         area_method_text(ctx.project, "planar"), [], [exc.zh])
    res = sansheng.compute(ctx, name, ctx.setting("sansheng_overrides") or None)
    df = res.county.rename(columns={"class": "三生类别", "area_ha": "面积（公顷）",
                                    "share": "占比（%）"})[["三生类别", "面积（公顷）", "占比（%）"]]
    df = df[df["面积（公顷）"] > 0].copy()
    df["面积（公顷）"] = df["面积（公顷）"].round(4)
    df["占比（%）"] = df["占比（%）"].round(4)
    return StatTable("sansheng", "三生空间", df.reset_index(drop=True),
                     area_method_text(ctx.project, "planar"),
                     [res.version, *_class_versions(ctx, [name])], [f"图层 layer: {name}"])


def _review_decided(project: Project) -> set[str]:
    """Ids of register rows with a current review decision other than 待定
    (:func:`multiplan.core.review.decisions`)."""
    from ..review import decisions

    d = decisions(project)
    if not len(d):
        return set()
    keep = (~d["obsolete"].astype(bool)) & (d["status"].astype(str) != "待定")
    return set(d.loc[keep, "item_id"].astype(str))


def conflict_summary(project: Project) -> StatTable:
    from ..conflicts import load_rules, read_register, register_summary

    rules = load_rules()
    reg = read_register(project)
    cols = ["类型", "类型名称", "程度", "图斑数", "面积（公顷）", "规则待定图斑数",
            "已裁定图斑数", "已裁定面积（公顷）", "未裁定图斑数", "未裁定面积（公顷）"]
    if not len(reg):
        return StatTable("conflicts", "差异图斑汇总", pd.DataFrame(columns=cols),
                         area_method_text(project, "planar"), [rules.version_id],
                         [("登记表为空或尚未运行冲突检测 / the register is empty (conflicts "
                          "not detected yet)")])
    main = pd.DataFrame(reg.drop(columns=[reg.geometry.name]))
    main = main.loc[~main["sliver"].astype(bool)]
    decided = main["conflict_id"].astype(str).isin(_review_decided(project)).to_numpy()
    main = main.assign(_pend=main["pending"].astype(bool).astype(int),
                       _dn=decided.astype(int), _dh=np.where(decided, main["area_ha"], 0.0),
                       _on=(~decided).astype(int),
                       _oh=np.where(decided, 0.0, main["area_ha"]))
    g = main.groupby(["conflict_type", "type_name", "severity"], sort=True, dropna=False)
    df = g.agg(n=("area_ha", "size"), ha=("area_ha", "sum"), p=("_pend", "sum"),
               dn=("_dn", "sum"), dh=("_dh", "sum"), on=("_on", "sum"),
               oh=("_oh", "sum")).reset_index()
    df.columns = cols
    total = {c: df[c].sum() for c in cols[3:]}
    df = pd.concat([df, pd.DataFrame([{"类型": "合计", "类型名称": "合计 total", "程度": "",
                                       **total}])], ignore_index=True)
    for c in ("面积（公顷）", "已裁定面积（公顷）", "未裁定面积（公顷）"):
        df[c] = df[c].astype(float).round(4)
    s = register_summary(reg, rules)
    notes = [f"冲突（冲突+警告）{s['conflicts']} 处，{s['conflict_area_ha']} 公顷 / conflicts",
             f"碎片 {s['slivers']} 处不计入 / slivers not counted",
             ("已裁定 = 评议有决定（非“待定”）；未裁定 = 尚无决定；规则待定 = 规则无法确定归属 / "
             "decided = a review decision other than 待定; open = none yet; rule-pending = "
             "the rules cannot settle it")]
    return StatTable("conflicts", "差异图斑汇总", df, area_method_text(project, "planar"),
                     [rules.version_id], notes)


def assessment_tables(project: Project) -> list[StatTable]:
    from ..assessment.records import latest_run
    from ..assessment.report import capacity_frame

    run = latest_run(project)
    cell_note = "栅格面积 = 栅格数 × 像元面积（项目坐标系）/ cell count × cell area (planar)"
    if run is None:
        empty = ["尚未运行双评价 / the assessment has not been run"]
        return [StatTable("assessment", "双评价结果", pd.DataFrame(
                    columns=["评价结果", "类别", "面积（公顷）", "占比（%）"]),
                    cell_note, [], empty),
                StatTable("capacity", "承载规模", pd.DataFrame(), cell_note, [], empty)]
    summ = run.get("summary") or {}
    ver = [str((run.get("rule_file") or {}).get("version_id", "")),
           f"run {run.get('run_id')}"]
    tw = pd.DataFrame(summ.get("stats_township") or [])
    if len(tw):
        t = tw.groupby(["result", "result_zh", "code", "class"], as_index=False,
                       sort=True)[["area_ha", "cells"]].sum()
        tot = t.groupby("result")["cells"].transform("sum")
        t["share"] = t["cells"] / tot * 100.0
        res = pd.DataFrame({"评价结果": t["result_zh"], "结果代码": t["result"],
                            "类别代码": t["code"], "类别": t["class"],
                            "面积（公顷）": t["area_ha"].round(4),
                            "占比（%）": t["share"].round(4)})
    else:
        res = pd.DataFrame(columns=["评价结果", "结果代码", "类别代码", "类别", "面积（公顷）",
                                    "占比（%）"])
    notes = [f"运行 run: {run.get('run_id')} ({run.get('time')})",
             f"像元 cell: {run.get('cell_size_m')} m"]
    if summ.get("synthetic_inputs"):
        notes.append("合成输入 synthetic inputs: " + "、".join(summ["synthetic_inputs"]))
    cap = capacity_frame(SimpleNamespace(capacity=summ.get("capacity") or {}))
    cap_notes = list(notes)
    src = ((run.get("params") or {}).get("capacity") or {}).get("source_note")
    if src:
        cap_notes.append(str(src))
    return [StatTable("assessment", "双评价结果", res, cell_note, ver, notes),
            StatTable("capacity", "承载规模", cap, cell_note, ver, cap_notes)]


def build_tables(project: Project, *, area_method: str | None = None,
                 task: Task | None = None) -> list[StatTable]:
    """All statistics tables of the export, in sheet order."""
    from ..qa import CheckContext

    task = ensure_task(task)
    method = area_method or str(project.setting("area_method") or "planar")
    ctx = CheckContext(project, task=task.sub(0.0, 0.6))
    task.progress(0.0, "用地用海结构 / land-use structure")
    out = [landuse_structure(ctx, method)]
    task.progress(0.2, "三区三线 / control lines")
    out.append(control_lines(ctx, method))
    task.progress(0.3, "三生空间 / 三生 space")
    out.append(sansheng_shares(ctx))
    task.progress(0.7, "差异图斑 / conflicts")
    out.append(conflict_summary(project))
    task.progress(0.85, "双评价 / assessment")
    out.extend(assessment_tables(project))
    task.progress(1.0, "")
    return out


# --------------------------------------------------------------------------- writing

def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def write_tables(tables: list[StatTable], out_dir: str | Path, *, common_versions: list[str],
                 stem: str = "统计表") -> dict[str, Path]:
    """One XLSX (a sheet per table, the area method and versions above each table) and one
    CSV per table (UTF-8 with BOM; every row carries the area method and versions).
    Returns ``{key: path}`` with ``xlsx`` for the workbook."""
    import openpyxl
    from openpyxl.styles import Font

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for i, t in enumerate(tables, start=1):
        vers = "; ".join(dict.fromkeys([*t.versions, *common_versions]))
        ws = wb.create_sheet(t.title[:31])
        ws.append([t.title])
        ws["A1"].font = Font(bold=True)
        ws.append(["面积算法 area method", t.area_method])
        ws.append(["版本 versions", vers])
        for n in t.notes:
            ws.append(["说明 note", n])
        ws.append([])
        ws.append([str(c) for c in t.frame.columns])
        for row in t.frame.itertuples(index=False, name=None):
            ws.append([_plain(v) for v in row])
        for col, width in zip("ABCDEFGHIJ", (18, 22, 16, 16, 16, 16, 16, 16, 16, 16),
                              strict=True):
            ws.column_dimensions[col].width = width
        csv = t.frame.copy()
        csv[METHOD_COL] = t.area_method
        csv[VERSION_COL] = vers
        path = out / f"{i:02d}_{t.title}.csv"
        csv.to_csv(path, index=False, encoding="utf-8-sig")
        paths[t.key] = path
    xlsx = out / f"{stem}.xlsx"
    wb.save(xlsx)
    paths["xlsx"] = xlsx
    return paths
