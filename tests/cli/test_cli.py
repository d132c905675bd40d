"""The command line: commands, JSON output, exit codes, progress bar.

Expected areas are hand computations on axis-aligned boxes, not outputs of multiplan.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from multiplan.cli import ProgressBar, main

X0, Y0 = 500_000.0, 3_430_000.0  # near 120°E, 31°N in EPSG:4549


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "multiplan", *args], check=False,
                          capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def parcels_file(tmp_path: Path) -> Path:
    # 0101 水田 100 m × 200 m = 20 000 m²; 0103 旱地 50 × 40 = 2 000 m²;
    # 0301 乔木林地 300 × 100 = 30 000 m²  → level 1: 01 = 22 000 m², 03 = 30 000 m²
    gdf = gpd.GeoDataFrame(
        {"DLBM": ["0101", "0103", "0301"], "DLMC": ["水田", "旱地", "乔木林地"]},
        geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 200),
                  shapely.box(X0 + 100, Y0, X0 + 150, Y0 + 40),
                  shapely.box(X0 + 200, Y0, X0 + 500, Y0 + 100)],
        crs=4549)
    path = tmp_path / "parcels.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path


def test_help_lists_commands():
    r = _run("--help")
    assert r.returncode == 0
    for cmd in ("new", "import", "info", "gui"):
        assert cmd in r.stdout
    assert "退出码" in r.stdout


def test_unknown_command_is_usage_error():
    r = _run("frobnicate")
    assert r.returncode == 2


def test_new_import_info_json(tmp_path: Path, parcels_file: Path):
    proj = tmp_path / "proj"
    r = _run("new", str(proj), "--county", "测试县", "--crs", "4549", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["crs_epsg"] == 4549 and out["crs_convention"] == "unprefixed"

    r = _run("import", str(proj), str(parcels_file), "--name", "现状", "--role", "current_use",
             "--scheme", "ydyh2023", "--code-field", "DLBM", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["feature_count"] == 3 and rep["scheme"] == "ydyh2023"

    r = _run("info", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["crs"]["epsg"] == 4549
    assert info["area_method"]["id"] == "planar"
    layer = next(it for it in info["layers"] if it["name"] == "现状")
    assert layer["features"] == 3 and layer["role_label"] == "现状"
    by_code = {row["code"]: row for row in layer["area_by_class"]}
    assert by_code["01"]["area_m2"] == pytest.approx(22_000.0, rel=1e-9)
    assert by_code["01"]["area_ha"] == pytest.approx(2.2, rel=1e-9)
    assert by_code["01"]["count"] == 2
    assert by_code["03"]["area_m2"] == pytest.approx(30_000.0, rel=1e-9)
    assert by_code["01"]["name"] == "耕地" and by_code["03"]["name"] == "林地"
    assert layer["area_total_m2"] == pytest.approx(52_000.0, rel=1e-9)


def test_info_text_states_area_method(tmp_path: Path, parcels_file: Path):
    proj = tmp_path / "proj"
    assert main(["new", str(proj), "--county", "测试县", "--crs", "4549"]) == 0
    assert main(["import", str(proj), str(parcels_file), "--name", "现状", "--scheme",
                 "ydyh2023", "--code-field", "DLBM"]) == 0
    r = _run("info", str(proj))
    assert r.returncode == 0
    assert "平面面积" in r.stdout and "planar" in r.stdout
    assert "公顷" in r.stdout and "2.20" in r.stdout  # 01 耕地 = 2.20 公顷


def test_info_ellipsoidal_close_to_planar_near_central_meridian(tmp_path, parcels_file):
    # On the central meridian with scale factor 1 the GK plane is true to scale, so the
    # ellipsoidal area of a small box must agree with the planar one to ~1e-5.
    proj = tmp_path / "proj"
    assert main(["new", str(proj), "--county", "测试县", "--crs", "4549"]) == 0
    assert main(["import", str(proj), str(parcels_file), "--name", "现状", "--scheme",
                 "ydyh2023", "--code-field", "DLBM"]) == 0
    r = _run("info", str(proj), "--area-method", "ellipsoidal", "--json")
    info = json.loads(r.stdout)
    assert info["area_method"]["id"] == "ellipsoidal"
    layer = next(it for it in info["layers"] if it["name"] == "现状")
    assert layer["area_total_m2"] == pytest.approx(52_000.0, rel=1e-4)
    assert layer["area_total_m2"] != 52_000.0  # really computed on the ellipsoid


def test_new_from_boundary_picks_zone(tmp_path: Path, shared_data: Path):
    proj = tmp_path / "cx"
    r = _run("new", str(proj), "--county", "长兴县", "--boundary",
             str(shared_data / "changxing_county_330522.geojson"), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # 长兴县 spans about 119.56–120.11°E: nearest 3° meridian is 120°E → EPSG:4549
    assert out["crs_epsg"] == 4549
    assert out["boundary"]["feature_count"] == 1


def test_refused_import_exit_code_and_messages(tmp_path: Path):
    proj = tmp_path / "proj"
    assert main(["new", str(proj), "--county", "测试县", "--crs", "4549"]) == 0
    before = (proj / "plan.gpkg").read_bytes()
    r = _run("import", str(proj), str(tmp_path / "missing.shp"))
    assert r.returncode == 3
    assert "文件不存在" in r.stderr and "file not found" in r.stderr
    assert "missing.shp" in r.stderr
    assert "Traceback" not in r.stderr
    r = _run("import", str(proj), str(tmp_path / "missing.shp"), "--json")
    assert r.returncode == 3
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "file.not_found" and err["path"].endswith("missing.shp")
    assert (proj / "plan.gpkg").read_bytes() == before


def test_info_on_non_project_exit_4(tmp_path: Path):
    r = _run("info", str(tmp_path))
    assert r.returncode == 4
    assert "plan.gpkg" in r.stderr and "Traceback" not in r.stderr


def test_new_refuses_non_gk_crs(tmp_path: Path):
    r = _run("new", str(tmp_path / "p"), "--county", "测试县", "--crs", "4326")
    assert r.returncode == 4
    assert "4513" in r.stderr  # names the allowed range
    assert not (tmp_path / "p").exists()


def test_progress_bar_draws_and_finishes():
    buf = io.StringIO()
    bar = ProgressBar(enabled=True, stream=buf, width=10)
    for i in range(11):
        bar(i / 10, "步骤")
    text = buf.getvalue()
    assert "100.0%" in text and text.endswith("\n")
    assert "█" * 10 in text


def test_progress_bar_silent_when_not_a_terminal():
    buf = io.StringIO()  # StringIO.isatty() is False
    bar = ProgressBar(stream=buf)
    bar(0.5, "x")
    bar(1.0, "x")
    assert buf.getvalue() == ""
