"""The check report: one HTML (self-contained, charts embedded) or Markdown file (charts as
PNG files beside it) with the pass/fail table and the timing of every check, the statistics
(三生 by township and county, indicators, 耕地占补平衡, 三区三线 areas) and the first findings
of each check, with the versions of every table used and the area convention.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .qa import GROUPS, SEVERITIES, STATUSES, CheckResult, CheckRun

__all__ = ["default_report_path", "write_report"]

_MAX_FINDINGS = 50
_STATUS_COLOUR = {"pass": "#2e7d32", "warn": "#b26a00", "fail": "#c62828", "skip": "#757575",
                  "error": "#6a1b9a"}


def default_report_path(run: CheckRun, fmt: str = "html") -> Path:
    return run.project.folder / "exports" / "check" / f"check_report.{'md' if fmt == 'md' else 'html'}"


def _num(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _status_rows(run: CheckRun) -> list[list[str]]:
    rows = []
    for r in run.results:
        rows.append([r.id, f"{r.zh} / {r.en}", GROUPS[r.group][0],
                     "是" if r.blocking else "否", f"{STATUSES[r.status][0]} {r.status}",
                     str(r.errors), str(r.warnings), str(r.infos),
                     _num(r.findings.area("error"), 1), f"{r.seconds:.2f}",
                     f"{r.cpu_seconds:.2f}"])
    return rows


_STATUS_HEAD = ["检查项 id", "名称 / title", "分组", "阻断", "结果 status", "错误", "警告", "提示",
                "错误面积 m²", "用时 s", "CPU s"]


def _summary_lines(r: CheckResult) -> list[str]:
    """A few human lines from a check's summary."""
    s = r.summary
    out: list[str] = []
    if r.group == "redlines" and "area_ha" in s:
        out.append(f"结果图层 {s.get('layer')}：{s.get('pieces', 0)} 处，{_num(s.get('area_ha'), 4)} 公顷"
                   f"（另有小于最小面积的 {s.get('below_min', 0)} 处）")
    if r.id == "rl_expansion" and s.get("factor") is not None:
        out.append(f"扩展倍数 {s['factor']:.3f}（上限 {s['limit']:g}）；{s.get('basis_zh', '')}")
    if r.id == "rl_flexible_share" and s.get("share") is not None:
        out.append(f"弹性发展区占比 {s['share'] * 100:.1f}%（上限 {s['limit'] * 100:g}%）")
    if r.id == "farmland_balance" and "occupied_ha" in s:
        out.append(f"占用耕地 {_num(s['occupied_ha'])} 公顷，补充耕地 {_num(s['added_ha'])} 公顷，"
                   f"净增 {_num(s['net_ha'])} 公顷；按面积{'平衡' if s['balanced_by_area'] else '不平衡'}"
                   + ("" if s.get("balanced_by_quality") is None else
                      f"；按质量{'平衡' if s['balanced_by_quality'] else '不平衡'}"))
    if r.id == "sansheng" and "version" in s:
        out.append(f"图层“{s['layer']}”，三生对照表 {s['version']}")
    if r.id in ("overlaps", "gaps", "outside_county") and "layers" in s:
        for name, v in s["layers"].items():
            key = {"overlaps": "overlap_area_m2", "gaps": "gap_area_m2",
                   "outside_county": "outside_area_m2"}[r.id]
            out.append(f"{name}：{v.get('overlaps', v.get('gaps', v.get('features', 0)))} 处，"
                       f"{_num(v.get(key), 2)} m²；小于最小面积 {v.get('below_min', 0)} 处 "
                       f"{_num(v.get('below_min_area_m2'), 2)} m²；数值噪声 {v.get('noise_pieces', 0)} 处")
    return out


def _findings(r: CheckResult) -> pd.DataFrame:
    fr = r.findings.frame()
    if not len(fr):
        return pd.DataFrame()
    fr = fr.drop(columns="geometry")
    fr["severity"] = fr["severity"].map(lambda x: SEVERITIES[x][0])
    cols = {"severity": "级别", "layer": "图层", "feature_fid": "要素", "feature_id": "标识码",
            "message_zh": "说明", "message_en": "message", "area_m2": "面积 m²"}
    return fr[list(cols)].rename(columns=cols)


# --------------------------------------------------------------------------- HTML

def _html_table(head: list[str], rows: list[list[str]], status_col: int | None = None) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    body = []
    for row in rows:
        cells = []
        for k, v in enumerate(row):
            style = ""
            if status_col is not None and k == status_col:
                key = v.split()[-1] if v else ""
                style = f' style="color:{_STATUS_COLOUR.get(key, "#000")};font-weight:bold"'
            cells.append(f"<td{style}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _df_html(df: pd.DataFrame) -> str:
    rows = [[_num(v) if isinstance(v, float) else ("—" if v is None else str(v))
             for v in r] for r in df.itertuples(index=False, name=None)]
    return _html_table([str(c) for c in df.columns], rows)


_CSS = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;
margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:0.6em 0 1.2em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0} h2{border-bottom:2px solid #444;padding-bottom:3px;margin-top:1.6em}
.pass{color:#2e7d32}.fail{color:#c62828} .note{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #ddd}
"""


def _tables_of(run: CheckRun) -> list[tuple[str, pd.DataFrame]]:
    out = []
    titles = {"sansheng": "三生空间统计（公顷、%）", "indicators": "约束性指标",
              "farmland_balance_by_township": "耕地占补平衡（按乡镇，公顷）",
              "farmland_balance_by_grade": "耕地占补平衡（按质量等别，公顷）"}
    for r in run.results:
        for key, df in r.report_tables.items():
            if key == "indicators":
                df = _indicator_view(df)
            out.append((titles.get(key, key), df))
    return out


def _indicator_view(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        ratio = r["unit"] == "ratio"

        def show(v: Any, ratio: bool = ratio) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "—"
            return f"{v * 100:.2f}%" if ratio else f"{v:,.2f}"

        rows.append({"指标": r["zh"], "方向": "不低于" if r["direction"] == "min" else "不高于",
                     "单位": "%" if ratio else "公顷", "规划值": show(r["plan_value"]),
                     "下达指标": show(r["target"]), "盈余(+)/缺口(-)": show(r["surplus"]),
                     "结论": {"ok": "达标", "deficit": "未达标", "no_target": "未录入指标",
                            "no_value": "无法计算"}[r["status"]], "口径": r["basis_zh"]})
    return pd.DataFrame(rows)


def _redline_table(run: CheckRun) -> pd.DataFrame:
    rows = []
    for r in run.results:
        if r.group != "redlines":
            continue
        s = r.summary
        if r.id == "rl_expansion":
            value = (f"扩展倍数 {s['factor']:.3f}（上限 {s['limit']:g}）"
                     if s.get("factor") is not None else "—")
        elif r.id == "rl_flexible_share":
            value = (f"弹性发展区占比 {s['share'] * 100:.1f}%（上限 {s['limit'] * 100:g}%）"
                     if s.get("share") is not None else "—")
        else:
            value = f"{s.get('pieces', 0)} 处，{_num(s.get('area_ha', 0.0), 4)} 公顷"
        rows.append({"检查项": r.zh, "结果图层": s.get("layer", ""), "结果值": value,
                     "结论": f"{STATUSES[r.status][0]}"})
    return pd.DataFrame(rows)


def write_report(run: CheckRun, path: str | Path | None = None, fmt: str | None = None
                 ) -> Path:
    """Write the report; ``fmt`` is "html" or "md" (default: from the suffix, else html).
    Charts are drawn as PNG files next to the report (and embedded in the HTML)."""
    if path is None:
        fmt = fmt or "html"
        path = default_report_path(run, fmt)
    path = Path(path)
    if fmt is None:
        fmt = "md" if path.suffix.lower() in (".md", ".markdown") else "html"
    path.parent.mkdir(parents=True, exist_ok=True)
    charts: list[tuple[str, Path, str | None]] = []
    for r in run.results:
        for name, maker in r.charts.items():
            png = path.with_name(f"{path.stem}_{name}.png")
            font = maker(png)
            charts.append((r.zh, png, font))
    if fmt == "md":
        path.write_text(_markdown(run, charts), encoding="utf-8")
    else:
        path.write_text(_html(run, charts), encoding="utf-8")
    return path


def _header_lines(run: CheckRun) -> list[str]:
    p = run.project
    v = run.versions
    return [
        f"项目 / project：{p.folder}",
        f"县 / county：{p.county}（EPSG:{p.epsg}）",
        f"运行 / run：{run.run_id}，{run.created_at}",
        f"结论 / verdict：{'通过（无阻断性错误）' if run.passed else '未通过：' + '、'.join(run.blocking_failures)}",
        "面积 / areas：项目坐标系平面面积（公顷 = 10 000 m²）" if run.settings.get("area_method",
                                                                      "planar") != "ellipsoidal"
        else "面积 / areas：椭球面积（面积字段检查），其余统计为平面面积",
        "版本 / versions：" + "，".join(f"{k} {x}" for k, x in v.items()),
        (f"用时 / time：{run.seconds:.2f} s（读图层 {run.seconds_read:.2f} s，写结果 "
        f"{run.seconds_write:.2f} s，CPU {run.cpu_seconds:.2f} s）"),
        "阈值 / thresholds：" + "，".join(f"{k}={x}" for k, x in run.settings.items()
                                         if k not in ("indicator_targets",)),
    ]


def _html(run: CheckRun, charts: list[tuple[str, Path, str | None]]) -> str:
    parts = [(f"<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>"
             f"<title>质检报告 {html.escape(run.project.county)}</title><style>{_CSS}</style>"
             "</head><body>"),
             f"<h1>质检与规划检查报告 — {html.escape(run.project.county)}</h1>",
             "<p>" + "<br>".join(html.escape(x) for x in _header_lines(run)) + "</p>",
             "<h2>检查结果 / pass–fail</h2>",
             _html_table(_STATUS_HEAD, _status_rows(run), status_col=4)]
    red = _redline_table(run)
    if len(red):
        parts += ["<h2>三区三线</h2>", _df_html(red)]
    for title, df in _tables_of(run):
        parts += [f"<h2>{html.escape(title)}</h2>", _df_html(df)]
    for title, png, font in charts:
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f"<h2>{html.escape(title)}（图）</h2><img alt='{html.escape(title)}' "
                     f"src='data:image/png;base64,{data}'>")
        if not font:
            parts.append("<p class='note'>未找到中文字体（Noto Sans CJK SC / WenQuanYi Micro Hei），"
                         "图中汉字可能无法显示</p>")
    parts.append("<h2>各检查项详情 / details</h2>")
    for r in run.results:
        parts.append(f"<h3>{html.escape(r.zh)}（{r.id}）— {STATUSES[r.status][0]}，"
                     f"{r.seconds:.2f} s</h3>")
        for line in _summary_lines(r):
            parts.append(f"<p>{html.escape(line)}</p>")
        for n in r.notes:
            parts.append(f"<p class='note'>注：{html.escape(n['zh'])} / {html.escape(n['en'])}</p>")
        fr = _findings(r)
        if len(fr):
            more = len(fr) - _MAX_FINDINGS
            parts.append(_df_html(fr.head(_MAX_FINDINGS)))
            if more > 0:
                parts.append(f"<p class='note'>另有 {more} 条，见项目中的图层 mp_qa_errors</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in head) + " |",
             "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _df_md(df: pd.DataFrame) -> str:
    rows = [[_num(v) if isinstance(v, float) else ("—" if v is None else str(v)) for v in r]
            for r in df.itertuples(index=False, name=None)]
    return _md_table([str(c) for c in df.columns], rows)


def _markdown(run: CheckRun, charts: list[tuple[str, Path, str | None]]) -> str:
    out = [f"# 质检与规划检查报告 — {run.project.county}", ""]
    out += [f"- {x}" for x in _header_lines(run)]
    out += ["", "## 检查结果 / pass–fail", "", _md_table(_STATUS_HEAD, _status_rows(run)), ""]
    red = _redline_table(run)
    if len(red):
        out += ["## 三区三线", "", _df_md(red), ""]
    for title, df in _tables_of(run):
        out += [f"## {title}", "", _df_md(df), ""]
    for title, png, font in charts:
        out += [f"## {title}（图）", "", f"![{title}]({png.name})", ""]
        if not font:
            out += ["> 未找到中文字体，图中汉字可能无法显示", ""]
    out += ["## 各检查项详情 / details", ""]
    for r in run.results:
        out += [f"### {r.zh}（{r.id}）— {STATUSES[r.status][0]}，{r.seconds:.2f} s", ""]
        out += [f"- {line}" for line in _summary_lines(r)]
        out += [f"- 注：{n['zh']} / {n['en']}" for n in r.notes]
        fr = _findings(r)
        if len(fr):
            out += ["", _df_md(fr.head(_MAX_FINDINGS))]
            if len(fr) > _MAX_FINDINGS:
                out += ["", f"另有 {len(fr) - _MAX_FINDINGS} 条，见项目中的图层 mp_qa_errors"]
        out.append("")
    return "\n".join(out)
