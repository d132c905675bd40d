"""``multiplan audit verify`` and ``multiplan audit log``: exit 0 on an intact chain, 6 with
every problem named in Chinese and English after tampering done with plain sqlite3, JSON
output, read-only (the file's bytes do not change), and the log listing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from multiplan.cli import main
from multiplan.core.project import Project

V2_PROJECT = Path(__file__).resolve().parents[1] / "data" / "projects" / "schema_v2"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sql(gpkg: Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(gpkg)) as conn, conn:
        for st in statements:
            conn.execute(st)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli_audit") / "p"
    p = Project.create(folder, county="测试县", crs=4549, user="王工")
    for i in range(4):  # seq 2–5
        p.set_settings(note=f"第 {i} 次修改")
    p.set_roles(reviewers=["李委员"])  # seq 6
    return folder


@pytest.fixture
def folder(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template, tmp_path / "p")
    return tmp_path / "p"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, object]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_an_intact_project_verifies(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sha(folder / "plan.gpkg")
    code, out = run_json(capsys, "audit", "verify", str(folder))
    assert code == 0 and out["ok"] is True and out["exit_code"] == 0
    assert out["entries"] == 6 and out["problems"] == []
    with contextlib.closing(sqlite3.connect(folder / "plan.gpkg")) as conn:
        last = conn.execute("SELECT seq, hash FROM mp_audit ORDER BY seq DESC LIMIT 1"
                            ).fetchone()
    assert out["head"] == {"seq": last[0], "hash": last[1]}
    assert main(["audit", "verify", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "完整" in text and "intact" in text and last[1] in text
    assert sha(folder / "plan.gpkg") == before


@pytest.mark.parametrize("statements, expected", [
    (["UPDATE mp_audit SET detail = '{\"note\":\"改过\"}' WHERE seq = 3"], [("changed", 3)]),
    (["DELETE FROM mp_audit WHERE seq = 4"], [("deleted", 4)]),
    (["DELETE FROM mp_audit WHERE seq = 6"], [("deleted", 6)]),
    (["UPDATE mp_audit SET seq = -1 WHERE seq = 2", "UPDATE mp_audit SET seq = 2 WHERE seq = 5",
      "UPDATE mp_audit SET seq = 5 WHERE seq = -1"],
     [("reordered", 5), ("reordered", 2), ("changed", 2), ("changed", 5),
      ("broken_link", 2), ("broken_link", 3), ("broken_link", 5), ("broken_link", 6)]),
    ([("INSERT INTO mp_audit (seq, time, action, prev_hash, hash) VALUES "
       "(7, '2026-01-01T00:00:00+00:00', 'review.decide', 'x', 'y')")],
     [("changed", 7), ("broken_link", 7), ("inserted", 7)]),
])
def test_each_kind_of_tampering_exits_6_naming_the_entry(
        folder: Path, capsys: pytest.CaptureFixture[str], statements: list[str],
        expected: list[tuple[str, int]]) -> None:
    gpkg = folder / "plan.gpkg"
    sql(gpkg, *statements)
    before = sha(gpkg)
    code, out = run_json(capsys, "audit", "verify", str(folder))
    assert code == 6 and out["ok"] is False and out["exit_code"] == 6
    assert sorted((p["kind"], p["seq"]) for p in out["problems"]) == sorted(expected)
    for p in out["problems"]:
        assert p["zh"] and p["en"]
    # the text output lists each problem in both languages, with its seq
    assert main(["audit", "verify", str(folder)]) == 6
    text = capsys.readouterr().out
    assert "发现" in text and "tampered" in text
    for p in out["problems"]:
        assert p["zh"] in text and p["en"] in text
        assert f"seq {p['seq']}" in text
    assert sha(gpkg) == before


def test_anchor_option(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run_json(capsys, "audit", "verify", str(folder))
    head = out["head"]["hash"]
    assert main(["audit", "verify", str(folder), "--anchor", head]) == 0
    capsys.readouterr()
    code, out = run_json(capsys, "audit", "verify", str(folder), "--anchor", "ab" * 32)
    assert code == 6 and [p["kind"] for p in out["problems"]] == ["anchor"]


def test_log_lists_the_last_entries(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "audit", "log", str(folder), "--limit", "2")
    assert code == 0
    assert [(e["seq"], e["action"], e["actor"]) for e in out] == [
        (5, "settings.update", "王工"), (6, "roles.set", "王工")]
    assert out[0]["detail"] == {"note": "第 3 次修改"}
    assert main(["audit", "log", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 6
    assert "project.create" in lines[1] and "测试县" in lines[1]
    assert "roles.set" in lines[-1]
    assert main(["audit", "log", str(folder), "--limit", "-1"]) == 2


def test_errors_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", str(tmp_path)]) == 4  # not a project
    err = capsys.readouterr().err
    assert "plan.gpkg" in err and "not a multiplan project" in err
    shutil.copytree(V2_PROJECT, tmp_path / "v2")
    before = sha(tmp_path / "v2" / "plan.gpkg")
    code, out = run_json(capsys, "audit", "verify", str(tmp_path / "v2"))
    assert code == 4 and out["error"]["code"] == "audit.no_chain"
    assert sha(tmp_path / "v2" / "plan.gpkg") == before  # verify does not migrate
    assert main(["audit"]) == 2


def test_the_installed_command(folder: Path) -> None:
    sql(folder / "plan.gpkg", "DELETE FROM mp_audit WHERE seq = 3")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    r = subprocess.run([sys.executable, "-m", "multiplan", "audit", "verify", str(folder)],
                       check=False, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 6, r.stderr
    assert "缺少条目 seq 3" in r.stdout and "entry seq 3 missing" in r.stdout
