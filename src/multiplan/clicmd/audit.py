"""``multiplan audit verify|log PROJECT``: check the audit hash chain, list entries.

Both read the project without writing to it (no migration either): an auditor's check
must not change what it checks. Exit codes: 0 intact · 6 tampered (each problem printed
in Chinese and English) · 4 not a project / no chain yet · 2 usage.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TAMPERED = 6


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def cmd_verify(args: argparse.Namespace) -> int:
    from multiplan.core.audit import verify

    report = verify(args.project, anchor=args.anchor)
    code = EXIT_OK if report.ok else EXIT_TAMPERED
    if args.json:
        _print_json({**report.to_dict(), "exit_code": code})
        return code
    print(f"审计链校验 / audit chain verification: {report.path}")
    print(f"  条目 / entries: {report.entries}")
    print(f"  链头 / head: seq {report.head_seq}  {report.head_hash}")
    if args.anchor:
        print(f"  外部锚点 / anchor: {args.anchor}")
    if report.ok:
        print("结论 / verdict: 完整，未发现篡改 / intact, no tampering found")
        print("  （记下链头哈希，日后可用 --anchor 核对整体改写 / keep the head hash; "
              "--anchor checks it later against a wholesale rewrite）")
        return code
    print(f"结论 / verdict: 发现 {len(report.problems)} 处问题，审计日志被改动 / "
          f"{len(report.problems)} problem(s): the audit log was tampered with")
    for p in report.problems:
        print(f"  - {p.text('zh')}")
        print(f"    {p.text('en')}")
    return code


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    return text if len(text) <= width else text[:width - 1] + "…"


def cmd_log(args: argparse.Namespace) -> int:
    from multiplan.core.audit import read_log

    if args.limit is not None and args.limit < 0:
        from multiplan.core.errors import MultiplanError

        class UsageError(MultiplanError):
            exit_code = EXIT_USAGE

        raise UsageError("usage.limit", "--limit 须为非负整数", "--limit must be 0 or more")
    entries = read_log(args.project, limit=args.limit)
    if args.json:
        _print_json(entries)
        return EXIT_OK
    from multiplan.cli import _pad

    print(_pad("seq", 6) + _pad("时间 time", 27) + _pad("操作人 actor", 15)
          + _pad("动作 action", 23) + "对象 target / 详情 detail")
    for e in entries:
        seq = e.get("seq")
        detail = e.get("detail")
        line = (_pad("" if seq is None else seq, 6) + _pad(e.get("time", ""), 27)
                + _pad(e.get("actor") or "-", 15) + _pad(e.get("action", ""), 23)
                + str(e.get("target") or "-"))
        if detail not in (None, {}, []):
            line += "  " + _short(detail)
        print(line)
    return EXIT_OK


def _usage(parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return EXIT_USAGE
    return run


def register(sub) -> None:  # type: ignore[no-untyped-def]
    a = sub.add_parser("audit", help="审计日志：校验哈希链、列出条目 / audit trail: verify the "
                                     "hash chain, list the entries")
    asub = a.add_subparsers(dest="audit_command", metavar="ACTION")
    v = asub.add_parser("verify", help="校验审计哈希链，发现修改、删除、插入、重排 / verify the "
                                       "hash chain: detects changed, deleted, inserted or "
                                       "reordered entries (exit 6 if tampered)")
    v.add_argument("project", help="项目文件夹 / project folder")
    v.add_argument("--anchor", metavar="HASH",
                   help="之前在项目外记下的链头哈希，须仍在链中 / a head hash recorded outside "
                        "the project earlier; it must still be in the chain")
    v.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    v.set_defaults(func=cmd_verify)
    g = asub.add_parser("log", help="列出审计条目 / list the audit entries")
    g.add_argument("project", help="项目文件夹 / project folder")
    g.add_argument("--limit", type=int, metavar="N", help="只列出最后 N 条 / only the last N")
    g.add_argument("--json", action="store_true", help="JSON 输出 / machine-readable output")
    g.set_defaults(func=cmd_log)
    a.set_defaults(func=_usage(a))
