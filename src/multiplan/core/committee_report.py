"""The review committee's report (规划评议报告): a PDF drawn with matplotlib, in Chinese with
a CJK SC font embedded (:mod:`multiplan.core.fonts`).

Pages
    1. Title: county, plan version and workflow state, report date, the committee's decision
       and the gate status (:func:`multiplan.core.workflow.status`: the gates of the next
       transition, and those of the move into 评议通过 while it lies ahead), with the
       headline counts.
    2. Totals: review items by conflict type (count, area, open, decided) and by decision
       status.
    3. Open items, then decided items: paged tables (id, type, severity, area, township,
       status, reviewer, comment, time).
    4. Location maps of the largest open items of the highest severity: the piece (from the register or the 质检
       finding) over the county boundary, with a zoomed inset.

What the lists hold: review items (:func:`multiplan.core.review.review_items`) that are not
slivers, of a headline severity (冲突, 警告, 错误) or carrying a decision; 提示 items and
slivers count in the totals page only where they have a decision. Areas are the register's
(planar in the project CRS), in 公顷.

Pure matplotlib (Agg), no Qt.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import review as rv
from . import workflow
from .fonts import cjk_rc
from .project import Project
from .tasks import Task, ensure_task

__all__ = ["committee_report"]

A4 = (8.27, 11.69)
HEADLINE = ("冲突", "警告", "错误")
ROWS_PER_PAGE = 34
MAPS = 6
CHINA_TZ = timezone(timedelta(hours=8))
_INK = "#222222"
_GRID = "#BBBBBB"
_HEAD = "#E8EEF5"
_OK, _BAD = "#2E7D32", "#C62828"
_A, _B = "#1565C0", "#2E7D32"  # outlines of the two parent features in the inset


def _china(now: datetime) -> datetime:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(CHINA_TZ)


def _fmt_time(iso: Any) -> str:
    """A stored UTC ISO time as Beijing time ``YYYY-MM-DD HH:MM``."""
    if iso is None or (isinstance(iso, float) and np.isnan(iso)) or iso == "":
        return ""
    try:
        return _china(datetime.fromisoformat(str(iso))).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(iso)


def _short(text: Any, n: int) -> str:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = str(text).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _page(title: str, subtitle: str = "") -> Any:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=A4)
    fig.text(0.08, 0.955, title, fontsize=15, weight="bold", color=_INK)
    if subtitle:
        fig.text(0.08, 0.935, subtitle, fontsize=8.5, color="#555555")
    fig.add_artist(plt.Line2D([0.08, 0.92], [0.928, 0.928], color=_GRID, lw=0.8))
    return fig


def _footer(fig: Any, county: str, page: int, stamp: str) -> None:
    fig.text(0.08, 0.03, f"{county} 规划评议报告 · {stamp}", fontsize=7, color="#777777")
    fig.text(0.92, 0.03, f"第 {page} 页", fontsize=7, color="#777777", ha="right")


def _table(fig: Any, rect: tuple[float, float, float, float], header: list[str],
           rows: list[list[str]], widths: list[float], *, fontsize: float = 7.5,
           colours: list[list[str]] | None = None) -> None:
    """A ruled table in figure fraction ``rect`` (x, y-top, width, row height)."""
    x0, top, width, rh = rect
    total = sum(widths)
    xs = np.concatenate([[0], np.cumsum(widths)]) / total * width + x0
    y = top
    fig.add_artist(_rect(fig, x0, y - rh, width, rh, _HEAD))
    for k, h in enumerate(header):
        fig.text(xs[k] + 0.004, y - rh / 2, h, fontsize=fontsize, weight="bold", va="center",
                 color=_INK)
    y -= rh
    for i, row in enumerate(rows):
        for k, v in enumerate(row):
            col = colours[i][k] if colours else _INK
            fig.text(xs[k] + 0.004, y - rh / 2, v, fontsize=fontsize, va="center", color=col)
        y -= rh
        fig.add_artist(_line(x0, x0 + width, y))
    fig.add_artist(_line(x0, x0 + width, top))


def _rect(fig: Any, x: float, y: float, w: float, h: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, transform=fig.transFigure, facecolor=colour,
                     edgecolor="none", zorder=-1)


def _line(x0: float, x1: float, y: float) -> Any:
    import matplotlib.pyplot as plt

    return plt.Line2D([x0, x1], [y, y], color=_GRID, lw=0.5)


def _county_boundary(project: Project) -> Any:
    """The county outline (admin_boundary layers unioned), or None."""
    import shapely

    recs = [r for r in project.layers_by_role("admin_boundary") if r.kind == "vector"]
    if not recs:
        return None
    geoms = []
    for r in recs:
        gdf = project.read_layer(r.name)
        geoms.extend(g for g in gdf.geometry if g is not None and not g.is_empty)
    return shapely.union_all(geoms) if geoms else None


def _draw_geom(ax: Any, geom: Any, **kw: Any) -> None:
    import shapely
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    for poly in shapely.get_parts(geom):
        if poly.geom_type == "Polygon":
            rings = [poly.exterior, *poly.interiors]
            verts, codes = [], []
            for ring in rings:
                c = np.asarray(ring.coords)[:, :2]
                verts.append(c)
                codes += [MPath.MOVETO] + [MPath.LINETO] * (len(c) - 2) + [MPath.CLOSEPOLY]
            ax.add_patch(PathPatch(MPath(np.concatenate(verts), codes), **kw))
        elif poly.geom_type in ("LineString", "LinearRing"):
            c = np.asarray(poly.coords)
            ax.plot(c[:, 0], c[:, 1], color=kw.get("edgecolor", _BAD), lw=1)
        elif poly.geom_type == "Point":
            ax.plot([poly.x], [poly.y], "o", color=kw.get("edgecolor", _BAD), ms=3)
        elif hasattr(poly, "geoms"):
            _draw_geom(ax, poly, **kw)


def _status_of(project: Project, now: datetime) -> tuple[Any, list[Any]]:
    """The workflow status and, while 评议通过 lies ahead, the gates of that move."""
    st = workflow.status(project, now)
    extra: list[Any] = []
    target = "评议通过"
    if st.next_state != target and workflow.STATES.index(st.state) < workflow.STATES.index(
            target):
        extra = workflow.gates_for(project, target, now)
    return st, extra


def committee_report(project: Project, pdf_path: str | Path, *,
                     now: datetime | None = None, task: Task | None = None,
                     maps: int = MAPS) -> Path:
    """Write the committee report PDF to ``pdf_path`` (see the module doc). ``now`` fixes
    the report date and the clock the gates use; ``maps``: how many of the largest open
    items get a location map. Returns the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_pdf import PdfPages

    task = ensure_task(task)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    task.progress(0.0, "读取评议对象 / reading review items")
    items = rv.review_items(project)
    decided_mask = items["status"] != "待定"
    listed = items[(items["sliver"].astype(int) == 0)
                   & (items["severity"].isin(HEADLINE) | decided_mask)]
    open_items = listed[listed["status"] == "待定"].sort_values(
        ["severity", "area_ha"], ascending=[True, False], key=_severity_key)
    decided = listed[listed["status"] != "待定"].sort_values("item_id")
    dec_all = rv.decisions(project)
    obsolete = dec_all[dec_all["obsolete"]] if len(dec_all) else dec_all
    committee = rv.committee_decision(project)
    st, gates_ahead = _status_of(project, now)
    task.progress(0.1, "绘制报告 / drawing the report")
    county = project.county
    stamp = _china(now).strftime("%Y-%m-%d")
    with cjk_rc() as fam, PdfPages(pdf_path) as pdf:
        meta = pdf.infodict()
        meta["Title"] = f"{county} 规划评议报告"
        meta["Subject"] = "multiplan committee review report"
        meta["CreationDate"] = now
        page = 1
        fig = _title_page(project, st, gates_ahead, committee, items, listed, open_items,
                          decided, obsolete, stamp, fam)
        _footer(fig, county, page, stamp)
        pdf.savefig(fig)
        _close(fig)
        page += 1
        fig = _totals_page(listed, items)
        _footer(fig, county, page, stamp)
        pdf.savefig(fig)
        _close(fig)
        task.progress(0.3, "列表 / lists")
        for title, frame, kind in (("未决评议对象", open_items, "open"),
                                   ("已决评议对象", decided, "decided")):
            chunks = [frame.iloc[i:i + ROWS_PER_PAGE]
                      for i in range(0, len(frame), ROWS_PER_PAGE)] or [frame]
            for k, chunk in enumerate(chunks):
                page += 1
                en = "open items" if kind == "open" else "decided items"
                fig = _page(f"{title}（{len(frame)} 条）" + (
                    f" 续 {k + 1}/{len(chunks)}" if len(chunks) > 1 else ""),
                    f"{en} · 不含碎片；未决按程度、面积排序 / slivers left out")
                _list_table(fig, chunk, kind)
                _footer(fig, county, page, stamp)
                pdf.savefig(fig)
                _close(fig)
        if len(obsolete):
            page += 1
            fig = _page(f"已失效的评议决定（{len(obsolete)} 条）",
                        "obsolete decisions: the item is no longer in the register or is now "
                        "consistent")
            rows = [[r.item_id, r.status, _short(r.reviewer, 8), _short(r.comment, 30),
                     _fmt_time(r.time)] for r in obsolete.head(ROWS_PER_PAGE).itertuples()]
            _table(fig, (0.08, 0.9, 0.84, 0.022),
                   ["编号", "原状态", "评议人", "意见", "时间（北京）"],
                   rows, [3.0, 1.6, 1.0, 3.4, 1.6])
            _footer(fig, county, page, stamp)
            pdf.savefig(fig)
            _close(fig)
        task.progress(0.6, "位置图 / location maps")
        # open_items is sorted by severity (冲突 first), then area: the most serious, largest
        largest = open_items[open_items["geometry"].notna()].head(maps)
        if len(largest):
            boundary = _county_boundary(project)
            page += 1
            fig = _maps_page(project, largest, boundary, task.sub(0.6, 0.95))
            _footer(fig, county, page, stamp)
            pdf.savefig(fig)
            _close(fig)
    task.progress(1.0, "完成 / done")
    return pdf_path


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _severity_key(col: pd.Series) -> pd.Series:
    if col.name == "severity":
        order = {s: i for i, s in enumerate(HEADLINE)}
        return col.map(lambda s: order.get(s, len(order)))
    return col


def _title_page(project: Project, st: Any, gates_ahead: list[Any], committee: Any,
                items: pd.DataFrame, listed: pd.DataFrame, open_items: pd.DataFrame,
                decided: pd.DataFrame, obsolete: pd.DataFrame, stamp: str,
                fam: str | None) -> Any:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=A4)
    fig.text(0.5, 0.86, f"{project.county}国土空间总体规划", ha="center", fontsize=20,
             weight="bold", color=_INK)
    fig.text(0.5, 0.815, "规划评议报告", ha="center", fontsize=26, weight="bold", color=_INK)
    fig.text(0.5, 0.785, "Review committee report", ha="center", fontsize=11,
             color="#555555")
    lines = [("县 county", f"{project.county}（EPSG:{project.epsg}）"),
             ("规划版本 plan version", f"第 {st.version} 版"),
             ("流程状态 state", f"{st.state}（{st.state_en}），自 {_fmt_time(st.since)}"),
             ("报告日期 date", stamp),
             ("评议委员会 committee", _committee_text(committee))]
    y = 0.72
    for k, v in lines:
        fig.text(0.14, y, k, fontsize=10, color="#555555")
        fig.text(0.42, y, v, fontsize=10, color=_INK, wrap=True)
        y -= 0.03
    if committee:
        fig.text(0.42, y, "委员：" + "、".join(committee["members"]), fontsize=9, color=_INK)
        y -= 0.03
    n_conf = int((open_items["severity"] == "冲突").sum())
    counts = [("评议对象（不含碎片）items", len(listed)),
              ("未决 open", len(open_items)),
              ("其中冲突级 open 冲突", n_conf),
              ("已决 decided", len(decided)),
              ("已失效的决定 obsolete decisions", len(obsolete))]
    y -= 0.02
    fig.text(0.14, y, "评议概况 summary", fontsize=12, weight="bold", color=_INK)
    y -= 0.03
    for k, v in counts:
        fig.text(0.14, y, k, fontsize=10, color="#555555")
        fig.text(0.42, y, f"{v}", fontsize=10, color=_BAD if "冲突" in k and v else _INK)
        y -= 0.027
    y -= 0.02
    nxt = f"{st.next_state}（{workflow.STATE_EN[st.next_state]}）" if st.next_state else "—"
    fig.text(0.14, y, f"流程关口 gates → {nxt}", fontsize=12, weight="bold", color=_INK)
    y -= 0.012
    rows, colours = _gate_rows(st.gates)
    if gates_ahead:
        r2, c2 = _gate_rows(gates_ahead, prefix="→评议通过 ")
        rows += r2
        colours += c2
    if rows:
        _table(fig, (0.14, y, 0.72, 0.024), ["关口 gate", "状态", "说明"], rows,
               [2.2, 0.8, 6.0], fontsize=7.5, colours=colours)
        y -= 0.024 * (len(rows) + 1)
    else:
        fig.text(0.14, y - 0.02, "已到流程终点，无待检关口 / final state, no gates", fontsize=9)
    fig.text(0.14, 0.06, f"字体 font: {fam or '未找到中文字体 no CJK font'} · multiplan",
             fontsize=7, color="#777777")
    return fig


_GATE_ZH = {"assessment_current": "双评价现势", "no_open_conflicts": "无未决冲突",
            "qa_clean": "质检通过", "notice_period": "公示期满", "public_notice": "公示期满",
            "committee_decision": "评议委员会决定"}


def _gate_rows(gates: list[Any], prefix: str = "") -> tuple[list[list[str]], list[list[str]]]:
    rows, colours = [], []
    for g in gates:
        mark = "通过" if g.holds else "未通过"
        rows.append([prefix + _GATE_ZH.get(g.key, g.key), mark, _short(g.zh, 48)])
        c = _OK if g.holds else _BAD
        colours.append([_INK, c, _INK])
    return rows, colours


def _committee_text(committee: Any) -> str:
    if not committee:
        return "尚未记录 / not recorded"
    return (f"{committee['outcome']}（{committee.get('outcome_en', '')}），"
            f"主任委员 {committee['chair']}，{_fmt_time(committee['time'])}")


def _totals_page(listed: pd.DataFrame, items: pd.DataFrame) -> Any:
    fig = _page("统计", "totals by conflict type and by decision status · 面积 公顷 "
                "(planar, project CRS) · 不含碎片 slivers left out")
    frame = listed.copy()
    frame["decided"] = frame["status"] != "待定"
    by_type = frame.groupby(["kind", "type"], dropna=False).agg(
        name=("type_name", "first"), n=("item_id", "size"), area=("area_ha", "sum"),
        open=("decided", lambda s: int((~s).sum())), done=("decided", "sum")).reset_index()
    rows = [[rv.KINDS.get(r.kind, (r.kind,))[0], str(r.type), _short(r.name, 22), f"{r.n}",
             f"{r.area:,.2f}", f"{r.open}", f"{int(r.done)}"] for r in by_type.itertuples()]
    rows.append(["合计", "", "", f"{len(frame)}", f"{frame['area_ha'].sum():,.2f}",
                 f"{int((~frame['decided']).sum())}", f"{int(frame['decided'].sum())}"])
    fig.text(0.08, 0.9, "按类型 by type", fontsize=11, weight="bold")
    _table(fig, (0.08, 0.885, 0.84, 0.021),
           ["类别", "类型", "名称", "数量", "面积", "未决", "已决"], rows,
           [1.3, 1.6, 4.0, 0.9, 1.4, 0.9, 0.9])
    y = 0.885 - 0.021 * (len(rows) + 1) - 0.04
    by_status = frame.groupby("status").agg(n=("item_id", "size"),
                                            area=("area_ha", "sum"))
    order = [s for s in rv.DECISION_STATUSES if s in by_status.index]
    rows2 = [[s, rv.STATUS_EN[s], f"{int(by_status.loc[s, 'n'])}",
              f"{by_status.loc[s, 'area']:,.2f}"] for s in order]
    fig.text(0.08, y, "按评议状态 by decision status", fontsize=11, weight="bold")
    _table(fig, (0.08, y - 0.015, 0.84, 0.021), ["状态", "status", "数量", "面积"], rows2,
           [2.5, 3.5, 1.2, 1.6])
    return fig


def _list_table(fig: Any, chunk: pd.DataFrame, kind: str) -> None:
    if kind == "open":
        header = ["编号", "类型", "名称", "程度", "面积", "乡镇", "图层"]
        widths = [2.9, 0.7, 2.8, 0.7, 1.0, 1.3, 2.6]
        rows = [[r.item_id, _short(r.type, 10), _short(r.type_name, 16), _short(r.severity, 4),
                 f"{r.area_ha:,.4f}", _short(r.township, 7),
                 _short(f"{r.layer_a or ''}×{r.layer_b or ''}", 12)]
                for r in chunk.itertuples()]
        colours = [[_INK, _INK, _INK, _BAD if r.severity == "冲突" else _INK, _INK, _INK, _INK]
                   for r in chunk.itertuples()]
    else:
        header = ["编号", "类型", "面积", "状态", "评议人", "意见", "时间（北京）"]
        widths = [3.0, 0.9, 1.0, 1.6, 1.0, 3.0, 1.9]
        rows = [[r.item_id, _short(r.type, 10), f"{r.area_ha:,.4f}", r.status,
                 _short(r.reviewer, 6), _short(r.comment, 26), _fmt_time(r.time)]
                for r in chunk.itertuples()]
        colours = None
    if not rows:
        fig.text(0.08, 0.88, "无 / none", fontsize=10)
        return
    _table(fig, (0.08, 0.9, 0.84, 0.023), header, rows, widths, fontsize=7,
           colours=colours)


def _feature(project: Project, layer: Any, fid: Any) -> Any:
    """The geometry of feature ``fid`` of vector layer ``layer``, or None."""
    import pyogrio

    if not isinstance(layer, str) or not layer or fid is None or pd.isna(fid):
        return None
    recs = [rec for rec in project.layers() if rec.name == layer and rec.kind == "vector"]
    if not recs:
        return None
    gdf = pyogrio.read_dataframe(project.gpkg, layer=layer, fids=[int(fid)], columns=[])
    return gdf.geometry.iloc[0] if len(gdf) else None


def _maps_page(project: Project, largest: pd.DataFrame, boundary: Any, task: Task) -> Any:
    import shapely

    fig = _page("主要未决评议对象位置图（按程度、面积）",
                "红：差异图斑；小图：蓝虚线＝图层A要素，绿虚线＝图层B要素 · red: piece; inset: "
                "parent A (blue), B (green)")
    n = len(largest)
    cols, rows_n = 2, 3
    for k, r in enumerate(largest.itertuples()):
        task.progress(k / max(n, 1), f"位置图 {k + 1}/{n}")
        row, col = divmod(k, cols)
        left = 0.08 + col * 0.43
        bottom = 0.64 - row * 0.29
        ax = fig.add_axes((left, bottom, 0.39, 0.25))
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        geom = r.geometry
        if boundary is not None:
            _draw_geom(ax, boundary, facecolor="#F4F4F0", edgecolor="#666666", lw=0.6)
            bx = boundary.bounds
        else:
            bx = shapely.buffer(geom, 2000).bounds
        _draw_geom(ax, geom, facecolor=_BAD, edgecolor=_BAD, lw=0.8)
        c = shapely.point_on_surface(geom) if not geom.is_empty else None
        if c is not None:
            ax.plot([c.x], [c.y], "o", ms=10, mfc="none", mec=_BAD, mew=1.2)
        pad = 0.03 * max(bx[2] - bx[0], bx[3] - bx[1])
        ax.set_xlim(bx[0] - pad, bx[2] + pad)
        ax.set_ylim(bx[1] - pad, bx[3] + pad)
        ax.set_title(f"{r.item_id}  {r.type} {_short(r.type_name, 14)}\n"
                     f"{r.area_ha:,.4f} 公顷 · {r.township or '—'} · "
                     f"A {_short(r.layer_a, 8)} / B {_short(r.layer_b, 8)}", fontsize=7.5)
        ins = ax.inset_axes((0.66, 0.0, 0.34, 0.34))
        ins.set_xticks([])
        ins.set_yticks([])
        ins.set_aspect("equal")
        parents = [(_feature(project, layer, fid), colour)
                   for layer, fid, colour in ((r.layer_a, r.fid_a, _A),
                                              (r.layer_b, r.fid_b, _B))]
        gx = geom.bounds
        piece_span = max(gx[2] - gx[0], gx[3] - gx[1], 50.0)
        ux = shapely.union_all([geom, *(g for g, _ in parents if g is not None)]).bounds
        # the parents as far as they reach, up to 4× the piece around it
        span = min(max(ux[2] - ux[0], ux[3] - ux[1]), 4 * piece_span) * 0.55
        cx, cy = (gx[0] + gx[2]) / 2, (gx[1] + gx[3]) / 2
        if boundary is not None:
            _draw_geom(ins, boundary, facecolor="#F4F4F0", edgecolor="#666666", lw=0.6)
        for parent, colour in parents:
            if parent is not None:
                _draw_geom(ins, parent, facecolor="none", edgecolor=colour, lw=1.0,
                           linestyle="--")
        _draw_geom(ins, geom, facecolor=_BAD, edgecolor=_BAD, lw=0.8, alpha=0.7)
        ins.set_xlim(cx - span, cx + span)
        ins.set_ylim(cy - span, cy + span)
        ins.set_facecolor("white")
        ins.text(0.03, 0.03, f"{2 * span:,.0f} m", transform=ins.transAxes, fontsize=6,
                 color="#555555")
        for s in ins.spines.values():
            s.set_edgecolor(_INK)
        if k + 1 >= cols * rows_n:
            break
    return fig
