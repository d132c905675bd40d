"""Statistics tables (CSV + XLSX) and one map + histogram PNG per result, with Chinese labels.

Matplotlib runs on the Agg backend (no screen). Maps are drawn from a decimated read of each
raster (at most ``max_pixels`` per side), so drawing never loads a big raster whole. The
CJK font is "Noto Sans CJK SC" when installed (naming the SC family keeps matplotlib off the
JP face of the same .ttc), else "WenQuanYi Micro Hei"; without either the labels fall back
to whatever matplotlib has and a note says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..fonts import CJK_FAMILIES, cjk_font  # noqa: F401 (re-exported)
from .run import OUTPUT_SPECS, AssessmentRun, colours, legend

CAPACITY_COLUMNS = {
    "unit": "评价单元", "water_agriculture_m3": "农业可用水量（m³）",
    "water_urban_m3": "城镇可用水量（m³）",
    "farmland_land_limited_ha": "耕地：土地约束（公顷）",
    "farmland_water_limited_ha": "耕地：水资源约束（公顷）",
    "farmland_carrying_ha": "可承载耕地规模（公顷）", "farmland_limited_by": "耕地短板",
    "farmland_current_ha": "现状耕地（公顷）", "farmland_overload": "耕地超载",
    "population_carrying": "可承载人口（人）", "population_current": "现状人口（人）",
    "population_overload": "人口超载",
    "urban_land_limited_ha": "城镇建设用地：土地约束（公顷）",
    "urban_water_limited_ha": "城镇建设用地：水资源约束（公顷）",
    "urban_carrying_ha": "可承载城镇建设用地规模（公顷）", "urban_limited_by": "城镇短板",
    "urban_current_ha": "现状城镇建设用地（公顷）", "urban_overload": "城镇建设用地超载",
}
STAT_COLUMNS = {"unit": "乡镇", "layer": "图层", "zone": "规划分区", "result": "结果",
                "result_zh": "评价结果", "code": "代码", "class": "类别", "cells": "栅格数",
                "area_ha": "面积（公顷）", "share": "占比"}
FINDING_COLUMNS = {"conflict_id": "编号", "conflict_type": "类型", "type_name": "类型名称",
                   "severity": "严重程度", "layer_a": "规划图层", "fid_a": "要素编号",
                   "code_a": "地类代码", "name_a": "地类名称", "layer_b": "评价结果",
                   "name_b": "评价类别", "area_m2": "面积（m²）", "area_mu": "面积（亩）",
                   "share": "占要素比例", "township": "乡镇"}


def _limited(v: Any) -> Any:
    return {"land": "土地", "water": "水资源"}.get(v, v)


def capacity_frame(run: AssessmentRun) -> pd.DataFrame:
    frames = []
    cur = run.capacity.get("current", {})
    if cur.get("rows"):
        df = pd.DataFrame(cur["rows"])
        df.insert(0, "scenario", "现状情景")
        frames.append(df)
    for sid, sc in run.capacity.get("scenarios", {}).items():
        df = pd.DataFrame(sc["rows"])
        df.insert(0, "scenario", sc.get("zh", sid))
        frames.append(df)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    for c in ("farmland_limited_by", "urban_limited_by"):
        if c in df:
            df[c] = df[c].map(_limited)
    return df.rename(columns={"scenario": "情景", **CAPACITY_COLUMNS})


def write_tables(run: AssessmentRun, out_dir: Path) -> dict[str, Path]:
    """CSV files (UTF-8 with BOM, so Excel opens them) and one XLSX workbook."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tw = run.stats_township.rename(columns=STAT_COLUMNS)
    zone = run.stats_zone.rename(columns=STAT_COLUMNS)
    cap = capacity_frame(run)
    fnd = pd.DataFrame(run.findings, columns=list(FINDING_COLUMNS)).rename(
        columns=FINDING_COLUMNS)
    notes = pd.DataFrame([{"代码": n["code"], "说明": n["zh"], "note": n["en"]}
                          for n in run.notes], columns=["代码", "说明", "note"])
    meta = pd.DataFrame([
        {"项目": "运行编号 run id", "值": run.run_id},
        {"项目": "时间 time (UTC)", "值": run.time},
        {"项目": "参数文件 parameters", "值": run.params_version},
        {"项目": "网格 grid", "值": f"EPSG:{run.grid.epsg}，{run.grid.cell:g} 米，"
                                    f"{run.grid.width} × {run.grid.height}"},
        {"项目": "面积算法 area", "值": "平面面积（项目坐标系）/ planar in the project CRS"},
        {"项目": "适宜性类别 classes", "值": run.class_scheme_text},
        {"项目": "合成输入 synthetic inputs", "值": "、".join(run.synthetic_inputs) or "无"},
    ])
    paths = {
        "stats_township_csv": out_dir / "双评价_乡镇统计.csv",
        "stats_zone_csv": out_dir / "双评价_规划分区统计.csv",
        "capacity_csv": out_dir / "双评价_承载规模.csv",
        "findings_csv": out_dir / "双评价_规划冲突.csv",
        "xlsx": out_dir / "双评价_统计.xlsx",
    }
    tw.to_csv(paths["stats_township_csv"], index=False, encoding="utf-8-sig")
    zone.to_csv(paths["stats_zone_csv"], index=False, encoding="utf-8-sig")
    cap.to_csv(paths["capacity_csv"], index=False, encoding="utf-8-sig")
    fnd.to_csv(paths["findings_csv"], index=False, encoding="utf-8-sig")
    with pd.ExcelWriter(paths["xlsx"], engine="openpyxl") as xl:
        meta.to_excel(xl, sheet_name="运行信息", index=False)
        tw.to_excel(xl, sheet_name="乡镇统计", index=False)
        zone.to_excel(xl, sheet_name="规划分区统计", index=False)
        cap.to_excel(xl, sheet_name="承载规模", index=False)
        fnd.to_excel(xl, sheet_name="规划冲突", index=False)
        notes.to_excel(xl, sheet_name="说明", index=False)
    return paths


def _read_small(path: Path, max_pixels: int) -> tuple[np.ndarray, tuple[float, ...]]:
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        f = max(1, int(np.ceil(max(ds.width, ds.height) / max_pixels)))
        shape = (max(1, ds.height // f), max(1, ds.width // f))
        arr = ds.read(1, out_shape=shape, resampling=Resampling.nearest, masked=False)
        b = ds.bounds
    return arr, (b.left, b.right, b.bottom, b.top)


def write_charts(project: Any, run: AssessmentRun, out_dir: Path, params: dict[str, Any],
                 *, max_pixels: int = 800, dpi: int = 100) -> dict[str, Path]:
    """One PNG per result raster: the map (left) and the class areas or value histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    out_dir.mkdir(parents=True, exist_ok=True)
    fam = cjk_font()
    rc = {"axes.unicode_minus": False}
    if fam:
        rc["font.family"] = "sans-serif"
        rc["font.sans-serif"] = [fam, "DejaVu Sans"]
    paths = {}
    cell_ha = run.grid.cell_area_m2 / 1e4
    with plt.rc_context(rc):
        for key, o in run.outputs.items():
            spec = OUTPUT_SPECS[key]
            arr, ext = _read_small(project.folder / o["path"], max_pixels)
            fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 5),
                                          gridspec_kw={"width_ratios": [1.35, 1]})
            title = spec.zh + ("（含合成数据）" if o.get("synthetic") else "")
            fig.suptitle(f"{project.county} {title}", fontsize=14)
            if spec.legend == "continuous":
                data = np.where(np.isfinite(arr), arr, np.nan)
                im = ax.imshow(data, extent=ext, cmap="terrain" if key == "relief" else "viridis",
                               interpolation="nearest")
                fig.colorbar(im, ax=ax, shrink=0.8, label=f"{spec.zh}（{spec.unit}）")
                vals = data[np.isfinite(data)]
                ax2.hist(vals, bins=40, color="#4a7bb7")
                ax2.set_xlabel(f"{spec.zh}（{spec.unit}）")
                ax2.set_ylabel("栅格数（抽样）")
                ax2.set_title("数值分布")
            else:
                lab = legend(params, spec.legend)
                cols = colours(spec.legend)
                codes = sorted(lab)
                cmap = ListedColormap([np.array(cols.get(c, (200, 200, 200, 255))) / 255
                                       for c in codes])
                norm = BoundaryNorm([c - 0.5 for c in codes] + [codes[-1] + 0.5], cmap.N)
                ax.imshow(np.ma.masked_equal(arr, 0), extent=ext, cmap=cmap, norm=norm,
                          interpolation="nearest")
                ax.legend(handles=[Patch(color=np.array(cols.get(c, (200, 200, 200, 255))) / 255,
                                         label=lab[c]) for c in codes],
                          loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=4,
                          fontsize=8, frameon=False)
                st = run.stats_township
                area = (st[st["result"] == key].groupby("code")["area_ha"].sum()
                        if key in set(st["result"]) else None)
                if area is None:
                    cnt = np.bincount(arr.ravel(), minlength=max(codes) + 1)
                    f = (run.grid.width * run.grid.height) / max(arr.size, 1)
                    area = pd.Series({c: cnt[c] * f * cell_ha for c in codes})
                heights = [float(area.get(c, 0.0)) for c in codes]
                ax2.bar([lab[c] for c in codes], heights,
                        color=[np.array(cols.get(c, (200, 200, 200, 255))) / 255 for c in codes],
                        edgecolor="#555")
                ax2.set_ylabel("面积（公顷）")
                ax2.set_title("各类面积")
                ax2.tick_params(axis="x", labelrotation=20)
                for i, hgt in enumerate(heights):
                    ax2.annotate(f"{hgt:,.0f}", (i, hgt), ha="center", va="bottom", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            x0, x1, y0, y1 = ext
            ax.set_xlabel(f"范围 X {x0:,.0f}–{x1:,.0f} 米，Y {y0:,.0f}–{y1:,.0f} 米"
                          f"（EPSG:{run.grid.epsg}）", fontsize=8)
            fig.text(0.01, 0.01, f"参数 {run.params_version} · 网格 {run.grid.cell:g} 米 · "
                                 f"运行 {run.run_id[:8]} · 平面面积", fontsize=7, color="#555")
            fig.subplots_adjust(left=0.08, right=0.97, bottom=0.2, top=0.86, wspace=0.32)
            path = out_dir / f"{spec.layer}.png"
            fig.savefig(path, dpi=dpi)
            plt.close(fig)
            paths[key] = path
    return paths


def write_reports(project: Any, run: AssessmentRun, out_dir: Path | None = None,
                  *, charts: bool = True) -> dict[str, Any]:
    from .params import project_parameters

    out_dir = Path(out_dir) if out_dir else project.folder / "exports" / "assessment"
    params = project_parameters(project)
    tables = write_tables(run, out_dir)
    pngs = write_charts(project, run, out_dir, params) if charts else {}
    return {"dir": out_dir, "tables": tables, "charts": pngs, "font": cjk_font()}
