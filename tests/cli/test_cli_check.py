"""``multiplan check``: the pass/fail table, --only, --json, --targets, the HTML and Markdown
reports (with the 三生 chart and per-check timings), exit codes (6 when a blocking check
fails), and the sample county's seeded problems through the command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from multiplan.cli import EXIT_CHECK_FAILED, main
from multiplan.core.classification import unify
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"


def _layer(project: Project, name: str, role: str, boxes: list, codes: list | None = None,
           extra: dict | None = None, name_field: str | None = None) -> None:
    data = dict(extra or {})
    if codes is not None:
        data["DLBM"] = codes
        u = unify(pd.Series(codes, dtype=object), "ydyh2023")
        for c in u.columns:
            data[c] = u[c].to_numpy()
    geoms = [shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes]
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=project.epsg)
    project.write_vector_layer(gdf, LayerRecord(
        name=name, kind="vector", level="county", role=role, geometry_type="MultiPolygon",
        scheme="ydyh2023" if codes else None, code_field="DLBM" if codes else None,
        name_field=name_field))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A 1 km² county, a plan tiling it, control lines; the plan puts 0701 (40 × 100 m) into
    the red line."""
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    _layer(p, "行政区", "admin_boundary", [(0, 0, 1000, 1000)])
    _layer(p, "乡镇", "township", [(0, 0, 1000, 1000)], extra={"XZQMC": ["城关镇"]},
           name_field="XZQMC")
    _layer(p, "规划", "land_use_plan", [(0, 0, 100, 100), (100, 0, 1000, 100),
                                       (0, 100, 1000, 1000)], ["0701", "0101", "0301"])
    _layer(p, "红线", "eco_redline", [(60, 500, 200, 600), (60, 0, 100, 100)])
    _layer(p, "农田", "basic_farmland", [(300, 0, 400, 100)])
    _layer(p, "边界", "urban_boundary", [(0, 0, 50, 50)], extra={"KFBJLX": ["集中建设区"]})
    return p.folder


def test_table_exit_code_and_html_report(small: Path, capsys):
    code = main(["check", str(small)])
    out = capsys.readouterr().out
    assert code == EXIT_CHECK_FAILED == 6
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "未通过 fail" in lines["rl_construction_eco"] and "4,000.0" in lines["rl_construction_eco"]
    assert "通过 pass" in lines["overlaps"] and "通过 pass" in lines["gaps"]
    verdict = next(ln for ln in out.splitlines() if ln.startswith("结论 / verdict"))
    # the plan layer has no registered name field: a required field is missing too
    assert verdict.endswith("blocking checks: required_layers, rl_construction_eco")
    report = small / "exports" / "check" / "check_report.html"
    assert report.is_file() and f"报告 / report: {report}" in out
    html = report.read_text(encoding="utf-8")
    for text in ("三生空间统计", "data:image/png;base64,", "用时 s", "CPU s", "rl_construction_eco",
                 "sansheng-default/1.0", "qa_checks/1.0", "约束性指标", "耕地占补平衡"):
        assert text in html, text
    assert (small / "exports" / "check" / "check_report_sansheng.png").stat().st_size > 10_000


def test_only_json_and_markdown(small: Path, tmp_path: Path, capsys):
    md = tmp_path / "r.md"
    code = main(["check", str(small), "--only", "gaps,overlaps", "fragments", "sansheng",
                 "--json", "--report", str(md)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["exit_code"] == 0 and out["passed"] is True
    assert [c["id"] for c in out["checks"]] == ["overlaps", "gaps", "fragments", "sansheng"]
    assert all(c["seconds"] >= 0 and "cpu_seconds" in c for c in out["checks"])
    assert out["report"] == str(md) and out["versions"]["sansheng"] == "sansheng-default/1.0"
    text = md.read_text(encoding="utf-8")
    assert "| 检查项 id |" in text and "![三生空间（图）]" not in text
    assert "![三生空间](r_sansheng.png)" in text and (tmp_path / "r_sansheng.png").is_file()


def test_targets_csv_and_no_write(small: Path, tmp_path: Path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("指标,目标值,单位\n耕地保有量,20,公顷\n", encoding="utf-8-sig")
    before = Project.open(small).snapshot_state()
    code = main(["check", str(small), "--only", "indicators", "--targets", str(csv),
                 "--no-write", "--no-report", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == EXIT_CHECK_FAILED  # the plan keeps 9 ha of 耕地, 20 ha were handed down
    msg = out["checks"][0]["findings"][0]["message_zh"]
    assert msg == "耕地保有量：规划 9.00 公顷，低于下达指标 20.00 公顷，缺口 11.00 公顷"
    after = Project.open(small)
    assert after.setting("indicator_targets") == {"cultivated_land": 20.0}
    state = after.snapshot_state()  # --no-write: only the settings changed
    assert state["tables"] == before["tables"]


def test_usage_errors(small: Path, capsys):
    assert main(["check", str(small), "--only", "nope"]) == 2
    assert "未知的检查项：nope" in capsys.readouterr().err
    assert main(["check"]) == 2
    assert main(["check", "--list"]) == 0
    assert "rl_urban_eco" in capsys.readouterr().out


def test_sample_seeded_problems_via_subprocess(tmp_path: Path):
    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("sample project not built")
    dst = tmp_path / "changxing"
    shutil.copytree(SAMPLE, dst)
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-m", "multiplan", "check", str(dst), "--only",
                           "rl_construction_eco", "rl_construction_farmland", "rl_urban_eco",
                           "--json", "--findings", "5"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 6, proc.stderr
    out = json.loads(proc.stdout)
    assert out["blocking_failures"] == ["rl_construction_eco", "rl_construction_farmland"]
    seeds = json.loads((SAMPLE / "seeded_conflicts.json").read_text(encoding="utf-8"))
    by = {c["id"]: c for c in out["checks"]}
    for ctype, cid, rule in (("C5", "rl_construction_eco", "生态保护红线内不得安排建设用地"),
                             ("C6", "rl_construction_farmland", "规划建设用地不得占用永久基本农田")):
        found = by[cid]["findings"]
        assert len(found) == 2 and all(f["message_zh"].endswith(rule) for f in found)
        seeded = sorted(s["area_m2"] for s in seeds["conflicts"] if s["type"] == ctype)
        assert sorted(round(f["area_m2"], 2) for f in found) == pytest.approx(seeded, abs=0.5)
    assert by["rl_urban_eco"]["status"] == "pass"
