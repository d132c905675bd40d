"""``multiplan status|advance|milestone|comments|versions``: text and JSON output, exit codes
(6 for a failing gate or a refused step, 3 for a refused comment file), state names in
Chinese or English, and one real subprocess run of the installed entry point."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

from test_assessment_support import X0, Y0
from test_qa import add_layer
from test_workflow import (
    T0,
    _halves,
    decide_all,
    shared_gated_base,
    to_notice,
    to_published,
)

from multiplan.cli import main
from multiplan.core import workflow
from multiplan.core.project import Project


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return shared_gated_base(tmp_path_factory)


@pytest.fixture
def folder(base: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "p"
    shutil.copytree(base, dst)
    return dst


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_text_and_json(capsys, folder: Path):
    code, out, _ = run(capsys, "status", str(folder))
    assert code == 0
    assert "状态 / state: 编制中（drafting）" in out and "version 1" in out
    assert "下一步 / next: 已评价（assessed）" in out
    assert "中发〔2019〕18号" in out and "✓ 满足 [assessment_current]" in out
    code, out, _ = run(capsys, "status", str(folder), "--json")
    d = json.loads(out)
    assert code == 0 and d["state"] == "编制中" and d["next_state"] == "已评价"
    assert d["ready"] is True and d["gates"][0]["key"] == "assessment_current"


def test_advance_names_and_exit_codes(capsys, folder: Path):
    code, out, err = run(capsys, "advance", str(folder), "--to", "公示中")
    assert code == 6 and "下一步只能是“已评价”" in err
    code, out, _ = run(capsys, "advance", str(folder), "--to", "assessed", "--actor", "王规划")
    assert code == 0 and "已进入 / now in: 已评价（assessed）" in out
    with sqlite3.connect(folder / "plan.gpkg") as c:
        assert c.execute("SELECT state, actor FROM mp_workflow").fetchall() == [
            ("已评价", "王规划")]
    # the open 冲突 row of the register blocks public notice; every failing gate is printed
    code, out, _ = run(capsys, "advance", str(folder), "--to", "public notice")
    assert code == 6
    assert "✗ 未满足 [no_open_conflicts]" in out and "条冲突级差异图斑未决" in out
    assert "✓ 满足 [qa_clean]" in out  # the holding ones are listed apart
    code, out, _ = run(capsys, "advance", str(folder), "--to", "公示中", "--json")
    d = json.loads(out)
    assert code == 6 and d["exit_code"] == 6
    assert [g["key"] for g in d["failing"]] == ["no_open_conflicts"]
    assert d["failing"][0]["detail"]["conflict_ids"]
    code, _, err = run(capsys, "advance", str(folder), "--to", "approved-ish")
    assert code == 6 and "未知的状态" in err


def test_status_now_for_the_notice_period(capsys, folder: Path):
    to_notice(Project.open(folder), T0)
    day29 = (T0 + timedelta(days=29)).isoformat()
    day30 = (T0 + timedelta(days=30)).isoformat()
    for when, holds in ((day29, False), (day30, True)):
        code, out, _ = run(capsys, "status", str(folder), "--now", when, "--json")
        g = {x["key"]: x for x in json.loads(out)["gates"]}["notice_period"]
        assert code == 0 and g["holds"] is holds
    code, out, _ = run(capsys, "status", str(folder), "--now", day29)
    assert "公示期未满：自 2026-03-01 起仅 29 日，须满 30 日" in out


def test_comments_import_and_list(capsys, folder: Path, tmp_path: Path):
    f = tmp_path / "c.csv"
    f.write_bytes(f"x,y,意见\n{X0 + 100},{Y0 + 100},保留水田\n".encode("gbk"))
    code, _, err = run(capsys, "comments", "import", str(folder), str(f))
    assert code == 6 and "公示中" in err  # still drafting
    to_notice(Project.open(folder), T0)
    code, out, _ = run(capsys, "comments", "import", str(folder), str(f), "--json")
    d = json.loads(out)
    assert code == 0 and d["imported"] == 1 and d["comments"][0]["text"] == "保留水田"
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,text\n1,2,太远\n", encoding="utf-8")
    code, _, err = run(capsys, "comments", "import", str(folder), str(bad))
    assert code == 3 and "第 2 行" in err and "line 2" in err
    code, out, _ = run(capsys, "comments", "list", str(folder))
    assert code == 0 and "PC-0001" in out and "保留水田" in out and "PC-0002" not in out


def test_milestone_versions_verify_and_compare(capsys, folder: Path):
    p = Project.open(folder)
    code, _, err = run(capsys, "milestone", str(folder), "备案", "--date", "2026-04-20",
                       "--doc-no", "x")
    assert code == 6 and "人大审议通过" in err
    later = to_published(p)
    assert workflow.is_published(p)
    code, out, _ = run(capsys, "status", str(folder))
    assert code == 0 and "已公布" in out and "修改将开始新版本" in out
    code, out, _ = run(capsys, "versions", str(folder), "--json")
    d = json.loads(out)
    assert d["current"] == {"version": 1, "state": "已公布"}
    assert [v["version"] for v in d["published"]] == [1]
    code, out, _ = run(capsys, "versions", str(folder), "--verify", "1")
    assert code == 0 and "完整 / intact" in out
    # edit → version 2; compare v1 with the current plan
    west, east = _halves()
    add_layer(p, "国土空间规划", "spatial_plan", [west, east], codes=["0101", "0702"],
              names=["水田", "农村宅基地"], extra={"fid": [1, 2]})
    code, out, _ = run(capsys, "versions", str(folder))
    assert "当前 / current: 第 2 版" in out and "编制中" in out and "v1" in out
    code, out, _ = run(capsys, "versions", str(folder), "--compare", "1", "current",
                       "--layer", "国土空间规划", "--json")
    d = json.loads(out)
    assert code == 0 and d["summary"]["changed"]["count"] == 2
    assert {c["fid"] for c in d["changes"]} == {1, 2}
    code, out, _ = run(capsys, "versions", str(folder), "--compare", "1", "current",
                       "--layer", "国土空间规划")
    assert "修改 / changed: 2" in out and "公顷" in out
    code, _, err = run(capsys, "versions", str(folder), "--compare", "1", "2")
    assert code == 2 and "--layer" in err
    code, _, err = run(capsys, "versions", str(folder), "--compare", "7", "current",
                       "--layer", "国土空间规划")
    assert code == 4 and "第 7 版" in err
    # tamper with the stored copy: verify exits 6 and names the table
    snap = folder / "versions" / "v1.gpkg"
    os.chmod(snap, stat.S_IRUSR | stat.S_IWUSR)
    with sqlite3.connect(snap) as c:
        c.execute("DELETE FROM mp_layers WHERE name = '乡镇界'")
    code, out, _ = run(capsys, "versions", str(folder), "--verify", "1")
    assert code == 6 and "mp_layers" in out
    assert later > T0


def test_installed_entry_point_runs_status(folder: Path):
    decide_all(Project.open(folder))
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "multiplan", "status", str(folder), "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "编制中"
