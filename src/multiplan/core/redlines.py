"""三区三线 checks (domain.md §5.1–5.2), each with its own result layer and area.

================================  ======================================  =========  ========
check                             rule                                    severity   layer
================================  ======================================  =========  ========
``rl_urban_eco``                  城镇开发边界 ∩ 生态保护红线                  错误       ``mp_rl_urban_eco``
``rl_urban_farmland``             城镇开发边界 ∩ 永久基本农田                  错误       ``mp_rl_urban_farmland``
``rl_farmland_eco``               永久基本农田 ∩ 生态保护红线 (needs a           警告       ``mp_rl_farmland_eco``
                                  decision: 调出 the red line or 补划)
``rl_self_overlap``               no self-overlap within each control line   错误       ``mp_rl_self_overlap``
``rl_in_county``                  each control line within the county        错误       ``mp_rl_in_county``
``rl_construction_eco``           planned construction land in the red line  错误       ``mp_rl_construction_eco``
``rl_construction_farmland``      planned construction land on farmland      错误       ``mp_rl_construction_farmland``
``rl_expansion``                  boundary ÷ current urban construction      警告       ``mp_rl_expansion``
                                  land ≤ ``expansion_factor_max`` (1.3)
``rl_flexible_share``             弹性发展区 ÷ 集中建设区 ≤                     警告       ``mp_rl_flexible_share``
                                  ``flexible_share_max`` (15 %)
================================  ======================================  =========  ========

Every overlap goes through the overlay kernel (:func:`multiplan.core.overlay.overlay_intersection`);
self-overlaps and parts outside the county reuse the 质检 computations of the same run
(:class:`multiplan.core.qa.CheckContext` caches them per layer). Pieces narrower than the XY
tolerance are noise; pieces under ``qa_min_piece_m2`` are 提示 (listed, not counted as
errors). "Planned construction land" is a feature of the plan layer(s) whose 2023 code is in
三大类 建设用地 (a pending mapping counts when all its candidates are); the plan layers are
the 国土空间规划 layer, else 土地利用规划 and 城乡规划 (setting ``plan_layers`` overrides).
The two ratios of §5.2 are [L] values from memory and project settings; areas are planar in
the project CRS, as everywhere in multiplan unless the project says ellipsoidal.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .layers import CONTROL_LINE_ROLES, ROLES
from .overlay import overlay_intersection
from .qa import (
    CheckContext,
    CheckResult,
    LayerData,
    _noise,
    _piece_findings,
    _texts,
    outside_findings,
)

__all__ = ["CHECKS", "RESULT_TABLES", "control_line_area"]

RESULT_TABLES = {
    "rl_urban_eco": "mp_rl_urban_eco",
    "rl_urban_farmland": "mp_rl_urban_farmland",
    "rl_farmland_eco": "mp_rl_farmland_eco",
    "rl_self_overlap": "mp_rl_self_overlap",
    "rl_in_county": "mp_rl_in_county",
    "rl_construction_eco": "mp_rl_construction_eco",
    "rl_construction_farmland": "mp_rl_construction_farmland",
    "rl_expansion": "mp_rl_expansion",
    "rl_flexible_share": "mp_rl_flexible_share",
}

_COLUMNS = ["check_id", "severity", "layer_a", "fid_a", "label_a", "code_a", "layer_b", "fid_b",
            "label_b", "area_m2", "area_ha", "township", "message_zh", "message_en"]


def _empty_layer(epsg: int) -> gpd.GeoDataFrame:
    data: dict[str, Any] = {c: pd.Series([], dtype=object) for c in _COLUMNS}
    for c in ("fid_a", "fid_b"):
        data[c] = pd.Series([], dtype="int64")
    for c in ("area_m2", "area_ha"):
        data[c] = pd.Series([], dtype="float64")
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=epsg))


def _labels(ctx: CheckContext, lay: LayerData) -> np.ndarray:
    """A readable label per feature: its id (BSM …), else its registered name field."""
    ids = ctx.feature_ids(lay)
    nf = lay.record.name_field
    if nf and nf in lay.frame.columns:
        names = _texts(lay.frame[nf])
        return np.asarray([i if i else n for i, n in zip(ids.tolist(), names.tolist(),
                                                         strict=True)], dtype=object)
    return ids


def _codes(lay: LayerData) -> np.ndarray:
    code, status, cands = lay.unified()
    out = np.empty(len(code), dtype=object)
    for k, (c, s, cs) in enumerate(zip(code.tolist(), status.tolist(), cands.tolist(),
                                       strict=True)):
        out[k] = c if c else ("待定:" + ",".join(cs) if cs else None)
    return out


def _class_text(src: str | None, name: str | None, code: str | None) -> str:
    """"1008 港口码头用地 → 1204": the source code and name, and the 2023 code (or the
    pending candidates) when it differs."""
    out = " ".join(x for x in (src, name) if x)
    if code and code != src:
        if code.startswith("待定:"):
            code = f"待定（{code[3:]}）"
        out = f"{out} → {code}" if out else code
    return out


def _label_text(fid: Any, label: Any) -> tuple[str, str]:
    return (f"要素 {fid}（{label}）", f"feature {fid} ({label})") if label else \
        (f"要素 {fid}", f"feature {fid}")


def _result_frame(ctx: CheckContext, res: CheckResult, first: int, layer_a: str,
                  fid_a: np.ndarray, label_a: np.ndarray, code_a: np.ndarray | None,
                  layer_b: np.ndarray | str, fid_b: np.ndarray, label_b: np.ndarray,
                  geoms: np.ndarray, areas: np.ndarray) -> gpd.GeoDataFrame:
    """The result layer rows for the findings appended since position ``first``."""
    fr = res.findings.frame()
    fr = fr.iloc[first:first + len(areas)]
    n = len(areas)
    return gpd.GeoDataFrame({
        "check_id": [res.id] * n, "severity": fr["severity"].to_numpy(),
        "layer_a": [layer_a] * n, "fid_a": np.asarray(fid_a, dtype=np.int64),
        "label_a": label_a, "code_a": code_a if code_a is not None else [None] * n,
        "layer_b": layer_b if not isinstance(layer_b, str) else [layer_b] * n,
        "fid_b": np.asarray(fid_b, dtype=np.int64), "label_b": label_b,
        "area_m2": np.asarray(areas, dtype=np.float64),
        "area_ha": np.asarray(areas, dtype=np.float64) / 10_000.0,
        "township": ctx.townships_of(geoms), "message_zh": fr["message_zh"].to_numpy(),
        "message_en": fr["message_en"].to_numpy()},
        geometry=gpd.GeoSeries(geoms, crs=ctx.project.epsg))


def _concat(frames: list[gpd.GeoDataFrame], epsg: int) -> gpd.GeoDataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_layer(epsg)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry",
                            crs=epsg)


def _summarise(res: CheckResult, frame: gpd.GeoDataFrame, **extra: Any) -> None:
    main = frame[frame["severity"] != "info"] if len(frame) else frame
    small = frame[frame["severity"] == "info"] if len(frame) else frame
    res.summary.update({
        "pieces": len(main), "area_m2": round(float(main["area_m2"].sum()), 3),
        "area_ha": round(float(main["area_m2"].sum()) / 10_000.0, 4),
        "below_min": len(small), "below_min_area_m2": round(float(small["area_m2"].sum()), 3),
        "layer": RESULT_TABLES[res.id], **extra})


# --------------------------------------------------------------------------- pairs of layers

def _pair_check(ctx: CheckContext, res: CheckResult, role_a: str, role_b: str, severity: str,
                zh_rule: str, en_rule: str, *, select_a: str | None = None) -> None:
    """Overlaps of every layer of ``role_a`` (or of the plan layers' construction land when
    ``select_a == "construction"``) with every layer of ``role_b``."""
    epsg = ctx.project.epsg
    if select_a == "construction":
        names_a = ctx.plan_layers()
        what_a = "规划建设用地", "planned construction land"
    else:
        names_a = ctx.layers_of_role(role_a)
        what_a = ROLES[role_a][0], role_a
    names_b = ctx.layers_of_role(role_b)
    res.layers[RESULT_TABLES[res.id]] = _empty_layer(epsg)
    if not names_a or not names_b:
        res.status = "skip"
        missing = [x for x, n in ((what_a[0], names_a), (ROLES[role_b][0], names_b)) if not n]
        res.note(f"缺少图层：{'、'.join(missing)}，未检查", f"missing layer(s): {', '.join(missing)}; "
                 "not checked")
        _summarise(res, res.layers[RESULT_TABLES[res.id]])
        return
    frames = []
    per_pair: dict[str, Any] = {}
    jobs = [(a, b) for a in names_a for b in names_b if a != b]
    for n_job, (na, nb) in enumerate(jobs):
        sub = ctx.task.sub(n_job / len(jobs), (n_job + 1) / len(jobs))
        la, lb = ctx.layer(na), ctx.layer(nb)
        sel = np.flatnonzero(la.construction()) if select_a == "construction" else \
            np.arange(len(la))
        pieces = overlay_intersection(la.geoms[sel], lb.geoms, task=sub, threads=ctx.threads)
        noisy = _noise(pieces.geometry, pieces.area, ctx.xy_tol) if len(pieces) else \
            np.zeros(0, bool)
        ai, bi = sel[pieces.a_idx[~noisy]], pieces.b_idx[~noisy]
        geoms, areas = pieces.geometry[~noisy], pieces.area[~noisy]
        lab_a, lab_b = _labels(ctx, la)[ai], _labels(ctx, lb)[bi]
        code_a = _codes(la)[ai]
        names = _texts(la.frame[la.record.name_field])[ai] \
            if la.record.name_field in la.frame.columns else np.full(len(ai), None)
        srcs = _texts(la.frame[la.record.code_field])[ai] \
            if la.record.code_field in la.frame.columns else np.full(len(ai), None)
        fa, fb = la.fids[ai], lb.fids[bi]

        zh, en = [], []
        for k in range(len(ai)):
            a_zh, a_en = _label_text(fa[k], lab_a[k])
            b_zh, b_en = _label_text(fb[k], lab_b[k])
            if select_a == "construction":
                cls = _class_text(srcs[k], names[k], code_a[k])
                zh.append(f"规划建设用地（图层“{na}”{a_zh}，{cls}）位于{ROLES[role_b][0]}"
                          f"（{b_zh}）内 {areas[k]:,.2f} m²：{zh_rule}")
                en.append(f"planned construction land (layer {na}, {a_en}, code {code_a[k]}) "
                          f"lies in the {role_b} layer ({b_en}) over {areas[k]:,.2f} m²: "
                          f"{en_rule}")
            else:
                zh.append(f"{ROLES[role_a][0]}{a_zh}与{ROLES[role_b][0]}{b_zh}重叠 "
                          f"{areas[k]:,.2f} m²：{zh_rule}")
                en.append(f"{role_a} {a_en} overlaps {role_b} {b_en} by {areas[k]:,.2f} m²: "
                          f"{en_rule}")
        first = len(res.findings)
        c, a_big, cs, _ = _piece_findings(res, ctx, severity, na, fa, lab_a, geoms,
                                                areas, zh, en, fid_other=fb, layer_other=nb)
        frames.append(_result_frame(ctx, res, first, na, fa, lab_a, code_a, nb, fb, lab_b,
                                    geoms, areas))
        per_pair[f"{na} × {nb}"] = {"pieces": c, "area_m2": round(a_big, 3),
                                    "below_min": cs, "candidates": len(sel)}
    frame = _concat(frames, epsg)
    res.layers[RESULT_TABLES[res.id]] = frame
    _summarise(res, frame, pairs=per_pair)


def check_urban_eco(ctx: CheckContext, res: CheckResult) -> None:
    _pair_check(ctx, res, "urban_boundary", "eco_redline", "error",
                "城镇开发边界须避让生态保护红线", "the development boundary must avoid the red line")


def check_urban_farmland(ctx: CheckContext, res: CheckResult) -> None:
    _pair_check(ctx, res, "urban_boundary", "basic_farmland", "error",
                "城镇开发边界不得占用永久基本农田（应开天窗扣除）",
                "the development boundary must not take permanent basic farmland (cut it out)")


def check_farmland_eco(ctx: CheckContext, res: CheckResult) -> None:
    _pair_check(ctx, res, "basic_farmland", "eco_redline", "warning",
                "需决策：将基本农田调出红线并在本县补划，或调整红线",
                "needs a decision: take the farmland out of the red line and replace it in "
                "the county, or adjust the red line")


def check_construction_eco(ctx: CheckContext, res: CheckResult) -> None:
    _pair_check(ctx, res, "", "eco_redline", "error", "生态保护红线内不得安排建设用地",
                "no construction land may be planned inside the ecological red line",
                select_a="construction")


def check_construction_farmland(ctx: CheckContext, res: CheckResult) -> None:
    _pair_check(ctx, res, "", "basic_farmland", "error", "规划建设用地不得占用永久基本农田",
                "planned construction land must not take permanent basic farmland",
                select_a="construction")


# --------------------------------------------------------------------------- single layers

def _control_records(ctx: CheckContext) -> list[Any]:
    return ctx.vector_records(CONTROL_LINE_ROLES)


def check_self_overlap(ctx: CheckContext, res: CheckResult) -> None:
    """No overlap between features of the same control-line layer."""
    epsg = ctx.project.epsg
    recs = _control_records(ctx)
    frames = []
    per: dict[str, Any] = {}
    for n_l, rec in enumerate(recs):
        sub = ctx.task.sub(n_l / len(recs), (n_l + 1) / len(recs))
        lay = ctx.layer(rec.name)
        ov = ctx.overlaps(rec.name, task=sub)
        lab = _labels(ctx, lay)
        fa, fb = lay.fids[ov.i], lay.fids[ov.j]
        la, lb = lab[ov.i], lab[ov.j]
        first = len(res.findings)
        zh = [f"控制线“{rec.name}”（{rec.role_label}）自重叠：{_label_text(fa[k], la[k])[0]}与"
              f"{_label_text(fb[k], lb[k])[0]}重叠 {ov.area[k]:,.2f} m²" for k in range(len(fa))]
        en = [f"control line {rec.name} ({rec.role}) overlaps itself: "
              f"{_label_text(fa[k], la[k])[1]} and {_label_text(fb[k], lb[k])[1]} share "
              f"{ov.area[k]:,.2f} m²" for k in range(len(fa))]
        c, a, cs, _ = _piece_findings(res, ctx, "error", rec.name, fa, la, ov.geometry,
                                      ov.area, zh, en, fid_other=fb, layer_other=rec.name)
        frames.append(_result_frame(ctx, res, first, rec.name, fa, la, None, rec.name, fb, lb,
                                    ov.geometry, ov.area))
        per[rec.name] = {"pieces": c, "area_m2": round(a, 3), "below_min": cs,
                         "pairs_checked": ov.pairs_checked}
    frame = _concat(frames, epsg)
    res.layers[RESULT_TABLES[res.id]] = frame
    if not recs:
        res.status = "skip"
        res.note("项目中没有控制线图层", "the project has no control-line layer")
    _summarise(res, frame, layers=per)


def check_in_county(ctx: CheckContext, res: CheckResult) -> None:
    """Each control line lies within the county; parts outside are reported with area."""
    epsg = ctx.project.epsg
    res.layers[RESULT_TABLES[res.id]] = _empty_layer(epsg)
    if ctx.county is None:
        res.status = "skip"
        res.note("没有行政区图层，无法检查", "no administrative boundary layer: not checked")
        _summarise(res, res.layers[RESULT_TABLES[res.id]])
        return
    recs = _control_records(ctx)
    first = len(res.findings)
    per = outside_findings(ctx, res, recs, "error")
    frames = []
    pos = first
    county_name = ctx.county_layer or ""
    for rec in recs:
        lay = ctx.layer(rec.name)
        op = ctx.outside(rec.name)
        lab = _labels(ctx, lay)[op.idx]
        frames.append(_result_frame(ctx, res, pos, rec.name, lay.fids[op.idx], lab, None,
                                    county_name, np.full(len(op.idx), -1), np.full(len(op.idx),
                                                                                   None),
                                    op.geometry, op.area))
        pos += len(op.idx)
    frame = _concat(frames, epsg)
    res.layers[RESULT_TABLES[res.id]] = frame
    _summarise(res, frame, layers=per)


def control_line_area(ctx: CheckContext, role: str) -> float:
    """Σ feature area (m²) of the layers of a control-line role."""
    return float(sum(ctx.layer(n).area.sum() for n in ctx.layers_of_role(role)))


def _zone_field(ctx: CheckContext, lay: LayerData) -> str | None:
    return lay.column(ctx.params.redlines["zone_type_fields"])


def check_expansion(ctx: CheckContext, res: CheckResult) -> None:
    """城镇开发边界扩展倍数 = boundary area ÷ current urban construction land (现状 parcels in
    三大类 建设用地 whose 城镇村属性码 is 201 城市 / 202 建制镇); a warning above
    ``expansion_factor_max``."""
    epsg = ctx.project.epsg
    limit = float(ctx.setting("expansion_factor_max"))
    res.layers[RESULT_TABLES[res.id]] = _empty_layer(epsg)
    bnames, cur_name = ctx.layers_of_role("urban_boundary"), ctx.current_layer()
    if not bnames or cur_name is None:
        res.status = "skip"
        res.note("缺少城镇开发边界或现状用地图层，未计算扩展倍数",
                 "no development boundary or current land-use layer: factor not computed")
        _summarise(res, res.layers[RESULT_TABLES[res.id]])
        return
    cur = ctx.layer(cur_name)
    constr = cur.construction()
    f = cur.column(ctx.params.redlines["urban_status_fields"])
    prefixes = tuple(ctx.params.redlines["urban_status_prefixes"])
    if f is not None:
        status = np.asarray([v or "" for v in _texts(cur.frame[f]).tolist()])
        urban = constr & np.char.startswith(status.astype(str), prefixes[0])
        for p in prefixes[1:]:
            urban |= constr & np.char.startswith(status.astype(str), p)
        basis = (f"现状“{cur_name}”中{f}为 {'/'.join(prefixes)} 的建设用地",
                 f"construction land of {cur_name} with {f} in {'/'.join(prefixes)}")
    else:
        urban = constr
        basis = (f"现状“{cur_name}”的全部建设用地（无城镇村属性码字段）",
                 f"all construction land of {cur_name} (no 城镇村属性码 field)")
        res.note("现状图层没有城镇村属性码（CZCSXM），以全部建设用地计算扩展倍数，结果偏小",
                 "the current layer has no 城镇村属性码 (CZCSXM): the factor uses all "
                 "construction land and is understated")
    urban_area = float(cur.area[urban].sum())
    frames = []
    b_area = 0.0
    for name in bnames:
        lay = ctx.layer(name)
        b_area += float(lay.area.sum())
    factor = b_area / urban_area if urban_area > 0 else float("inf")
    over = factor > limit
    zh = (f"城镇开发边界面积 {b_area / 1e4:,.2f} 公顷为现状城镇建设用地 {urban_area / 1e4:,.2f} 公顷的 "
          f"{factor:.3f} 倍，{'超过' if over else '未超过'}上限 {limit:g} 倍")
    en = (f"the development boundary ({b_area / 1e4:,.2f} ha) is {factor:.3f} × the current "
          f"urban construction land ({urban_area / 1e4:,.2f} ha); limit {limit:g}")
    if over:
        res.findings.add("warning", zh, en, value=factor, area=b_area)
    for name in bnames:
        lay = ctx.layer(name)
        n = len(lay)
        lab = _labels(ctx, lay)
        frames.append(gpd.GeoDataFrame({
            "check_id": [res.id] * n, "severity": ["warning" if over else "info"] * n,
            "layer_a": [name] * n, "fid_a": lay.fids, "label_a": lab, "code_a": [None] * n,
            "layer_b": [cur_name] * n, "fid_b": np.full(n, -1), "label_b": [None] * n,
            "area_m2": lay.area, "area_ha": lay.area / 1e4,
            "township": ctx.townships_of(lay.geoms), "message_zh": [zh] * n,
            "message_en": [en] * n}, geometry=gpd.GeoSeries(lay.geoms, crs=epsg)))
    frame = _concat(frames, epsg)
    res.layers[RESULT_TABLES[res.id]] = frame
    res.summary.update({"boundary_area_ha": round(b_area / 1e4, 4),
                        "urban_current_ha": round(urban_area / 1e4, 4),
                        "factor": float(factor) if np.isfinite(factor) else None,
                        "limit": limit, "basis_zh": basis[0], "basis_en": basis[1],
                        "layer": RESULT_TABLES[res.id], "area_m2": round(b_area, 3)})


def check_flexible_share(ctx: CheckContext, res: CheckResult) -> None:
    """弹性发展区 area ÷ 集中建设区 area inside the boundary; a warning above
    ``flexible_share_max``."""
    epsg = ctx.project.epsg
    limit = float(ctx.setting("flexible_share_max"))
    res.layers[RESULT_TABLES[res.id]] = _empty_layer(epsg)
    flex_v = set(ctx.params.redlines["flexible_values"])
    conc_v = set(ctx.params.redlines["concentrated_values"])
    bnames = ctx.layers_of_role("urban_boundary")
    flex_a = conc_a = 0.0
    frames = []
    fields = []
    for name in bnames:
        lay = ctx.layer(name)
        f = _zone_field(ctx, lay)
        if f is None:
            continue
        fields.append(f"{name}.{f}")
        kind = np.asarray([v or "" for v in _texts(lay.frame[f]).tolist()])
        flex, conc = np.isin(kind, list(flex_v)), np.isin(kind, list(conc_v))
        flex_a += float(lay.area[flex].sum())
        conc_a += float(lay.area[conc].sum())
        sel = np.flatnonzero(flex)
        n = len(sel)
        frames.append(gpd.GeoDataFrame({
            "check_id": [res.id] * n, "severity": ["info"] * n, "layer_a": [name] * n,
            "fid_a": lay.fids[sel], "label_a": kind[sel], "code_a": [None] * n,
            "layer_b": [name] * n, "fid_b": np.full(n, -1), "label_b": [None] * n,
            "area_m2": lay.area[sel], "area_ha": lay.area[sel] / 1e4,
            "township": ctx.townships_of(lay.geoms[sel]), "message_zh": [""] * n,
            "message_en": [""] * n}, geometry=gpd.GeoSeries(lay.geoms[sel], crs=epsg)))
    if not fields:
        res.status = "skip"
        res.note("城镇开发边界图层没有分区类型字段（KFBJLX），未计算弹性发展区占比",
                 "the development boundary has no zone-type field (KFBJLX): share not computed")
        _summarise(res, res.layers[RESULT_TABLES[res.id]])
        return
    share = flex_a / conc_a if conc_a > 0 else float("inf")
    over = share > limit
    zh = (f"弹性发展区 {flex_a / 1e4:,.2f} 公顷为集中建设区 {conc_a / 1e4:,.2f} 公顷的 "
          f"{share * 100:.1f}%，{'超过' if over else '未超过'}上限 {limit * 100:g}%")
    en = (f"the flexible development zone ({flex_a / 1e4:,.2f} ha) is {share * 100:.1f} % of the "
          f"concentrated construction zone ({conc_a / 1e4:,.2f} ha); limit {limit * 100:g} %")
    if over:
        res.findings.add("warning", zh, en, value=share, area=flex_a)
    frame = _concat(frames, epsg)
    if len(frame):
        frame["severity"] = "warning" if over else "info"
        frame["message_zh"], frame["message_en"] = zh, en
    res.layers[RESULT_TABLES[res.id]] = frame
    res.summary.update({"flexible_ha": round(flex_a / 1e4, 4),
                        "concentrated_ha": round(conc_a / 1e4, 4),
                        "share": float(share) if np.isfinite(share) else None,
                        "limit": limit, "fields": fields, "layer": RESULT_TABLES[res.id],
                        "area_m2": round(flex_a, 3)})


CHECKS = {
    "rl_urban_eco": check_urban_eco,
    "rl_urban_farmland": check_urban_farmland,
    "rl_farmland_eco": check_farmland_eco,
    "rl_self_overlap": check_self_overlap,
    "rl_in_county": check_in_county,
    "rl_construction_eco": check_construction_eco,
    "rl_construction_farmland": check_construction_farmland,
    "rl_expansion": check_expansion,
    "rl_flexible_share": check_flexible_share,
}
