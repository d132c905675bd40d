"""三生 space marking: every parcel of a chosen layer as 生产 / 生活 / 生态 (or 混合), with
statistics by township and for the county, and a chart.

The class comes from the parcel's 2023 code through the versioned 三生 table of
``ydyh2023.json`` (:func:`multiplan.core.classification.sansheng`; longest code prefix wins),
merged with the project's overrides (setting ``sansheng_overrides``: code prefix → class;
:func:`set_overrides` validates and stores them). The table's version id — with a hash of the
overrides when there are any — is printed on every output. A parcel whose code is pending
(待定) takes the class its candidates agree on; otherwise, and without a code, it is 未定
(unclassified) and counted as such.

Marking writes the class into the layer as the column ``mp_sansheng`` and the statistics into
``mp_sansheng_stats`` (公顷 and %, one row per township × class plus the county rows). The
township split is exact: parcels are overlaid with the 乡镇界 by the overlay kernel, so a
parcel crossing a township line counts in both with its pieces. The chart is a matplotlib
PNG (no screen needed) with Chinese labels in "Noto Sans CJK SC" when installed (naming the
SC family keeps matplotlib off the JP face of the same .ttc), else "WenQuanYi Micro Hei".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .classification import sansheng, sansheng_classes, sansheng_table_version
from .errors import MultiplanError
from .fonts import CJK_FAMILIES, cjk_font
from .overlay import overlay_intersection
from .project import Project
from .qa import CheckContext, CheckResult, LayerData

__all__ = [
    "CHECKS",
    "CJK_FAMILIES",
    "COLUMN",
    "STATS_TABLE",
    "UNCLASSIFIED",
    "SanshengResult",
    "cjk_font",
    "classify_layer",
    "draw_chart",
    "mark_sansheng",
    "set_overrides",
]

COLUMN = "mp_sansheng"
STATS_TABLE = "mp_sansheng_stats"
UNCLASSIFIED = "未定"
COUNTY = "全县"
OUTSIDE = "（乡镇界外）"
COLOURS = {"生产": "#E3A72F", "生活": "#D9534F", "生态": "#4CAF50", "混合": "#8E6BB8",
           UNCLASSIFIED: "#B0B0B0"}
CLASS_EN = {"生产": "production", "生活": "living", "生态": "ecological", "混合": "mixed",
            UNCLASSIFIED: "unclassified"}


class SanshengError(MultiplanError):
    exit_code = 2


@dataclass
class SanshengResult:
    """Classes per feature and the statistics of one marking."""

    layer: str
    version: str
    fids: np.ndarray
    classes: np.ndarray
    county: pd.DataFrame  # class, area_m2, area_ha, share
    townships: pd.DataFrame  # township, class, area_m2, area_ha, share
    font: str | None = None

    def wide(self) -> pd.DataFrame:
        """Township × class table in 公顷 with shares in %, county last."""
        return wide_table(self.county, self.townships)

    def stats_rows(self, when: str) -> pd.DataFrame:
        c = self.county.assign(township=COUNTY)
        t = self.townships
        df = pd.concat([t, c], ignore_index=True)[["township", "class", "area_m2", "area_ha",
                                                   "share"]]
        df.insert(0, "layer", self.layer)
        df["version"] = self.version
        df["created_at"] = when
        return df


def class_order() -> list[str]:
    return [*sansheng_classes(), UNCLASSIFIED]


def classify_layer(lay: LayerData, overrides: dict[str, str] | None = None) -> np.ndarray:
    """三生 class per feature (see the module doc for pending and missing codes)."""
    def f(c: str | None, cs: tuple[str, ...]) -> str:
        if c is not None:
            return sansheng(c, overrides) or UNCLASSIFIED
        if cs:
            got = {sansheng(x, overrides) for x in cs}
            if len(got) == 1 and "" not in got:
                return got.pop()
        return UNCLASSIFIED

    return lay.map_classes(f)


def _shares(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    tot = df.groupby(by)["area_m2"].transform("sum") if by else df["area_m2"].sum()
    df = df.copy()
    df["area_ha"] = df["area_m2"] / 1e4
    with np.errstate(divide="ignore", invalid="ignore"):
        df["share"] = np.where(tot > 0, df["area_m2"] / tot * 100.0, 0.0)
    return df


def compute(ctx: CheckContext, layer: str, overrides: dict[str, str] | None = None
            ) -> SanshengResult:
    """Classes and statistics of ``layer`` (no writing)."""
    lay = ctx.layer(layer)
    classes = classify_layer(lay, overrides)
    version = sansheng_table_version(overrides)
    order = class_order()
    area = lay.area
    county = (pd.DataFrame({"class": classes, "area_m2": area}).groupby("class")["area_m2"]
              .sum().reindex(order, fill_value=0.0).reset_index())
    county = _shares(county, [])
    tw_names = ctx.layers_of_role("township")
    if tw_names:
        from .conflicts import load_townships

        tws = load_townships(ctx.project)
        ok = np.flatnonzero(~_missing(lay.geoms))
        res = overlay_intersection(lay.geoms[ok], tws.geoms, task=ctx.task.sub(0.0, 0.9),
                                   threads=ctx.threads)
        cls = classes[ok][res.a_idx]
        tname = np.asarray(tws.names, dtype=object)[res.b_idx]
        inside = np.bincount(res.a_idx, weights=res.area, minlength=len(ok)).astype(float)
        left = area[ok] - inside
        out_sel = left > 1e-6 * np.maximum(area[ok], 1.0)
        df = pd.DataFrame({"township": np.r_[tname, np.full(out_sel.sum(), OUTSIDE)],
                           "class": np.r_[cls, classes[ok][out_sel]],
                           "area_m2": np.r_[res.area, left[out_sel]]})
        names = [*dict.fromkeys(tws.names)]
        if out_sel.any():
            names.append(OUTSIDE)
        idx = pd.MultiIndex.from_product([names, order], names=["township", "class"])
        tw = df.groupby(["township", "class"])["area_m2"].sum().reindex(idx, fill_value=0.0)
        townships = _shares(tw.reset_index(), ["township"])
    else:
        townships = pd.DataFrame({"township": pd.Series([], dtype=object),
                                  "class": pd.Series([], dtype=object),
                                  "area_m2": pd.Series([], dtype=float),
                                  "area_ha": pd.Series([], dtype=float),
                                  "share": pd.Series([], dtype=float)})
    return SanshengResult(layer, version, lay.fids, classes, county, townships)


def _missing(g: np.ndarray) -> np.ndarray:
    import shapely

    m = shapely.is_missing(g)
    m[~m] = shapely.is_empty(g[~m])
    return m


def wide_table(county: pd.DataFrame, townships: pd.DataFrame) -> pd.DataFrame:
    order = class_order()
    rows = []
    for name, grp in list(townships.groupby("township", sort=False)) + [(COUNTY, county)]:
        ha = grp.set_index("class")["area_ha"].reindex(order, fill_value=0.0)
        sh = grp.set_index("class")["share"].reindex(order, fill_value=0.0)
        row: dict[str, Any] = {"乡镇": name}
        for c in order:
            row[f"{c}（公顷）"] = round(float(ha[c]), 2)
        row["合计（公顷）"] = round(float(ha.sum()), 2)
        for c in order:
            row[f"{c}（%）"] = round(float(sh[c]), 2)
        rows.append(row)
    df = pd.DataFrame(rows)
    # a class column that is zero everywhere (e.g. 混合 without overrides) is left out
    for c in order:
        if (df[f"{c}（公顷）"] == 0).all():
            df = df.drop(columns=[f"{c}（公顷）", f"{c}（%）"])
    return df


# --------------------------------------------------------------------------- chart

def draw_chart(result: SanshengResult, path: str | Path, *, dpi: int = 120) -> str | None:
    """A PNG: the county's shares (pie) and each township's shares (stacked bars), labelled
    in Chinese, with the layer and the 三生 table version. Returns the font family used."""
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = cjk_font()
    order = [c for c in class_order()
             if float(result.county.set_index("class")["area_m2"].get(c, 0.0)) > 0
             or (len(result.townships) and float(
                 result.townships[result.townships["class"] == c]["area_m2"].sum()) > 0)]
    fam = [font] if font else list(rcParams["font.sans-serif"])
    old = (rcParams["font.family"], rcParams["font.sans-serif"], rcParams["axes.unicode_minus"])
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = fam + [f for f in old[1] if f not in fam]
    rcParams["axes.unicode_minus"] = False
    try:
        tw = result.townships
        names = list(dict.fromkeys(tw["township"])) if len(tw) else []
        fig = Figure(figsize=(12, max(4.8, 0.38 * len(names) + 2.2)), dpi=dpi)
        FigureCanvasAgg(fig)
        gs = fig.add_gridspec(1, 2, width_ratios=[1, 1.6] if names else [1, 0.01])
        ax = fig.add_subplot(gs[0, 0])
        cty = result.county.set_index("class").reindex(order)
        vals = cty["area_ha"].to_numpy()
        ax.pie(vals, labels=[f"{c}\n{v:,.0f} 公顷" for c, v in zip(order, vals, strict=True)],
               colors=[COLOURS[c] for c in order], autopct="%1.1f%%", startangle=90,
               counterclock=False, wedgeprops={"linewidth": 1, "edgecolor": "white"},
               textprops={"fontsize": 10})
        ax.set_title(f"全县三生空间构成（{vals.sum():,.0f} 公顷）", fontsize=12)
        if names:
            bx = fig.add_subplot(gs[0, 1])
            left = np.zeros(len(names))
            for c in order:
                share = np.asarray([float(tw[(tw["township"] == n) & (tw["class"] == c)]
                                          ["share"].sum()) for n in names])
                bx.barh(names, share, left=left, color=COLOURS[c], label=c, edgecolor="white",
                        linewidth=0.5)
                left += share
            bx.invert_yaxis()
            bx.set_xlim(0, 100)
            bx.set_xlabel("占乡镇面积比例（%）")
            bx.set_title("各乡镇三生空间占比", fontsize=12)
            bx.legend(loc="lower center", bbox_to_anchor=(0.5, -0.16 - 0.2 / max(len(names), 1)),
                      ncol=len(order), frameon=False)
        fig.suptitle(f"三生空间 —— 图层“{result.layer}”（对照表 {result.version}）", fontsize=13)
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        fig.savefig(str(path), dpi=dpi)
    finally:
        rcParams["font.family"], rcParams["font.sans-serif"], rcParams["axes.unicode_minus"] = old
    result.font = font
    return font


# --------------------------------------------------------------------------- API

def _layer_choice(ctx: CheckContext, layer: str | None) -> str:
    if layer is None:
        layer = ctx.setting("sansheng_layer") or ctx.plan_layer() or ctx.current_layer()
    if layer is None:
        raise SanshengError("sansheng.no_layer", "项目中没有可标注三生空间的图层（规划或现状用地）",
                            "no layer to mark: the project has no plan or current land-use layer")
    if not any(r.name == layer for r in ctx.records):
        raise SanshengError("sansheng.unknown_layer", f"项目中没有图层 {layer}",
                            f"no layer named {layer} in the project")
    return str(layer)


def set_overrides(project: Project, overrides: dict[str, str]) -> str:
    """Validate and store the project's 三生 overrides (code prefix → 生产/生活/生态/混合);
    returns the version id now in force."""
    version = sansheng_table_version(overrides)  # validates (StandardsError when bad)
    project.set_settings(sansheng_overrides=dict(overrides))
    return version


def mark_sansheng(project: Project, layer: str | None = None, *,
                  overrides: dict[str, str] | None = None, write: bool = True,
                  chart: str | Path | None = None, task: Any = None) -> SanshengResult:
    """Mark ``layer`` (default: setting ``sansheng_layer``, else the plan layer, else 现状)
    and compute the statistics. ``overrides`` default to the project's. With ``write`` the
    column ``mp_sansheng`` and ``mp_sansheng_stats`` are written in one transaction; with
    ``chart`` a PNG is drawn there."""
    if write:
        project.guard_analysis("mp_sansheng", "标注三生空间（写入 mp_sansheng 字段）",
                                 "marking 三生 space (the mp_sansheng column)")
    from .project import _now
    from .qa import _update_column, _write_attribute_table

    ctx = CheckContext(project, task=task)
    name = _layer_choice(ctx, layer)
    if overrides is None:
        overrides = ctx.setting("sansheng_overrides") or None
    result = compute(ctx, name, overrides)
    if write:
        with project.transaction() as conn:
            _update_column(conn, name, COLUMN, result.fids, result.classes)
            _write_attribute_table(conn, STATS_TABLE, result.stats_rows(_now()),
                                   "multiplan 三生 statistics")
            project._audit(conn, "sansheng.mark", name, {"version": result.version})
    if chart is not None:
        draw_chart(result, chart)
    return result


def check_sansheng(ctx: CheckContext, res: CheckResult) -> None:
    """三生 marking of the chosen layer with statistics and chart (informational)."""
    from .project import _now

    name = _layer_choice(ctx, None)
    overrides = ctx.setting("sansheng_overrides") or None
    result = compute(ctx, name, overrides)
    res.column_updates.append((name, COLUMN, result.fids, result.classes))
    res.tables[STATS_TABLE] = result.stats_rows(_now())
    res.report_tables["sansheng"] = result.wide()
    res.charts["sansheng"] = lambda path: draw_chart(result, path)
    un = result.classes == UNCLASSIFIED
    res.summary = {"layer": name, "version": result.version,
                   "overrides": dict(overrides or {}),
                   "county": [{"class": r["class"], "area_ha": round(float(r["area_ha"]), 4),
                               "share": round(float(r["share"]), 3)}
                              for _, r in result.county.iterrows()],
                   "unclassified": int(un.sum())}
    if un.any():
        lay = ctx.layer(name)
        area = float(lay.area[un].sum())
        res.findings.add("warning", f"图层“{name}”有 {int(un.sum())} 个图斑（{area / 1e4:,.2f} 公顷）"
                         "无法判定三生类别（代码缺失、未知或待定）",
                         f"{int(un.sum())} features of {name} ({area / 1e4:,.2f} ha) have no "
                         "三生 class (code missing, unknown or pending)", layer=name,
                         area=area, value=int(un.sum()))


CHECKS = {"sansheng": check_sansheng}
