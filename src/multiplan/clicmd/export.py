"""``multiplan export PROJECT --out DIR`` and ``multiplan verify-export FOLDER``.

``export`` writes the plan map sheets, the statistics tables, the styled data package and
the manifest (:func:`multiplan.core.publish.export_package`); ``--public`` checks the
publication gates first and refuses with exit code 6 (nothing written) when one fails.
``verify-export`` recomputes every hash of an export folder: exit 0 intact, 6 when a file is
missing, extra or changed (each named), 2 usage.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 6


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip() for s in text.replace("，", ",").split(",") if s.strip()]


def cmd_export(args: argparse.Namespace) -> int:
    from multiplan.cli import ProgressBar
    from multiplan.core.project import Project
    from multiplan.core.publish import export_package
    from multiplan.core.tasks import Task

    project = Project.open(args.project)
    sheets = _split(args.sheets)
    if sheets == ["all"]:
        sheets = None
    elif sheets == ["none"]:
        sheets = []
    formats = _split(args.format) or ["pdf", "png"]
    out = Path(args.out) if args.out else (
        project.folder / "exports" / ("公开版" if args.public else "内部版"))
    bar = ProgressBar(enabled=None if not args.json else False)
    try:
        res = export_package(project, out, sheets=sheets, formats=formats, public=args.public,
                             review_no=args.review_no, generalise_m=args.generalise,
                             paper=args.paper, orientation=args.orientation,
                             scale=args.scale, dpi=args.dpi, overwrite=args.overwrite,
                             task=Task(bar))
    finally:
        bar.close()
    s = res.summary()
    if args.json:
        _print_json({**s, "exit_code": EXIT_OK})
        return EXIT_OK
    print(f"已导出 / exported: {s['folder']}")
    print(f"  版本 / edition: {s['edition_zh']} ({s['edition']})；规划状态 / state: {s['state']}")
    if s["watermark"]:
        print(f"  水印 / watermark: {s['watermark']}")
    if s["review_no"]:
        print(f"  审图号 / map review no.: {s['review_no']}")
    if s["generalise_m"]:
        print(f"  图形概化 / generalised: {s['generalise_m']:g} m")
    for sh in s["sheets"]:
        scale = f"1:{sh['scale']:,}".replace(",", " ") if sh.get("scale") else ""
        print(f"  图 / sheet {sh['key']}: {scale} {', '.join(sh['files'])}")
    print(f"  文件 / files: {s['files']}，{s['bytes'] / 1e6:.1f} MB；清单 / manifest "
          f"sha256 {s['manifest_sha256']}")
    for n in s["notes"]:
        print(f"  注 / note: {n}")
    print(f"核验 / verify: multiplan verify-export {s['folder']}")
    return EXIT_OK


def cmd_verify_export(args: argparse.Namespace) -> int:
    from multiplan.core.publish import verify_export

    rep = verify_export(args.folder)
    code = EXIT_OK if rep.ok else EXIT_FAILED
    if args.json:
        _print_json({**rep.to_dict(), "exit_code": code})
        return code
    print(f"核验导出 / verifying export: {rep.folder}")
    for line_zh, line_en in zip(rep.lines("zh"), rep.lines("en"), strict=True):
        print(f"  {line_zh}" + ("" if line_zh == line_en else f" / {line_en}"))
    print("结论 / verdict: " + ("完好 / intact" if rep.ok else
                              "与清单不符，导出已被改动 / does not match its manifest"))
    return code


def register(sub: Any) -> None:
    e = sub.add_parser("export", help="公开发布导出：规划图、统计表、数据包与清单 / export plan maps, "
                                      "statistics, the data package and its manifest")
    e.add_argument("project", help="项目文件夹 / project folder")
    e.add_argument("--out", metavar="DIR", help="输出文件夹（须不存在或为空）/ output folder "
                   "(must not exist or be empty; default PROJECT/exports/公开版|内部版)")
    e.add_argument("--sheets", metavar="LIST",
                   help="图幅，逗号分隔（landuse,controls,sansheng,assessment_ecology,"
                        "assessment_agriculture,assessment_urban,conflicts；all 全部可用的，"
                        "none 不出图）/ sheets, comma-separated (default: every available one)")
    e.add_argument("--format", metavar="LIST", default="pdf,png",
                   help="图的格式 / sheet formats: pdf,png (default both)")
    ed = e.add_mutually_exclusive_group(required=True)
    ed.add_argument("--public", dest="public", action="store_true",
                    help="公开版：须已公布（或公示中，作征求意见稿），需审图号，图形概化 / public "
                         "edition: needs 已公布 (or 公示中 as a draft), a 审图号, generalised")
    ed.add_argument("--internal", dest="public", action="store_false",
                    help="内部版：总是允许，标注“内部” / internal edition: always allowed, marked 内部")
    e.add_argument("--review-no", metavar="审图号",
                   help="审图号 / map review number (default: project setting export_review_no)")
    e.add_argument("--generalise", type=float, metavar="M",
                   help="公开版图形概化容差（米）/ generalisation tolerance of the public edition "
                        "in metres (default: setting export_generalise_m, else 50)")
    e.add_argument("--paper", default="A3", choices=["A4", "A3", "A2", "A1", "A0"],
                   help="图纸幅面 / paper (default A3)")
    e.add_argument("--orientation", choices=["landscape", "portrait"],
                   help="方向 / orientation (default landscape)")
    e.add_argument("--scale", type=int, metavar="N", help="比例尺 1:N / scale 1:N (default: "
                                                          "fitted to the county)")
    e.add_argument("--dpi", type=int, default=300, help="PNG 分辨率 / PNG resolution (300)")
    e.add_argument("--overwrite", action="store_true",
                   help="替换以前的导出 / replace an earlier export in --out")
    e.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("verify-export", help="核验导出文件夹与其清单 / verify an export folder "
                                             "against its manifest (exit 6 when changed)")
    v.add_argument("folder", help="导出文件夹 / export folder")
    v.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    v.set_defaults(func=cmd_verify_export)
