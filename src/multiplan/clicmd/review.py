"""Review commands: ``multiplan decide``, ``decisions``, ``committee`` and
``report committee``.

``decide`` and ``committee`` open the project in review mode as the named reviewer (plan
data read-only; decisions are what review mode allows), except ``decide --apply``, which
edits the plan and so opens it in edit mode. Exit codes: 0 done · 6 refused (unknown id,
bad status, reviewer not listed …) · 4 not a project · 2 usage.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

EXIT_OK = 0


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _open(folder: str, *, review: bool = False, user: str | None = None) -> Any:
    from multiplan.core.project import Project

    if review:
        return Project.open(folder, mode="review", user=user)
    return Project.open(folder, user=user) if user else Project.open(folder)


def _s(v: Any) -> str:
    """Text of a cell: None and NaN show as empty."""
    import pandas as pd

    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def _reviewer(project: Any, given: str | None) -> str:
    return given if given else project.actor


def cmd_decide(args: argparse.Namespace) -> int:
    from multiplan.core import review as rv

    status = rv.normalise_status(args.status)
    if args.apply:
        if status != "按上位规划调整":
            from multiplan.core.errors import MultiplanError

            class UsageError(MultiplanError):
                exit_code = 2

            raise UsageError("usage.apply_status", "--apply 只能与状态“按上位规划调整”(adjust) 同用",
                             "--apply goes only with the status 按上位规划调整 (adjust)")
        project = _open(args.project, user=args.reviewer)
        reviewer = _reviewer(project, args.reviewer)
        edit = rv.apply_precedence(project, args.item_id, reviewer=reviewer,
                                   comment=args.comment or "")
        row = rv.decision_history(project, args.item_id).iloc[-1].to_dict()
        out = {"item_id": args.item_id, "status": row["status"],
               "status_en": rv.STATUS_EN[row["status"]], "reviewer": reviewer,
               "comment": row["comment"], "time": row["time"], "applied": {
                   "layer": edit.layer, "fid": edit.fid, "values": edit.values,
                   "changed_fids": edit.changed_fids, "new_fids": edit.new_fids,
                   "warnings": edit.warnings}}
    else:
        project = _open(args.project, review=True, user=args.reviewer)
        reviewer = _reviewer(project, args.reviewer)
        out = rv.decide(project, args.item_id, status, reviewer=reviewer,
                        comment=args.comment or "", source="cli")
    if args.json:
        _print_json(out)
        return EXIT_OK
    print(f"已记录 / recorded: {out['item_id']} → {out['status']}（{out['status_en']}）"
          f"  评议人 reviewer {out['reviewer']}  {out['time']}")
    if out.get("comment"):
        print(f"  意见 comment: {out['comment']}")
    if "applied" in out:
        a = out["applied"]
        print(f"  已修改 modified: {a['layer']} 要素 feature {a['changed_fids']} → {a['values']}"
              + (f"（新要素 new features {a['new_fids']}）" if a["new_fids"] else ""))
        for w in a["warnings"]:
            print(f"  ! {w}")
    return EXIT_OK


def cmd_decisions(args: argparse.Namespace) -> int:
    from multiplan.cli import _pad
    from multiplan.core import review as rv

    project = _open(args.project)
    written = None
    if args.export:
        written = rv.export_decisions(project, args.export,
                                      include_slivers=args.include_slivers)
    reg = rv.decision_register(project, include_slivers=args.include_slivers)
    if args.json:
        body = reg.astype(object).where(reg.notna(), None).to_dict("records")
        _print_json({"items": body, "count": len(body),
                     "by_status": reg["status"].value_counts().to_dict(),
                     "committee": rv.committee_decision(project),
                     "export": str(written) if written else None})
        return EXIT_OK
    print(_pad("编号 id", 26) + _pad("类型 type", 10) + _pad("程度", 6) + _pad("公顷 ha", 11, True)
          + "  " + _pad("状态 status", 16) + _pad("评议人", 10) + "意见 comment")
    for r in reg.itertuples():
        area = "" if _s(r.area_ha) == "" else f"{r.area_ha:,.4f}"
        print(_pad(r.item_id, 26) + _pad(_s(r.type), 10) + _pad(_s(r.severity), 6)
              + _pad(area, 11, True) + "  " + _pad(r.status, 16) + _pad(_s(r.reviewer), 10)
              + _s(r.comment))
    counts = reg["status"].value_counts()
    print("合计 total: " + "，".join(f"{k} {v}" for k, v in counts.items()))
    com = rv.committee_decision(project)
    print("评议委员会 committee: " + (f"{com['outcome']}（{com['time']}，主任委员 chair "
                                      f"{com['chair']}）" if com else "未记录 / not recorded"))
    if written:
        print(f"已导出 / exported: {written}")
    return EXIT_OK


def cmd_committee(args: argparse.Namespace) -> int:
    from multiplan.core import review as rv

    project = _open(args.project, review=True, user=args.chair)
    members = [m.strip() for m in (args.members or "").replace("，", ",").split(",")
               if m.strip()]
    out = rv.record_committee_decision(project, args.outcome, members=members,
                                       chair=args.chair, comment=args.comment or "")
    if args.json:
        _print_json(out)
        return EXIT_OK
    print(f"已记录评议委员会决定 / committee decision recorded: {out['outcome']}"
          f"（{out['outcome_en']}）")
    print(f"  主任委员 chair: {out['chair']}；委员 members: {'、'.join(out['members'])}")
    print(f"  时间 time: {out['time']}")
    return EXIT_OK


def cmd_report_committee(args: argparse.Namespace) -> int:
    from multiplan.cli import ProgressBar
    from multiplan.core.committee_report import committee_report
    from multiplan.core.tasks import Task

    project = _open(args.project)
    out = Path(args.out) if args.out else project.folder / "exports" / "committee_report.pdf"
    bar = ProgressBar(enabled=False if args.json else None)
    try:
        pdf = committee_report(project, out, task=Task(bar))
    finally:
        bar.close()
    if args.json:
        _print_json({"pdf": str(pdf), "bytes": pdf.stat().st_size})
        return EXIT_OK
    print(f"已生成评议报告 / committee report written: {pdf}")
    return EXIT_OK


def register(sub: Any) -> None:
    from multiplan.core.review import COMMITTEE_OUTCOMES, DECISION_STATUSES, STATUS_KEYS

    d = sub.add_parser("decide", help="记录评议决定 / record a review decision on a conflict "
                                      "or finding")
    d.add_argument("project", help="项目文件夹 / project folder")
    d.add_argument("item_id", help="差异图斑或质检结果编号 / conflict or finding id (CF-…, AS-…, "
                                   "<check>-…)")
    d.add_argument("--status", required=True,
                   help=f"{' / '.join(DECISION_STATUSES)}；或英文 or a key: "
                        f"{', '.join(STATUS_KEYS)}")
    d.add_argument("--comment", default="", help="意见 / comment")
    d.add_argument("--reviewer", help="评议人 / reviewer (default: the login name)")
    d.add_argument("--apply", action="store_true",
                   help="按上位规划调整并修改规划图层（可撤销的编辑，立即保存）/ with status adjust: "
                        "apply the proposed class to the lower-precedence parcel and save")
    d.add_argument("--json", action="store_true", help="JSON 输出 / JSON output")
    d.set_defaults(func=cmd_decide)

    s = sub.add_parser("decisions", help="评议决定登记表 / list (and export) the review "
                                         "decisions")
    s.add_argument("project", help="项目文件夹 / project folder")
    s.add_argument("--export", metavar="FILE", help="导出为 .xlsx 或 .csv / export to .xlsx "
                                                    "or .csv")
    s.add_argument("--include-slivers", action="store_true",
                   help="包括碎片图斑 / include sliver pieces")
    s.add_argument("--json", action="store_true", help="JSON 输出 / JSON output")
    s.set_defaults(func=cmd_decisions)

    c = sub.add_parser("committee", help="记录评议委员会决定 / record the review committee's "
                                         "decision")
    c.add_argument("project", help="项目文件夹 / project folder")
    c.add_argument("--outcome", required=True,
                   help=f"{' / '.join(COMMITTEE_OUTCOMES)}（approved / "
                        f"approved_with_modifications / rejected）")
    c.add_argument("--members", required=True, help="委员，逗号分隔 / members, comma-separated")
    c.add_argument("--chair", required=True, help="主任委员 / chair")
    c.add_argument("--comment", default="", help="意见 / comment")
    c.add_argument("--json", action="store_true", help="JSON 输出 / JSON output")
    c.set_defaults(func=cmd_committee)

    r = sub.add_parser("report", help="报告 / reports")
    rsub = r.add_subparsers(dest="report_kind", metavar="KIND", required=True)
    rc = rsub.add_parser("committee", help="规划评议报告 PDF / the committee report PDF")
    rc.add_argument("project", help="项目文件夹 / project folder")
    rc.add_argument("--out", help="PDF 文件 / PDF file (default: exports/committee_report.pdf)")
    rc.add_argument("--json", action="store_true", help="JSON 输出 / JSON output")
    rc.set_defaults(func=cmd_report_committee)
