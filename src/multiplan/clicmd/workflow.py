"""Workflow commands: ``status``, ``advance``, ``milestone``, ``comments import|list`` and
``versions`` (list, ``--verify V``, ``--compare V1 V2 --layer L``).

Exit codes: 0 done · 6 a gate fails or the step is not allowed (each failing gate printed in
Chinese and English) · 3 a comment file refused · 4 not a project / no such version ·
2 usage.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

EXIT_OK = 0
EXIT_GATE = 6


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _open(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from multiplan.core.project import Project

    actor = getattr(args, "actor", None)
    return Project.open(args.project, user=actor) if actor else Project.open(args.project)


def _now(args: argparse.Namespace) -> datetime | None:
    text = getattr(args, "now", None)
    if not text:
        return None
    from multiplan.core.workflow import WorkflowError
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise WorkflowError("usage.now", f"时间 {text!r} 无效，须为 ISO 8601",
                            f"invalid time {text!r}, use ISO 8601") from None


def _print_gates(gates) -> None:  # type: ignore[no-untyped-def]
    for g in gates:
        mark = "✓ 满足" if g.holds else "✗ 未满足"
        mark_en = "holds" if g.holds else "FAILS"
        print(f"  {mark} [{g.key}] {g.zh}")
        print(f"      {mark_en}: {g.en}")


def cmd_status(args: argparse.Namespace) -> int:
    from multiplan.core import workflow

    project = _open(args)
    st = workflow.status(project, now=_now(args))
    if args.json:
        _print_json(st.to_dict())
        return EXIT_OK
    print(f"状态 / state: {st.state}（{st.state_en}）  第 {st.version} 版 / version {st.version}")
    if st.since:
        print(f"  自 / since: {st.since}")
    zh, en = workflow.ANCHORS[st.state]
    print(f"  依据 / basis: {zh}")
    print(f"                {en}")
    if st.notice_start:
        print(f"  公示开始 / notice started: {st.notice_start}（公示期 {st.notice_days} 日 / "
              f"{st.notice_days} days）")
    if st.next_state is None:
        print("下一步 / next: 无（规划已公布；修改将开始新版本） / none (published; an edit "
              "starts a new version)")
        return EXIT_OK
    print(f"下一步 / next: {st.next_state}（{workflow.STATE_EN[st.next_state]}）")
    zh, en = workflow.ANCHORS[st.next_state]
    print(f"  依据 / basis: {zh}")
    print(f"                {en}")
    print(f"条件 / gates（{sum(g.holds for g in st.gates)}/{len(st.gates)} 满足 / hold）:")
    _print_gates(st.gates)
    print("结论 / verdict: " + ("可以进入下一步 / ready to advance" if st.ready else
                               "尚不能进入下一步 / not ready"))
    return EXIT_OK


def cmd_advance(args: argparse.Namespace) -> int:
    from multiplan.core import workflow

    project = _open(args)
    before = workflow.current_state(project)
    try:
        st = workflow.advance(project, args.to, actor=args.actor, force_note=args.force_note)
    except workflow.GateError as exc:
        if args.json:
            _print_json({"error": exc.to_dict(), "exit_code": exc.exit_code,
                         "failing": [g.to_dict() for g in exc.failing]})
            return exc.exit_code
        print(f"不能进入“{exc.to}” / cannot move to {workflow.STATE_EN[exc.to]}："
              f"{len(exc.failing)} 项条件未满足 / gate(s) fail")
        _print_gates(exc.failing)
        holding = [g for g in exc.gates if g.holds]
        if holding:
            print("已满足 / holding:")
            _print_gates(holding)
        return exc.exit_code
    if args.json:
        _print_json({"from": before, **st.to_dict()})
        return EXIT_OK
    print(f"已进入 / now in: {st.state}（{st.state_en}）  第 {st.version} 版 / version "
          f"{st.version}（原为 / was {before}）")
    if st.state == workflow.STATES[-1]:
        from multiplan.core.versions import version_record
        rec = version_record(project, st.version)
        print(f"  公布快照 / snapshot: {rec['path']}  SHA-256 {rec['content_sha256']}")
    if st.next_state:
        print(f"下一步 / next: {st.next_state}（{workflow.STATE_EN[st.next_state]}），"
              f"{sum(g.holds for g in st.gates)}/{len(st.gates)} 项条件满足 / gates hold")
    return EXIT_OK


def cmd_milestone(args: argparse.Namespace) -> int:
    from multiplan.core import workflow

    project = _open(args)
    rec = workflow.record_milestone(project, args.kind, date=args.date, doc_no=args.doc_no,
                                    actor=args.actor)
    if args.json:
        _print_json(rec)
    else:
        print(f"已登记 / recorded: {rec['kind']}（{rec['kind_en']}） {rec['date']} "
              f"{rec['doc_no']}（第 {rec['version']} 版 / version {rec['version']}）")
    return EXIT_OK


def cmd_comments_import(args: argparse.Namespace) -> int:
    from multiplan.core.comments import import_comments

    project = _open(args)
    new = import_comments(project, args.file, actor=args.actor)
    rows = [{k: v for k, v in r.items() if k != "geometry"}
            for r in new.to_dict("records")]
    linked = int((new["n_conflicts"] > 0).sum())
    if args.json:
        _print_json({"imported": len(new), "linked": linked, "comments": rows})
        return EXIT_OK
    print(f"已导入 / imported: {len(new)} 条公众意见 / comments "
          f"({new['comment_id'].iloc[0]}–{new['comment_id'].iloc[-1]})，"
          f"{linked} 条关联到差异图斑 / linked to conflicts")
    for r in rows:
        link = r["conflict_ids"] or "-"
        print(f"  {r['comment_id']}  第 {r['source_line']} 行 / line {r['source_line']}  "
              f"→ {link}  {str(r['text'])[:40]}")
    return EXIT_OK


def cmd_comments_list(args: argparse.Namespace) -> int:
    from multiplan.core.comments import read_comments

    project = _open(args)
    got = read_comments(project)
    rows = [{k: v for k, v in r.items() if k != "geometry"} for r in got.to_dict("records")]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    print(f"公众意见 / public comments: {len(rows)}")
    for r in rows:
        print(f"  {r['comment_id']}  ({r['x']:.1f}, {r['y']:.1f})  → "
              f"{r['conflict_ids'] or '-'}  {str(r['text'])[:40]}")
    return EXIT_OK


def cmd_versions(args: argparse.Namespace) -> int:
    from multiplan.core import workflow
    from multiplan.core.versions import compare_versions, list_versions, verify_snapshot

    project = _open(args)
    if args.compare:
        if not args.layer:
            from multiplan.core.errors import MultiplanError

            class UsageError(MultiplanError):
                exit_code = 2

            raise UsageError("usage.layer", "--compare 须同时给出 --layer",
                             "--compare needs --layer")
        v_old, v_new = args.compare
        new = None if v_new.lower() in ("current", "当前") else _int(v_new)
        df = compare_versions(project, args.layer, _int(v_old), new)
        summary = df.attrs["summary"]
        if args.json:
            _print_json({"summary": summary, "changes": json.loads(df.to_json(
                orient="records", force_ascii=False))})
            return EXIT_OK
        print(f"图层 / layer {args.layer}: {summary['old']} → {summary['new']}  "
              f"({summary['old_count']} → {summary['new_count']} 个图斑 / parcels)")
        for kind, zh in (("added", "新增"), ("removed", "删除"), ("changed", "修改")):
            s = summary[kind]
            print(f"  {zh} / {kind}: {s['count']}，面积变化 / area change "
                  f"{s['area_m2']:,.2f} m² ({s['area_m2'] / 10_000:,.4f} 公顷 / ha)")
        print(f"  合计面积变化 / total area change: {summary['area_delta_m2']:,.2f} m² "
              f"({summary['area_delta_ha']:,.4f} 公顷 / ha)")
        for r in df.head(args.limit).itertuples():
            what = "几何" if r.geometry_changed else ""
            if r.attributes_changed:
                what += ("+" if what else "") + "属性:" + r.attributes_changed
            print(f"    fid {r.fid}  {r.change_zh}/{r.change}  {what}  "
                  f"Δ {r.area_delta_m2:,.2f} m²")
        if len(df) > args.limit:
            print(f"    … 另有 {len(df) - args.limit} 条 / {len(df) - args.limit} more "
                  "(--json 列出全部 / lists all)")
        return EXIT_OK
    if args.verify is not None:
        chk = verify_snapshot(project, args.verify)
        code = EXIT_OK if chk.ok else EXIT_GATE
        if args.json:
            _print_json({**chk.to_dict(), "exit_code": code})
            return code
        print(f"第 {chk.version} 版公布快照校验 / snapshot check of version {chk.version}: "
              + ("完整 / intact" if chk.ok else f"{len(chk.problems)} 处不符 / problem(s)"))
        for p in chk.problems:
            print(f"  - {p['zh']}")
            print(f"    {p['en']}")
        return code
    rows = list_versions(project)
    cur = {"version": workflow.plan_version(project), "state": workflow.current_state(project)}
    if args.json:
        _print_json({"current": cur, "published": [
            {k: v for k, v in r.items() if k != "tables"} | {"tables": len(r["tables"])}
            for r in rows]})
        return EXIT_OK
    print(f"当前 / current: 第 {cur['version']} 版 / version {cur['version']}，"
          f"{cur['state']}（{workflow.STATE_EN[cur['state']]}）")
    if not rows:
        print("尚无公布版本 / no published version yet")
    for r in rows:
        print(f"  v{r['version']}  公布于 / published {r['published_at']}  {r['path']}  "
              f"{len(r['tables'])} 个表/图层 / tables  SHA-256 {r['content_sha256'][:16]}…")
    return EXIT_OK


def _int(text: str) -> int:
    from multiplan.core.versions import VersionError
    try:
        return int(str(text).lstrip("vV"))
    except ValueError:
        raise VersionError("versions.bad_number", f"版本号 {text!r} 无效",
                           f"invalid version number {text!r}") from None


def _usage(parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2
    return run


def register(sub) -> None:  # type: ignore[no-untyped-def]
    proj = "项目文件夹 / project folder"
    js = "JSON 输出 / machine-readable output"
    s = sub.add_parser("status", help="规划流程状态与下一步的条件 / workflow state and the "
                                      "gates of the next step")
    s.add_argument("project", help=proj)
    s.add_argument("--now", metavar="ISO", help="按此时间计算公示期（仅查看） / evaluate the "
                                                "notice period at this time (status only)")
    s.add_argument("--json", action="store_true", help=js)
    s.set_defaults(func=cmd_status)

    a = sub.add_parser("advance", help="进入下一流程状态（或退回编制中） / move to the next "
                                       "state (or back to drafting); exit 6 if a gate fails")
    a.add_argument("project", help=proj)
    a.add_argument("--to", required=True, metavar="STATE",
                   help="目标状态，中文或英文 / target state, Chinese or English: "
                        "编制中|drafting, 已评价|assessed, 公示中|'public notice', "
                        "评议通过|'committee approved', 人大审议通过|\"people's congress "
                        "approved\", 已备案|filed, 已公布|published")
    a.add_argument("--actor", metavar="NAME", help="操作人 / who does it")
    a.add_argument("--force-note", metavar="TEXT",
                   help="书面理由：放行未满足的双评价/质检条件（不能用于公布） / written "
                        "reason to pass a failing assessment or 质检 gate (never into "
                        "published)")
    a.add_argument("--json", action="store_true", help=js)
    a.set_defaults(func=cmd_advance)

    m = sub.add_parser("milestone", help="登记人大审议或备案记录 / record the people's "
                                         "congress review or the filing")
    m.add_argument("project", help=proj)
    m.add_argument("kind", help="人大审议|congress 或 / or 备案|filing")
    m.add_argument("--date", required=True, help="日期 YYYY-MM-DD / date")
    m.add_argument("--doc-no", required=True, help="文号 / document number")
    m.add_argument("--actor", metavar="NAME", help="登记人 / who records it")
    m.add_argument("--json", action="store_true", help=js)
    m.set_defaults(func=cmd_milestone)

    c = sub.add_parser("comments", help="公众意见（公示期间） / public comments (during "
                                        "public notice)")
    csub = c.add_subparsers(dest="comments_command", metavar="ACTION")
    ci = csub.add_parser("import", help="导入 CSV 意见（UTF-8 或 GBK；x,y 或 lon,lat 或 "
                                        "layer,fid；text） / import a CSV of comments")
    ci.add_argument("project", help=proj)
    ci.add_argument("file", help="CSV 文件 / CSV file")
    ci.add_argument("--actor", metavar="NAME", help="导入人 / who imports")
    ci.add_argument("--json", action="store_true", help=js)
    ci.set_defaults(func=cmd_comments_import)
    cl = csub.add_parser("list", help="列出公众意见 / list the comments")
    cl.add_argument("project", help=proj)
    cl.add_argument("--json", action="store_true", help=js)
    cl.set_defaults(func=cmd_comments_list)
    c.set_defaults(func=_usage(c))

    v = sub.add_parser("versions", help="规划版本：列表、快照校验、版本比较 / plan versions: "
                                        "list, verify a snapshot, compare")
    v.add_argument("project", help=proj)
    v.add_argument("--compare", nargs=2, metavar=("V1", "V2"),
                   help="比较两个版本（V2 可为 current） / compare two versions (V2 may be "
                        "'current')")
    v.add_argument("--layer", metavar="LAYER", help="比较的图层 / layer to compare")
    v.add_argument("--verify", type=int, metavar="V", help="重算第 V 版快照哈希 / recompute "
                                                           "the hashes of version V (exit 6 "
                                                           "on a mismatch)")
    v.add_argument("--limit", type=int, default=20, help="列出的变化条数 / changes listed")
    v.add_argument("--json", action="store_true", help=js)
    v.set_defaults(func=cmd_versions)
