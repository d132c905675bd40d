"""``multiplan conflicts``: pair and --all modes, JSON, exports, exit codes.

The small cases use axis-aligned boxes whose areas are computed by hand; the --all run works
on a copy of the sample county (the committed sample is never modified).
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

from multiplan.cli import main
from multiplan.core.classification import unify
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project

X0, Y0 = 500_000.0, 3_430_000.0


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "multiplan", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def _layer(project: Project, name: str, role: str, boxes: list, codes: list | None,
           scheme: str = "ydyh2023") -> None:
    data = {}
    if codes is not None:
        data["DLBM"] = codes
        u = unify(pd.Series(codes), scheme)
        for c in u.columns:
            data[c] = u[c].to_numpy()
    geoms = [shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes]
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=project.epsg)
    project.write_vector_layer(gdf, LayerRecord(
        name=name, kind="vector", level="county", role=role, geometry_type="MultiPolygon",
        scheme=scheme if codes else None, code_field="DLBM" if codes else None))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """土规 0701 (城镇住宅) on [0,100]²; 红线 on [60,200]×[0,100] → one C5 piece of
    40 × 100 = 4000 m² = 0.4 公顷 = 6 亩."""
    p = Project.create(tmp_path / "p", county="测试县", crs=4549)
    _layer(p, "土规", "land_use_plan", [(0, 0, 100, 100)], ["0701"], "gbt21010_2017")
    _layer(p, "红线", "eco_redline", [(60, 0, 200, 100)], None)
    return p.folder


def test_pair_json_hand_computed(small: Path, capsys):
    rc = main(["conflicts", str(small), "--a", "土规", "--b", "红线", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["rule_version"] == "conflict_rules/1.0" and out["mode"] == "pair"
    run = out["runs"][0]
    assert (run["layer_a"], run["layer_b"], run["pieces"], run["conflicts"]) == (
        "土规", "红线", 1, 1)
    assert run["conflict_area_ha"] == pytest.approx(0.4)
    assert run["by_type"]["C5"]["count"] == 1
    assert out["total"]["conflicts"] == 1
    reg = gpd.read_file(small / "plan.gpkg", layer="mp_conflicts")
    assert reg["area_mu"].iloc[0] == pytest.approx(6.0)


def test_pair_text_output_prints_rule_version(small: Path, tmp_path: Path, capsys):
    rc = main(["conflicts", str(small), "--a", "土规", "--b", "红线", "--export",
               str(tmp_path / "out")])
    text = capsys.readouterr().out
    assert rc == 0
    assert "conflict_rules/1.0" in text and "C5" in text and "0.40" in text
    assert (tmp_path / "out" / "conflict_register.csv").is_file()
    assert (tmp_path / "out" / "conflict_register.xlsx").is_file()
    csv = pd.read_csv(tmp_path / "out" / "conflict_register.csv", encoding="utf-8-sig")
    assert csv["conflict_type"].tolist() == ["C5"]
    # without a selection the stored register is summarised, nothing is recomputed
    rc = main(["conflicts", str(small), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["mode"] == "stored" and out["total"]["conflicts"] == 1


@pytest.mark.parametrize("args", [["--a", "土规"], ["--all", "--a", "土规", "--b", "红线"]])
def test_usage_errors(small: Path, args, capsys):
    rc = main(["conflicts", str(small), *args, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 2 and out["error"]["code"].startswith("usage.")
    assert out["error"]["zh"] and out["error"]["en"]


def test_unknown_layer_and_missing_project(small: Path, tmp_path: Path, capsys):
    rc = main(["conflicts", str(small), "--a", "土规", "--b", "不存在", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 4 and out["error"]["code"] == "layer.not_found"
    rc = main(["conflicts", str(tmp_path / "nowhere"), "--all"])
    assert rc == 4


def test_help_lists_conflicts():
    r = _run("conflicts", "--help")
    assert r.returncode == 0
    for word in ("--a", "--b", "--all", "--json", "--export"):
        assert word in r.stdout


def test_all_json_on_a_copy_of_the_sample(repo_root: Path, tmp_path: Path):
    sample = repo_root / "sample_data" / "changxing"
    if not (sample / "plan.gpkg").is_file():
        pytest.skip("the sample county project is not built")
    copy = tmp_path / "changxing"
    shutil.copytree(sample, copy)
    r = _run("conflicts", str(copy), "--all", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mode"] == "all" and out["rule_version"] == "conflict_rules/1.0"
    pairs = {(it["layer_a"], it["layer_b"]) for it in out["runs"]}
    assert ("土地利用规划", "城市总体规划") in pairs
    assert len(pairs) >= 10
    types = set()
    for it in out["runs"]:
        types |= set(it["by_type"])
    assert {"C2", "C3", "C5", "C6", "C7"} <= types
    assert out["total"]["conflicts"] >= 11
    assert out["total"]["pieces"] == sum(it["pieces"] for it in out["runs"])
    assert out["exports"] is None
    # the committed sample was not touched
    assert not (sample / "exports" / "conflict_register.csv").exists()
    import sqlite3
    with sqlite3.connect(sample / "plan.gpkg") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "mp_conflicts" not in tables


def test_stored_mode_lists_plan_check_entries_per_pair(small: Path, capsys):
    """Rows of another origin (the 双评价 plan check, ids AS-…) are listed per layer pair in
    the stored mode, not only counted in the total."""
    from multiplan.core import conflicts as cf

    assert main(["conflicts", str(small), "--a", "土规", "--b", "红线", "--json"]) == 0
    capsys.readouterr()
    p = Project.open(small)
    piece = shapely.box(X0 + 10, Y0 + 10, X0 + 30, Y0 + 20)  # 200 m²
    frame = gpd.GeoDataFrame(
        {"conflict_id": ["AS-test-1"], "conflict_type": ["A1"], "severity": ["冲突"],
         "layer_a": ["土规"], "fid_a": [1], "layer_b": ["城镇建设适宜性"],
         "area_m2": [piece.area]}, geometry=[piece], crs=p.epsg)
    cf.replace_external_entries(p, "AS", frame, rule_version="assessment_test/1",
                                run_id="t1")
    assert main(["conflicts", str(small), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "stored"
    by_pair = {(r["layer_a"], r["layer_b"]): r for r in out["runs"]}
    assert set(by_pair) == {("土规", "红线"), ("土规", "城镇建设适宜性")}
    ext = by_pair[("土规", "城镇建设适宜性")]
    assert ext["source"] == "AS" and ext["pieces"] == 1
    assert "source" not in by_pair[("土规", "红线")]
    assert out["total"]["pieces"] == 2
    assert main(["conflicts", str(small)]) == 0
    text = capsys.readouterr().out
    assert "[土规 × 城镇建设适宜性]（双评价核查 plan check）" in text
