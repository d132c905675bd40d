"""Conflict detection on the sample county (长兴县): the seeded conflicts are found with their
types at their points, and the real 县界 ∩ 太湖 shoreline mismatch comes out as a boundary
mismatch (sliver), not as a planning conflict.

The committed sample is never modified: it is copied to a temporary folder first. The
seeded conflicts are read from ``seeded_conflicts.json`` (written by the sample builder, not
by conflict detection); the 太湖 area is checked against an independent shapely computation
and the figure measured in shared/data/README.md.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from multiplan.core import conflicts as cf
from multiplan.core.project import Project

SEVERITY = {"C2": "冲突", "C3": "冲突", "C5": "冲突", "C6": "冲突", "C7": "冲突"}


@pytest.fixture(scope="module")
def sample_dir(repo_root: Path) -> Path:
    d = repo_root / "sample_data" / "changxing"
    if not (d / "plan.gpkg").is_file() or not (d / "seeded_conflicts.json").is_file():
        pytest.skip("the sample county project is not built (sample_data/build_sample.py)")
    return d


@pytest.fixture(scope="module")
def seeds(sample_dir: Path) -> list[dict]:
    return json.loads((sample_dir / "seeded_conflicts.json").read_text(encoding="utf-8"))[
        "conflicts"]


@pytest.fixture(scope="module")
def detected(sample_dir: Path, tmp_path_factory) -> tuple[Project, list]:
    folder = tmp_path_factory.mktemp("sample") / "changxing"
    shutil.copytree(sample_dir, folder)
    project = Project.open(folder)
    runs = cf.detect_all(project)
    return project, runs


def _seed_point(seed: dict) -> shapely.Point:
    """The seeded point; if the builder's point fell outside its own seeded polygon (a data
    slip, reported as a warning), the polygon's representative point instead."""
    pt = shapely.Point(seed["x"], seed["y"])
    poly = shapely.from_wkt(seed["wkt"])
    if poly.contains(pt):
        return pt
    warnings.warn(f"seeded_conflicts.json: the point of {seed['id']} lies outside its seeded "
                  f"polygon ({poly.distance(pt):.1f} m); using the polygon's interior point",
                  stacklevel=2)
    return shapely.point_on_surface(poly)


def test_seeded_conflicts_found_with_their_types(detected, seeds):
    project, runs = detected
    reg = cf.read_register(project)
    kinds = {s["type"] for s in seeds}
    assert {"C2", "C3", "C5", "C6", "C7"} <= kinds
    for seed in seeds:
        pair = reg[((reg["layer_a"] == seed["layer_a"]) & (reg["layer_b"] == seed["layer_b"]))
                   | ((reg["layer_a"] == seed["layer_b"]) & (reg["layer_b"] == seed["layer_a"]))]
        assert len(pair), f"{seed['id']}: pair {seed['layer_a']} × {seed['layer_b']} not checked"
        pt = _seed_point(seed)
        hit = pair[shapely.contains(pair.geometry.values, pt)]
        assert len(hit) == 1, f"{seed['id']}: {len(hit)} pieces at the seeded point"
        row = hit.iloc[0]
        assert row.conflict_type == seed["type"], (seed["id"], row.conflict_type, row.rule_id)
        assert row.severity == SEVERITY[seed["type"]]
        assert row.sliver == 0
        assert row.township == seed["township"], seed["id"]
        # the piece is the seeded polygon's overlap with the other layer: never larger
        assert row.area_m2 <= seed["area_m2"] * (1 + 1e-6), seed["id"]
        assert row.area_m2 >= 0.5 * seed["area_m2"], seed["id"]
    assert not any(r.failures for r in runs)


def test_seeded_conflicts_are_headline(detected, seeds):
    project, runs = detected
    total = cf.register_summary(cf.read_register(project))
    assert total["conflicts"] >= len(seeds)
    by_type = {}
    for r in runs:
        for k, v in r.summary()["by_type"].items():
            by_type[k] = by_type.get(k, 0) + v["count"]
    for t in ("C2", "C3", "C5", "C6", "C7"):
        assert by_type.get(t, 0) >= sum(s["type"] == t for s in seeds), t


def test_taihu_shore_mismatch_is_a_sliver_not_a_conflict(detected):
    project, _ = detected
    names = {r.name: r.role for r in project.layers()}
    assert names.get("行政区") == "admin_boundary" and names.get("太湖") == "water"
    run = cf.detect_conflicts(project, "行政区", "太湖")
    reg = run.register
    assert len(reg) >= 1
    assert (reg["conflict_type"] == "B1").all() and (reg["sliver"] == 1).all()
    assert (reg["sliver_reason"] == "boundary").all()
    s = run.summary()
    assert s["conflicts"] == 0 and s["area_ha"] == 0 and s["by_type"] == {}
    # independent check of the area: plain shapely on the stored layers
    county = pyogrio.read_dataframe(project.gpkg, layer="行政区").geometry.values
    lake = pyogrio.read_dataframe(project.gpkg, layer="太湖").geometry.values
    expect = shapely.area(shapely.intersection(shapely.union_all(county),
                                               shapely.union_all(lake)))
    assert reg["area_m2"].sum() == pytest.approx(expect, rel=1e-6)
    assert reg["area_m2"].sum() / 1e6 == pytest.approx(23.53, abs=0.02)  # README figure
    # the strips are hundreds of metres wide: the mean-width test alone would not catch
    # them, which is why the boundary-mismatch type exists
    assert reg["mean_width_m"].max() > 5.0


def test_pivots_on_the_sample_sum_to_the_register(detected):
    project, _ = detected
    reg = cf.read_register(project)
    main = reg.loc[reg["sliver"] == 0, "area_ha"].sum()
    for key, p in cf.pivot_tables(reg).items():
        assert p.loc["合计", "合计"] == pytest.approx(main, rel=1e-9), key
    ids = reg["conflict_id"]
    assert ids.is_unique and ids.str.startswith("CF-").all()


def test_merged_map_on_the_sample(detected, seeds):
    project, _ = detected
    merged = cf.build_merged_map(project)
    f = merged.frame
    county = pyogrio.read_dataframe(project.gpkg, layer="现状用地").geometry.values
    # 现状 covers the county, so the merged map covers at least what it covers
    assert f["area_m2"].sum() >= shapely.area(county).sum() * (1 - 1e-6)
    tree = shapely.STRtree(f.geometry.values)
    for seed in seeds:
        pt = _seed_point(seed)
        hit = tree.query(pt, predicate="within")
        assert len(hit) == 1, seed["id"]
        row = f.iloc[int(hit[0])]
        if seed["type"] in ("C2", "C3", "C7"):  # 待定 by rule
            assert row.pending == 1 and seed["type"] in (row.pending_types or ""), seed["id"]
        elif seed["type"] == "C6":  # the farmland's class stands
            assert str(row.mp_code).startswith("01") and row.pending == 0, seed["id"]
        elif seed["type"] == "C5":  # construction must leave the red line: class open
            assert row.pending == 1 and "生态保护红线" in row.controls, seed["id"]
    assert np.isin(f["pending"].unique(), [0, 1]).all()
