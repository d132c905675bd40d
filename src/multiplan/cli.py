"""multiplan command line: a thin layer over multiplan.core.

Exit codes: 0 success · 1 unexpected error · 2 usage error · 3 input refused ·
4 project error · 5 standards error · 6 a blocking check failed (multiplan check) ·
130 cancelled (Ctrl+C).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from multiplan import __version__

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
EXIT_CHECK_FAILED = 6


class ProgressBar:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, enabled: bool | None = None, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self._last = -1.0

    def __call__(self, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        if fraction < 1.0 and fraction - self._last < 0.005:
            return
        self._last = fraction
        filled = int(self.width * fraction)
        bar = "█" * filled + "·" * (self.width - filled)
        self.stream.write(f"\r{bar} {fraction * 100:5.1f}% {message[:40]:<40}")
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and 0 <= self._last < 1.0:
            self.stream.write("\n")
            self.stream.flush()


def _w(text: Any) -> int:
    """Display width of text in a terminal (CJK characters take two columns)."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in str(text))


def _pad(text: Any, width: int, right: bool = False) -> str:
    text = str(text)
    fill = " " * max(width - _w(text), 0)
    return fill + text if right else text + fill


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# ---------------------------------------------------------------------- commands
def cmd_new(args: argparse.Namespace) -> int:
    from multiplan.core.project import Project

    central_lon = None
    boundary_path = Path(args.boundary) if args.boundary else None
    if args.crs is None and boundary_path is not None:
        central_lon = _boundary_central_longitude(boundary_path)
    project = Project.create(args.folder, county=args.county, crs=args.crs,
                             admin_code=args.admin_code, central_longitude=central_lon,
                             prefixed=args.prefixed, overwrite=False)
    report = None
    if boundary_path is not None:
        from multiplan.core.io import import_layer
        try:
            report = import_layer(project, boundary_path, name="行政区", level="county",
                                  role="admin_boundary", assume_crs=args.assume_crs)
        except Exception:
            import shutil
            shutil.rmtree(project.folder, ignore_errors=True)
            raise
    out = {"project": str(project.folder), "county": project.county, "crs_epsg": project.epsg,
           "crs_convention": project.setting("crs_convention"),
           "boundary": report.to_dict() if report else None}
    if args.json:
        _print_json(out)
    else:
        print(f"已创建项目 / project created: {project.folder}")
        print(f"  县 / county: {project.county}")
        print(f"  坐标系 / CRS: EPSG:{project.epsg} {project.crs.name} "
              f"({project.setting('crs_convention')})")
        if report:
            for line in report.summary():
                print("  " + line)
    return EXIT_OK


def _boundary_central_longitude(path: Path) -> float:
    """Central longitude of a boundary file, for choosing the project's GK zone."""
    import pyogrio
    from pyproj import CRS, Transformer

    from multiplan.core.errors import ImportRefused

    try:
        info = pyogrio.read_info(path)
        bounds = pyogrio.read_bounds(path)[1]
    except Exception as exc:  # noqa: BLE001
        raise ImportRefused("file.unreadable", "无法读取县界文件", f"cannot read the boundary "
                            f"file: {exc}", path=path) from None
    minx, miny = float(bounds[0].min()), float(bounds[1].min())
    maxx, maxy = float(bounds[2].max()), float(bounds[3].max())
    x, y = (minx + maxx) / 2, (miny + maxy) / 2
    if info.get("crs"):
        t = Transformer.from_crs(CRS(info["crs"]), CRS.from_epsg(4490), always_xy=True)
        x, y = t.transform(x, y)
    elif not (-180 <= x <= 180):
        raise ImportRefused("crs.missing", "县界文件没有坐标系，无法确定投影带；请用 --crs 指定",
                            "the boundary file has no CRS, so the zone cannot be chosen; "
                            "give --crs", path=path)
    return float(x)


def cmd_import(args: argparse.Namespace) -> int:
    from multiplan.core.io import import_layer
    from multiplan.core.project import Project
    from multiplan.core.tasks import Task

    project = Project.open(args.project)
    bar = ProgressBar(enabled=False if args.json else None)
    try:
        report = import_layer(project, args.file, name=args.name, level=args.level,
                              role=args.role, layer=args.layer, scheme=args.scheme,
                              code_field=args.code_field, name_field=args.name_field,
                              encoding=args.encoding, assume_crs=args.assume_crs,
                              replace=args.replace, task=Task(bar))
    finally:
        bar.close()
    if args.json:
        _print_json(report.to_dict())
    else:
        for line in report.summary():
            print(line)
    return EXIT_OK


def layer_area_table(project, name: str, method: str = "planar", by: str = "level1"):
    """Area by class of one layer: DataFrame(code, name, count, area_m2, area_ha)."""
    import pandas as pd

    rec = project.layer(name)
    gdf = project.read_layer(name)
    if method == "ellipsoidal":
        from pyproj import Geod
        geod = Geod(ellps="GRS80")  # CGCS2000 ellipsoid differs from GRS80 by < 0.1 mm in b
        ll = gdf.geometry.to_crs(4490)
        areas = [abs(geod.geometry_area_perimeter(g)[0]) for g in ll.values]
        area = pd.Series(areas, index=gdf.index, dtype="float64")
    else:
        area = gdf.geometry.area
    if "mp_code" in gdf.columns:
        codes = gdf["mp_code"].fillna("")
        status = gdf["mp_status"].fillna("")
        codes = codes.where(status == "ok", status.replace({"unknown": "未知"}))
        if by == "level1":
            codes = codes.where(~codes.str.match(r"^\d{2}"), codes.str[:2])
    elif rec.code_field and rec.code_field in gdf.columns:
        codes = gdf[rec.code_field].astype(str)
    else:
        codes = pd.Series(["(全部)"] * len(gdf), index=gdf.index)
    df = pd.DataFrame({"code": codes.values, "area_m2": area.values})
    table = df.groupby("code", sort=True).agg(count=("area_m2", "size"),
                                              area_m2=("area_m2", "sum")).reset_index()
    table["area_ha"] = table["area_m2"] / 10_000
    table["name"] = [_class_name(c) for c in table["code"]]
    return table[["code", "name", "count", "area_m2", "area_ha"]]


def _class_name(code: str) -> str:
    try:
        from multiplan.core.classification import load_scheme
        entry = load_scheme("ydyh2023").get(code)
        return entry.name if entry else ""
    except Exception:  # noqa: BLE001 — a missing name is shown as blank
        return ""


def cmd_info(args: argparse.Namespace) -> int:
    from multiplan.core.project import Project

    project = Project.open(args.project)
    method = args.area_method
    method_text = {
        "planar": (f"平面面积（项目坐标系 EPSG:{project.epsg} 高斯-克吕格投影）",
                   f"planar area in the project CRS EPSG:{project.epsg} (Gauss-Krüger)"),
        "ellipsoidal": ("椭球面积（CGCS2000 椭球，pyproj.Geod）",
                        "ellipsoidal area on the CGCS2000 ellipsoid (pyproj.Geod)"),
    }[method]
    layers = []
    for rec in project.layers():
        item: dict[str, Any] = {
            "name": rec.name, "kind": rec.kind, "level": rec.level, "level_label": rec.level_label,
            "role": rec.role, "role_label": rec.role_label, "features": rec.feature_count,
            "geometry_type": rec.geometry_type, "source_crs": rec.source_crs,
            "crs_assumed": rec.crs_assumed, "encoding": rec.encoding, "scheme": rec.scheme,
            "scheme_version": rec.scheme_version, "code_field": rec.code_field,
            "source_path": rec.source_path, "source_sha256": rec.source_sha256,
            "synthetic": rec.synthetic,
        }
        if rec.kind == "vector" and rec.geometry_type == "MultiPolygon" and \
                (args.areas or args.layer == rec.name):
            if args.layer and args.layer != rec.name:
                layers.append(item)
                continue
            table = layer_area_table(project, rec.name, method)
            item["area_total_m2"] = float(table["area_m2"].sum())
            item["area_by_class"] = table.to_dict(orient="records")
        layers.append(item)
    out = {"project": str(project.folder), "county": project.county,
           "crs": {"epsg": project.epsg, "name": project.crs.name,
                   "convention": project.setting("crs_convention")},
           "schema_version": project.schema_version,
           "area_method": {"id": method, "zh": method_text[0], "en": method_text[1]},
           "layers": layers}
    if args.json:
        _print_json(out)
        return EXIT_OK
    print(f"项目 / project: {project.folder}")
    print(f"县 / county: {project.county}")
    print(f"坐标系 / CRS: EPSG:{project.epsg} {project.crs.name} "
          f"({project.setting('crs_convention')})")
    print(f"面积计算 / area method: {method_text[0]} / {method_text[1]}")
    print()
    print(_pad("图层 layer", 22) + _pad("级别", 8) + _pad("用途 role", 18) + _pad("类型 type", 16)
          + _pad("要素数", 9, True) + "  来源坐标系 / source CRS")
    for it in layers:
        feats = "" if it["features"] is None else str(it["features"])
        kind = it["geometry_type"] or it["kind"]
        flag = "（假定 assumed）" if it["crs_assumed"] else ""
        print(_pad(it["name"], 22) + _pad(it["level_label"], 8) + _pad(it["role_label"], 18)
              + _pad(kind, 16) + _pad(feats, 9, True) + f"  {it['source_crs'] or ''}{flag}")
    for it in layers:
        if "area_by_class" not in it:
            continue
        print()
        print(f"[{it['name']}] 分类面积 / area by class ({method_text[1]})")
        print(_pad("代码", 10) + _pad("名称", 24) + _pad("图斑数", 8, True)
              + _pad("面积 m²", 20, True) + _pad("面积 公顷", 14, True))
        for row in it["area_by_class"]:
            print(_pad(row["code"], 10) + _pad(row["name"], 24) + _pad(row["count"], 8, True)
                  + _pad(f"{row['area_m2']:,.1f}", 20, True)
                  + _pad(f"{row['area_ha']:,.2f}", 14, True))
        total = it["area_total_m2"]
        print(_pad("合计 total", 42) + _pad(f"{total:,.1f}", 20, True)
              + _pad(f"{total / 10000:,.2f}", 14, True))
    return EXIT_OK


def cmd_conflicts(args: argparse.Namespace) -> int:
    import pandas as pd

    from multiplan.core import conflicts as cf
    from multiplan.core.errors import MultiplanError
    from multiplan.core.project import Project
    from multiplan.core.tasks import Task

    class UsageError(MultiplanError):
        exit_code = EXIT_USAGE

    if (args.a is None) != (args.b is None):
        raise UsageError("usage.conflicts_pair", "--a 与 --b 须同时给出",
                         "--a and --b must be given together")
    if args.all and args.a is not None:
        raise UsageError("usage.conflicts_mode", "--all 不能与 --a/--b 同时使用",
                         "--all cannot be combined with --a/--b")
    project = Project.open(args.project)
    rules = cf.load_rules()
    bar = ProgressBar(enabled=False if args.json else None)
    merged = None
    try:
        if args.all:
            mode = "all"
            runs = cf.detect_all(project, task=Task(bar))
        elif args.a is not None:
            mode = "pair"
            runs = [cf.detect_conflicts(project, args.a, args.b, task=Task(bar))]
        else:
            mode = "stored"
            runs = None
    finally:
        bar.close()
    if args.merge:
        bar = ProgressBar(enabled=False if args.json else None)
        try:
            merged = cf.build_merged_map(project, task=Task(bar))
        finally:
            bar.close()
    if runs is None:
        register = cf.read_register(project)
        pairs = [(r["layer_a"], r["layer_b"]) for r in cf.read_runs(project)]
        items = []
        seen = pd.Series(False, index=register.index)
        for a, b in pairs:
            mask = (register["layer_a"] == a) & (register["layer_b"] == b)
            seen |= mask
            items.append({"layer_a": a, "layer_b": b,
                          **cf.register_summary(register[mask], rules)})
        # entries of other origins (the 双评价 plan check, ids AS-…), per layer pair
        rest = register[~seen]
        for (a, b), sub in rest.groupby(["layer_a", "layer_b"], sort=True):
            source = str(sub["conflict_id"].iloc[0]).split("-", 1)[0]
            items.append({"layer_a": a, "layer_b": b, "source": source,
                          **cf.register_summary(sub, rules)})
    else:
        register = None
        items = [r.summary(rules) for r in runs]
    exports = None
    if args.export:
        reg = register if register is not None else cf.read_register(project)
        exports = {k: str(v) for k, v in
                   cf.export_register(project, args.export, register=reg, rules=rules).items()}
    if register is not None:
        total_reg = register
    elif runs:
        total_reg = pd.concat([r.register for r in runs], ignore_index=True)
    else:
        total_reg = cf.read_register(project)
    out = {"project": str(project.folder), "rule_version": rules.version_id, "mode": mode,
           "area_method": "planar", "runs": items,
           "total": cf.register_summary(total_reg, rules), "exports": exports,
           "merged": merged.summary() if merged is not None else None}
    if args.json:
        _print_json(out)
        return EXIT_OK
    print(f"规则表 / rule table: {rules.version_id}（{len(rules.rules)} 条规则 rules）")
    if mode == "stored":
        print("登记表中已存的检测结果 / stored register (no detection run; use --a/--b or --all)")
    sources = {"AS": "双评价核查 plan check"}
    for it in items:
        print()
        origin = (f"（{sources.get(it['source'], it['source'])}）" if it.get("source")
                  else "")
        print(f"[{it['layer_a']} × {it['layer_b']}]{origin}  图斑 pieces {it['pieces']} · "
              f"冲突/警告 conflicts {it['conflicts']}（{it['conflict_area_ha']:,.2f} 公顷 ha）· "
              f"待定 pending {it['pending']} · 碎片 slivers {it['slivers']}"
              f"（{it['sliver_area_ha']:,.2f} 公顷 ha）")
        reasons = {"area": "面积小 small", "width": "狭长 thin",
                   "boundary": "边界不一致 boundary mismatch"}
        if it.get("slivers_by_reason"):
            print("  碎片 slivers: " + "；".join(
                f"{reasons.get(k, k)} {v['count']}（{v['area_ha']:,.2f} 公顷）"
                for k, v in it["slivers_by_reason"].items()))
        for f in it.get("failures") or []:
            print(f"  ! 要素对 pair {f['fid_a']}×{f['fid_b']} 未能求交 / failed: {f['message']}")
        if it["by_type"]:
            print("  " + _pad("类型", 6) + _pad("名称 name", 40) + _pad("图斑数", 8, True)
                  + _pad("面积 公顷", 14, True))
            for code, v in it["by_type"].items():
                print("  " + _pad(code, 6) + _pad(v["name"], 40) + _pad(v["count"], 8, True)
                      + _pad(f"{v['area_ha']:,.2f}", 14, True))
    t = out["total"]
    print()
    print(f"合计 total: 图斑 {t['pieces']} · 冲突/警告 {t['conflicts']}（"
          f"{t['conflict_area_ha']:,.2f} 公顷）· 待定 {t['pending']} · 碎片 {t['slivers']}"
          f"（{t['sliver_area_ha']:,.2f} 公顷，不计入统计 / not in the statistics）")
    print("面积为项目坐标系平面面积 / areas are planar in the project CRS "
          f"EPSG:{project.epsg}; 1 亩 = 10000/15 m²")
    if merged is not None:
        m = merged.summary()
        print(f"合并一张图 / merged map (mp_merged): {m['pieces']} 图斑, {m['area_ha']:,.2f} 公顷, "
              f"待定 {m['pending']}（{m['pending_area_ha']:,.2f} 公顷）")
    if exports:
        print(f"已导出 / exported: {exports['csv']}  {exports['xlsx']}")
    return EXIT_OK


def cmd_assess(args: argparse.Namespace) -> int:
    from multiplan.core.assessment import assessment_gate, run_assessment
    from multiplan.core.assessment.params import read_overrides_file, set_project_overrides
    from multiplan.core.assessment.report import write_reports
    from multiplan.core.project import Project
    from multiplan.core.tasks import Task

    project = Project.open(args.project)
    if args.params:  # stored in the project, so the gate compares against them
        set_project_overrides(project, read_overrides_file(args.params))
    bar = ProgressBar(enabled=False if args.json else None)
    try:
        run = run_assessment(project, task=Task(bar))
    finally:
        bar.close()
    rep = write_reports(project, run, Path(args.out) if args.out else None,
                        charts=not args.no_charts)
    gate = assessment_gate(project)
    files = {k: str(v) for k, v in rep["tables"].items()}
    files.update({f"png_{k}": str(v) for k, v in rep["charts"].items()})
    if args.json:
        out = run.to_dict()
        out.update(project=str(project.folder), gate=gate.to_dict(), files=files,
                   font=rep["font"], area_method="planar")
        for key in ("stats_township", "stats_zone"):
            out[key] = out[key] if args.full else len(out[key])
        _print_json(out)
        return EXIT_OK
    g = run.grid
    print(f"双评价完成 / assessment done: {project.county}  运行 run {run.run_id[:12]}")
    print(f"  参数 / parameters: {run.params_version}  网格 / grid: EPSG:{g.epsg} "
          f"{g.cell:g} m, {g.width} × {g.height}")
    print(f"  适宜性类别 / classes: {run.class_scheme_text}")
    if run.synthetic_inputs:
        print(f"  合成输入 / synthetic inputs: {'、'.join(run.synthetic_inputs)}")
    summ = run.summary()["county_area_ha"]
    for key in ("eco_importance", "agri_suitability", "urban_suitability"):
        parts = "  ".join(f"{k} {v:,.1f}" for k, v in summ.get(key, {}).items())
        print(f"  {OUTPUT_TITLES.get(key, key)}（公顷 ha）: {parts}")
    cap = run.capacity["current"]
    total = cap["rows"][-1] if cap["rows"] else None
    if total:
        def ha(v: Any) -> str:
            return "—" if v is None else f"{v:,.0f}"

        print(f"  承载规模 / carrying scale（全县）: 耕地 {ha(total['farmland_carrying_ha'])} 公顷"
              f"（现状 {ha(total['farmland_current_ha'])}）· 城镇建设用地 "
              f"{ha(total['urban_carrying_ha'])} 公顷（现状 {ha(total['urban_current_ha'])}）· "
              f"人口 {ha(total['population_carrying'])}")
    by_type: dict[str, int] = {}
    for f in run.findings:
        by_type[f["conflict_type"]] = by_type.get(f["conflict_type"], 0) + 1
    print("  规划冲突 / plan-check findings: "
          + ("  ".join(f"{k} {v}" for k, v in sorted(by_type.items())) or "无 none"))
    for n in run.notes:
        print(f"  注 / note: {n['zh']}")
    print(f"  统计表与图 / tables and charts: {rep['dir']}")
    if rep["charts"] and not rep["font"]:
        print("  注：未找到中文字体（Noto Sans CJK SC / WenQuanYi Micro Hei），图中汉字可能无法显示")
    print(f"  评价闸门 / gate: {gate.zh} / {gate.en}")
    return EXIT_OK


OUTPUT_TITLES = {"eco_importance": "生态保护重要性", "agri_suitability": "农业生产适宜性",
                 "urban_suitability": "城镇建设适宜性"}


def cmd_check(args: argparse.Namespace) -> int:
    from multiplan.core.errors import MultiplanError
    from multiplan.core.project import Project
    from multiplan.core.qa import STATUSES, available_checks, run_checks
    from multiplan.core.tasks import Task

    class UsageError(MultiplanError):
        exit_code = EXIT_USAGE

    if args.list:
        checks = available_checks()
        if args.json:
            _print_json(checks)
        else:
            for c in checks:
                print(_pad(c["id"], 26) + _pad("阻断" if c["blocking"] else "", 6)
                      + f"{c['zh']} / {c['en']}")
        return EXIT_OK
    if args.project is None:
        raise UsageError("usage.check_project", "需要指定项目文件夹", "give the project folder")
    only = None
    if args.only:
        only = [x for item in args.only for x in item.split(",") if x.strip()]
    project = Project.open(args.project)
    if args.targets:
        from multiplan.core.indicators import import_targets_csv
        import_targets_csv(project, args.targets)
    bar = ProgressBar(enabled=False if args.json else None)
    try:
        run = run_checks(project, only=only, task=Task(bar), write=not args.no_write)
    finally:
        bar.close()
    report = None
    if not args.no_report:
        from multiplan.core.report import write_report
        report = write_report(run, args.report, args.format)
    code = EXIT_OK if run.passed else EXIT_CHECK_FAILED
    if args.json:
        out = run.to_dict(findings=args.findings)
        out.update(report=str(report) if report else None, exit_code=code)
        _print_json(out)
        return code
    print(f"质检与规划检查 / checks: {project.county}  ({project.folder})")
    print("版本 / versions: " + ", ".join(f"{k} {v}" for k, v in run.versions.items()))
    print()
    print(_pad("检查项 check", 26) + _pad("阻断", 6) + _pad("结果 result", 14)
          + _pad("错误", 7, True) + _pad("警告", 7, True) + _pad("提示", 7, True)
          + _pad("错误面积 m²", 16, True) + _pad("用时 s", 9, True) + "  名称")
    for r in run.results:
        print(_pad(r.id, 26) + _pad("是" if r.blocking else "", 6)
              + _pad(f"{STATUSES[r.status][0]} {r.status}", 14) + _pad(r.errors, 7, True)
              + _pad(r.warnings, 7, True) + _pad(r.infos, 7, True)
              + _pad(f"{r.findings.area('error'):,.1f}", 16, True)
              + _pad(f"{r.seconds:.2f}", 9, True) + f"  {r.zh}")
        for n in r.notes:
            print(" " * 4 + f"注 / note: {n['zh']}")
    print()
    print(f"合计用时 / total {run.seconds:.2f} s（读图层 read {run.seconds_read:.2f} s，"
          f"写结果 write {run.seconds_write:.2f} s，CPU {run.cpu_seconds:.2f} s）")
    if not args.no_write:
        print("结果已写入项目 / stored in the project: mp_qa_errors, mp_qa_runs (+ result layers)")
    if report:
        print(f"报告 / report: {report}")
    if run.passed:
        print("结论 / verdict: 通过（无阻断性错误）/ passed (no blocking error)")
    else:
        print("结论 / verdict: 未通过 / failed — 阻断性检查项 blocking checks: "
              + ", ".join(run.blocking_failures))
    return code


def cmd_gui(args: argparse.Namespace) -> int:
    from multiplan.gui.app import run

    project = args.project
    if project is None:
        sample = default_sample_project()
        project = str(sample) if sample is not None else None
    return run(project, lang=args.lang, review=getattr(args, "review", False),
               user=getattr(args, "user", None))


def default_sample_project() -> Path | None:
    """The sample county project next to the source tree, if there is one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "sample_data" / "changxing"
        if (cand / "plan.gpkg").is_file():
            return cand
    return None


# ---------------------------------------------------------------------- parser
LEVEL_CHOICES = ["national", "provincial", "city", "county", "国家级", "省级", "市级", "县级"]


def build_parser() -> argparse.ArgumentParser:
    from multiplan.core.layers import ROLES

    p = argparse.ArgumentParser(
        prog="multiplan",
        description="multiplan — 多规合一 县级国土空间规划桌面 GIS / desktop GIS for county-level "
                    "multi-plan integration. Run without a command to open the desktop window.",
        epilog="退出码 / exit codes: 0 成功 ok · 2 用法错误 usage · 3 输入被拒绝 input refused · "
               "4 项目错误 project error · 5 标准表错误 standards error · "
               "6 阻断性检查或关口未通过 a blocking check or gate failed (check, advance, export, "
               "decide), 审计链或导出被改动 tampering found (audit verify, verify-export) · "
               "130 已取消 cancelled")
    p.add_argument("--version", action="version", version=f"multiplan {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    n = sub.add_parser("new", help="新建项目 / create a project")
    n.add_argument("folder", help="项目文件夹 / project folder (must not exist or be empty)")
    n.add_argument("--county", required=True, help="县名 / county name, e.g. 长兴县")
    n.add_argument("--crs", help="项目坐标系 / project CRS, e.g. 4549 (CGCS2000 3° GK); "
                                 "default: the zone of --boundary's central longitude")
    n.add_argument("--boundary", help="县界文件，导入为“行政区”图层并用于选择投影带 / county "
                                      "boundary file, imported as 行政区 and used to pick the zone")
    n.add_argument("--prefixed", action="store_true",
                   help="使用带带号的坐标（EPSG 4513–4533）/ use zone-prefixed eastings")
    n.add_argument("--admin-code", help="行政区划代码 / administrative code, e.g. 330522")
    n.add_argument("--assume-crs", help="县界文件坐标系缺失时的确认假定 / confirmed CRS for a "
                                        "boundary without one ('detected' or an EPSG code)")
    n.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    n.set_defaults(func=cmd_new)

    i = sub.add_parser("import", help="导入图层 / import a layer (GPKG, SHP, zip, GeoJSON, FGB, "
                                      "GeoTIFF)")
    i.add_argument("project", help="项目文件夹 / project folder")
    i.add_argument("file", help="源文件 / source file")
    i.add_argument("--name", help="图层名 / layer name (default: file name)")
    i.add_argument("--level", default="county", choices=LEVEL_CHOICES,
                   help="规划级别 / plan level (default county)")
    i.add_argument("--role", default="current_use",
                   help="图层用途 / role: " + ", ".join(f"{k} ({v[0]})" for k, v in ROLES.items()))
    i.add_argument("--layer", help="源文件中的图层（GPKG、压缩包）/ layer inside the source")
    i.add_argument("--scheme", help="分类标准 / classification scheme: ydyh2023, gbt21010_2017, "
                                    "gbt21010_2007, gb50137_2011 (default: detected from codes)")
    i.add_argument("--code-field", help="地类代码字段 / field holding the class code")
    i.add_argument("--name-field", help="地类名称字段 / field holding the class name")
    i.add_argument("--encoding", help="属性表编码 / attribute encoding (default: detected)")
    i.add_argument("--assume-crs", help="确认坐标系假定 / confirm a CRS assumption when the "
                                        "source's CRS is missing or wrong: 'detected' or EPSG")
    i.add_argument("--replace", action="store_true", help="替换同名图层 / replace a layer of "
                                                          "the same name")
    i.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    i.set_defaults(func=cmd_import)

    f = sub.add_parser("info", help="项目信息 / project summary: layers, CRS, counts, areas")
    f.add_argument("project", help="项目文件夹 / project folder")
    f.add_argument("--layer", help="只统计该图层的分类面积 / area by class for this layer only")
    f.add_argument("--no-areas", dest="areas", action="store_false",
                   help="不统计面积 / skip area by class")
    f.add_argument("--area-method", choices=["planar", "ellipsoidal"], default="planar",
                   help="面积算法 / area method (default planar in the project CRS)")
    f.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    f.set_defaults(func=cmd_info)

    c = sub.add_parser("conflicts", help="多规冲突检测（差异图斑）/ detect plan conflicts")
    c.add_argument("project", help="项目文件夹 / project folder")
    c.add_argument("--a", metavar="LAYER", help="图层 A / layer A")
    c.add_argument("--b", metavar="LAYER", help="图层 B / layer B")
    c.add_argument("--all", action="store_true",
                   help="检测所有有意义的图层组合 / every meaningful layer pair (土规×城规, "
                        "plans×control lines, control lines pairwise, 现状×plans, 林地规划×…)")
    c.add_argument("--merge", action="store_true",
                   help="同时生成合并一张图 mp_merged / also build the merged 一张图")
    c.add_argument("--export", metavar="DIR",
                   help="导出登记表 CSV 和 XLSX（含透视表）/ export the register as CSV + XLSX")
    c.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    c.set_defaults(func=cmd_conflicts)

    a = sub.add_parser("assess", help="双评价（资源环境承载能力和国土空间开发适宜性评价）/ run the "
                                      "carrying-capacity and suitability assessment")
    a.add_argument("project", help="项目文件夹 / project folder")
    a.add_argument("--params", metavar="FILE", help="参数覆盖文件（JSON，存入项目）/ JSON file of "
                                                    "parameter overrides, stored in the project")
    a.add_argument("--out", metavar="DIR", help="统计表与图的目录 / folder for the tables and PNGs "
                                                "(default PROJECT/exports/assessment)")
    a.add_argument("--no-charts", action="store_true", help="不画图 / skip the PNG charts")
    a.add_argument("--full", action="store_true", help="JSON 中包含全部统计行 / include every "
                                                       "statistics row in --json output")
    a.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    a.set_defaults(func=cmd_assess)

    k = sub.add_parser("check", help="质检、三区三线、约束性指标与三生空间检查 / quality checklist, "
                                     "control lines, indicators and 三生 space")
    k.add_argument("project", nargs="?", help="项目文件夹 / project folder")
    k.add_argument("--only", nargs="+", metavar="CHECK",
                   help="只运行这些检查项（空格或逗号分隔；--list 列出全部）/ run only these checks")
    k.add_argument("--list", action="store_true", help="列出检查项 / list the checks")
    k.add_argument("--targets", metavar="CSV", help="导入上级下达指标表（指标, 目标值, 单位）/ import "
                                                    "indicator targets (stored in the project)")
    k.add_argument("--report", metavar="PATH", help="报告文件（.html 或 .md）/ report file "
                                                    "(default PROJECT/exports/check/check_report.html)")
    k.add_argument("--format", choices=["html", "md"], help="报告格式 / report format")
    k.add_argument("--no-report", action="store_true", help="不写报告 / write no report")
    k.add_argument("--no-write", action="store_true",
                   help="不把结果写入项目 / do not store the results in the project")
    k.add_argument("--findings", type=int, default=20, metavar="N",
                   help="--json 中每个检查项列出的问题条数 / findings per check in --json (default 20)")
    k.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    k.set_defaults(func=cmd_check)

    g = sub.add_parser("gui", help="打开桌面程序 / open the desktop window")
    g.add_argument("project", nargs="?", help="项目文件夹 / project folder (default: the sample "
                                              "county)")
    g.add_argument("--lang", default=None, choices=["zh", "en"],
                   help="界面语言 / UI language (default: the saved setting, else Chinese)")
    g.add_argument("--review", action="store_true",
                   help="评审模式打开：规划数据只读，只能记录评议决定和意见 / open in review "
                        "mode: plan data read-only, only decisions and comments")
    g.add_argument("--user", default=None, metavar="NAME",
                   help="评议人或编制人姓名（记入审计日志）/ reviewer or planner name (audited)")
    g.set_defaults(func=cmd_gui)

    from multiplan.clicmd import register_all
    register_all(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from multiplan.core.errors import MultiplanError
    from multiplan.core.tasks import Cancelled

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = ["gui"]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    json_mode = getattr(args, "json", False)
    t0 = time.perf_counter()
    try:
        return int(args.func(args))
    except MultiplanError as exc:
        if json_mode:
            _print_json({"error": exc.to_dict(), "exit_code": exc.exit_code})
        else:
            print(f"错误：{exc.text('zh')}", file=sys.stderr)
            print(f"error: {exc.text('en')}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `multiplan info --json | head`
        import os
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (KeyboardInterrupt, Cancelled):
        print("\n已取消 / cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:  # noqa: BLE001 — no traceback reaches a user
        import os
        import traceback
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        log = cache / "multiplan" / "last-error.txt"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc(), encoding="utf-8")
            where = str(log)
        except OSError:
            where = "(无法写日志 / log not written)"
        msg = {"code": "unexpected", "zh": f"意外错误：{exc}", "en": f"unexpected error: {exc}",
               "log": where}
        if json_mode:
            _print_json({"error": msg, "exit_code": EXIT_UNEXPECTED})
        else:
            print(f"错误：{msg['zh']}（详情见 {where}）", file=sys.stderr)
            print(f"error: {msg['en']} (details in {where})", file=sys.stderr)
        return EXIT_UNEXPECTED
    finally:
        if not json_mode and getattr(args, "command", None) not in (None, "gui"):
            dt = time.perf_counter() - t0
            if dt > 2:
                print(f"用时 / took {dt:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
