"""`multiplan assess PROJECT [--params FILE] [--json]` on the small synthetic project."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_assessment_support import copy_project, shared_small_project

from multiplan.cli import main


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return shared_small_project(tmp_path_factory)


def test_assess_json_tables_charts_and_stored_params(base, tmp_path, capsys) -> None:
    project = copy_project(base, tmp_path / "p")
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"capacity": {
        "water_by_sector_m3": {"agriculture": 3.0e6, "urban": 2.0e6},
        "irrigation_quota_m3_per_mu": 400, "urban_water_m3_per_capita": 100,
        "urban_land_m2_per_capita": 100}}), encoding="utf-8")
    rc = main(["assess", str(project.folder), "--params", str(params), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["gate"]["current"] is True and out["params_version"] == "assessment_2019/1.0"
    assert out["capacity"]["current"]["computed"] is True
    assert {f["conflict_type"] for f in out["findings"]} == {"A1", "A2"}
    assert isinstance(out["stats_township"], int) and out["area_method"] == "planar"
    files = {k: Path(v) for k, v in out["files"].items()}
    for key in ("stats_township_csv", "stats_zone_csv", "capacity_csv", "findings_csv", "xlsx",
                "png_agri_suitability", "png_eco_importance", "png_urban_suitability",
                "png_slope"):
        assert files[key].is_file() and files[key].stat().st_size > 0, key
    assert files["png_slope"].parent == project.folder / "exports" / "assessment"
    xl = pd.ExcelFile(files["xlsx"])
    assert xl.sheet_names == ["运行信息", "乡镇统计", "规划分区统计", "承载规模", "规划冲突", "说明"]
    tw = pd.read_csv(files["stats_township_csv"], encoding="utf-8-sig")
    assert {"乡镇", "评价结果", "类别", "面积（公顷）"} <= set(tw.columns)
    assert "西镇" in set(tw["乡镇"])
    cap = pd.read_csv(files["capacity_csv"], encoding="utf-8-sig")
    assert "可承载耕地规模（公顷）" in cap.columns and "全县" in set(cap["评价单元"])
    # the overrides are stored in the project, so the gate compares against them
    from multiplan.core.project import Project

    stored = Project.open(project.folder).setting("assessment_params")
    assert stored["capacity"]["irrigation_quota_m3_per_mu"] == 400


def test_assess_text_output(base, tmp_path, capsys) -> None:
    project = copy_project(base, tmp_path / "p")
    rc = main(["assess", str(project.folder), "--no-charts", "--out", str(tmp_path / "o")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "双评价完成" in text and "生态保护重要性" in text and "评价闸门" in text
    assert "三类：适宜 / 一般适宜 / 不适宜" in text  # which class scheme was used
    assert "承载规模的水资源约束未计算" in text  # no capacity parameters in this project
    assert (tmp_path / "o" / "双评价_统计.xlsx").is_file()
    assert not list((tmp_path / "o").glob("*.png"))


def test_assess_errors(base, tmp_path, capsys) -> None:
    assert main(["assess", str(tmp_path / "nowhere"), "--json"]) == 4
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "project.not_found"
    project = copy_project(base, tmp_path / "p")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"classes": {"scheme": "four"}}), encoding="utf-8")
    assert main(["assess", str(project.folder), "--params", str(bad), "--json"]) == 5
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["code"] == "assessment.params" and "classes.scheme" in err["en"]
    assert project.setting("assessment_params") is None  # refused: nothing stored
    project.remove_layer("DEM")
    assert main(["assess", str(project.folder)]) == 4
    assert "缺少评价因子" in capsys.readouterr().err
