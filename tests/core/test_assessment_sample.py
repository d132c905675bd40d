"""The 长兴县 sample county, assessed at a coarse 120 m grid on a temporary copy (the
committed sample is never modified)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "changxing"
FACTORS = ("高程_30m", "多年平均降水量", "月平均气温", "月平均相对湿度", "用水总量控制指标模数",
           "土壤粉砂含量", "地质灾害危险性", "水源涵养重要性", "水土流失脆弱性", "县城驻地")


@pytest.fixture(scope="module")
def assessed(tmp_path_factory):
    from multiplan.core.project import Project

    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("the sample project is not built (python sample_data/build_sample.py)")
    have = {r.name for r in Project.open(SAMPLE).layers()}
    if not set(FACTORS) <= have:
        pytest.skip("the sample project predates its 双评价 inputs; rebuild it")
    dst = tmp_path_factory.mktemp("sample") / "changxing"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("exports"))
    project = Project.open(dst)
    project.set_settings(assessment_cell_size_m=120.0)
    from multiplan.core.assessment import run_assessment

    return project, run_assessment(project)


def test_sample_inputs_are_labelled_synthetic() -> None:
    from multiplan.core.project import Project

    if not (SAMPLE / "plan.gpkg").is_file():
        pytest.skip("the sample project is not built")
    recs = {r.name: r for r in Project.open(SAMPLE).layers()}
    if not set(FACTORS) <= set(recs):
        pytest.skip("the sample project predates its 双评价 inputs; rebuild it")
    for name in FACTORS[1:-1]:
        assert recs[name].synthetic and recs[name].role == "assessment_factor", name
    assert recs["县城驻地"].role == "reference"
    with rasterio.open(SAMPLE / recs["月平均气温"].raster_path) as ds:
        assert ds.count == 12 and ds.tags()["SYNTHETIC"] == "yes"
        t = ds.read()
    assert 2 < np.nanmean(t[0]) < 6 and 26 < np.nanmean(t[6]) < 31  # Jan / Jul, °C
    with rasterio.open(SAMPLE / recs["多年平均降水量"].raster_path) as ds:
        pr = ds.read(1)
    assert 1200 < np.nanmean(pr) < 1450  # humid subtropical, ≈ 1 300 mm/yr
    assert Project.open(SAMPLE).setting("assessment_params")["capacity"][
        "irrigation_quota_m3_per_mu"] > 0


def test_sample_assessment_at_120_m(assessed) -> None:
    _, run = assessed
    assert run.grid.cell == 120.0
    assert 380 < run.grid.width < 480 and 380 < run.grid.height < 470
    assert not any(n["code"].startswith("factor.missing.dem") for n in run.notes)
    for key, o in run.outputs.items():
        # every result leans on a synthetic input, except travel time to the (real) seat
        assert o["synthetic"] is (key != "location_grade"), key
    st = run.stats_township
    towns = set(st["unit"]) - {"（乡镇界外）"}
    assert len(towns) == 15
    area = st[st["result"] == "eco_importance"].groupby("code")["area_ha"].sum()
    total = area.sum()
    assert 130_000 < total < 150_000  # 长兴县 ≈ 1 430 km²
    assert 0.03 < area.get(1, 0) / total < 0.35  # some 极重要 in the western hills
    agri = st[st["result"] == "agri_suitability"].groupby("code")["area_ha"].sum()
    assert agri.get(1, 0) > agri.get(3, 0)  # the lake plain is mostly suitable
    cap = run.capacity["current"]
    assert cap["computed"] and len(cap["rows"]) >= 16
    county = cap["rows"][-1]
    assert county["unit"] == "全县" and county["farmland_limited_by"] in ("land", "water")
    assert isinstance(county["farmland_overload"], bool)
    assert "water_saving" in run.capacity["scenarios"]
    assert {f["conflict_type"] for f in run.findings} >= {"A2"}  # construction in 极重要 areas


def test_sample_gate(assessed) -> None:
    from multiplan.core.assessment import assessment_gate

    project, run = assessed
    g = assessment_gate(project)
    assert g.current and g.run_id == run.run_id
    project.set_settings(assessment_cell_size_m=90.0)
    assert assessment_gate(project).code == "assessment.cell_changed"
