"""Conflict detection: rules as data, the register, pivots, exports, slivers, incremental
re-check and the merged 一张图.

Expected types follow domain.md §5.3 by hand; expected areas are hand computations on
axis-aligned boxes (never outputs of multiplan); CSV/XLSX are read back with pandas and
openpyxl.
"""

from __future__ import annotations

import copy
import itertools
import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely

from multiplan.core import conflicts as cf
from multiplan.core.classification import unify
from multiplan.core.errors import StandardsError
from multiplan.core.layers import LayerRecord
from multiplan.core.project import Project
from multiplan.core.tasks import Cancelled, CancelToken, Task

X0, Y0 = 500_000.0, 3_430_000.0  # near 120°E, 31°N in EPSG:4549
MU = 10_000.0 / 15.0


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def add_layer(project: Project, name: str, role: str, geoms: list, codes: list | None = None,
              scheme: str = "ydyh2023", level: str = "county", names: list | None = None,
              fids: list | None = None) -> None:
    """Write a layer the way io.import_layer leaves it (unified mp_* columns when coded)."""
    data: dict = {}
    code_field = name_field = None
    if codes is not None:
        data["DLBM"] = codes
        code_field = "DLBM"
        u = unify(pd.Series(codes), scheme)
        for c in u.columns:
            data[c] = u[c].to_numpy()
    if names is not None:
        data["MC"] = names
        name_field = "MC"
    if fids is not None:
        data["fid"] = fids
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=project.epsg)
    rec = LayerRecord(name=name, kind="vector", level=level, role=role, title=name,
                      geometry_type="MultiPolygon", scheme=scheme if codes else None,
                      code_field=code_field, name_field=name_field)
    replace = project.has_layer(name)
    project.write_vector_layer(gdf, rec, replace=replace)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.create(tmp_path / "p", county="测试县", crs=4549)


def one(project: Project, a: str, b: str) -> pd.DataFrame:
    run = cf.detect_conflicts(project, a, b)
    return run.register


# --------------------------------------------------------------------------- rule table

def test_packaged_rules_load_with_version():
    rules = cf.load_rules()
    assert rules.version_id == "conflict_rules/1.0"
    assert {f"C{i}" for i in range(1, 9)} <= set(rules.types)
    assert rules.types["B1"].get("boundary_mismatch") is True
    for r in rules.rules:
        assert r.message_zh and r.message_en and r.resolution in ("precedence", "待定")


def _parent(role: str, code: str | None = None, cands: tuple = (), level: str = "county"):
    if code:
        cls = cf.ClassInfo((code,), code, "ok", code, code, code[:2])
    elif cands:
        cls = cf.ClassInfo(tuple(cands), None, "待定", "x", "x", "待定")
    else:
        cls = cf.ClassInfo((), None, "none", role, None, role)
    return cf.Parent(role, role, level, cls)


# (A, B, expected type, severity, resolution) — domain.md §5.3 by hand
DECISIONS = [
    (("land_use_plan", "0701"), ("urban_plan", "070102"), "C1", "一致", "precedence"),
    (("urban_plan", "100101"), ("land_use_plan", "0101"), "C2", "冲突", "待定"),
    (("land_use_plan", "0101"), ("urban_plan", "100101"), "C2", "冲突", "待定"),  # symmetric
    (("land_use_plan", "1001"), ("urban_plan", None, ("01", "03")), "C3", "冲突", "待定"),
    (("land_use_plan", "0101"), ("urban_plan", None, ("01", "03")), "C4", "一致", "precedence"),
    (("land_use_plan", "0701"), ("eco_redline",), "C5", "冲突", "precedence"),
    (("urban_plan", "1201"), ("eco_redline",), "C5", "冲突", "precedence"),
    (("land_use_plan", "0301"), ("eco_redline",), "C0", "一致", "precedence"),
    (("land_use_plan", "0701"), ("basic_farmland", "0101"), "C6", "冲突", "precedence"),
    (("land_use_plan", "0101"), ("basic_farmland", "0101"), "C0", "一致", "precedence"),
    (("land_use_plan", "0301"), ("basic_farmland", "0101"), "C12", "警告", "precedence"),
    (("forest_plan", "0301"), ("current_use", "0103"), "C7", "冲突", "待定"),
    (("forest_plan", "0302"), ("land_use_plan", "1001"), "C7", "冲突", "待定"),
    (("forest_plan", "0301"), ("current_use", "0301"), "C0", "一致", "precedence"),
    (("current_use", "0701"), ("land_use_plan", "0101"), "C8", "警告", "precedence"),
    (("current_use", "0101"), ("land_use_plan", "0701"), "C8", "提示", "precedence"),
    (("current_use", "0101"), ("land_use_plan", "0102"), "C0", "一致", "precedence"),
    (("urban_boundary",), ("eco_redline",), "C9", "冲突", "precedence"),
    (("urban_boundary",), ("basic_farmland", "0101"), "C10", "冲突", "precedence"),
    (("basic_farmland", "0101"), ("eco_redline",), "C11", "冲突", "待定"),
    (("admin_boundary",), ("water",), "B1", "提示", "precedence"),
    (("planning_zone",), ("main_function_zone",), "X0", "提示", "precedence"),
]


@pytest.mark.parametrize("a,b,typ,sev,res", DECISIONS)
def test_rule_decisions(a, b, typ, sev, res):
    rules = cf.load_rules()
    d = rules.decide(_parent(*a), _parent(*b))
    assert (d.type, d.severity, d.resolution) == (typ, sev, res)
    assert d.pending == (res == "待定" or d.pending_reason is not None)


def test_level_relation_c13():
    rules = cf.load_rules()
    upper = _parent("spatial_plan", "0101", level="provincial")
    lower = _parent("land_use_plan", "0701", level="county")
    d = rules.decide(upper, lower)
    assert d.type == "C13" and d.winner == "a" and d.proposed_code == "0101"
    d = rules.decide(lower, upper)  # either orientation
    assert d.type == "C13" and d.winner == "b" and d.proposed_code == "0101"


def test_precedence_and_proposed_class():
    rules = cf.load_rules()
    # C6: 永久基本农田 outranks the plan and stands for 耕地: its own code wins
    d = rules.decide(_parent("land_use_plan", "0701"), _parent("basic_farmland", "0102"))
    assert d.winner == "b" and d.proposed_code == "0102" and not d.pending
    # C5: the red line wins but implies no class: 待定 (what the land becomes is open)
    d = rules.decide(_parent("land_use_plan", "0701"), _parent("eco_redline"))
    assert d.winner == "b" and d.proposed_code is None and d.pending
    assert d.pending_reason == "winner_has_no_class"
    # consistent with a red line: the plan's class stands
    d = rules.decide(_parent("land_use_plan", "0301"), _parent("eco_redline"))
    assert d.proposed_code == "0301" and not d.pending
    # C1 fixes the winner to the urban plan (its layout), whatever the order
    d = rules.decide(_parent("urban_plan", "070102"), _parent("land_use_plan", "0701"))
    assert d.winner == "a" and d.proposed_code == "070102"
    # C2 is 待定; the proposal is still the precedence winner (土规 above 城规)
    d = rules.decide(_parent("urban_plan", "100101"), _parent("land_use_plan", "0101"))
    assert d.pending and d.pending_reason == "rule" and d.proposed_code == "0101"


def test_groups_with_pending_candidates():
    rules = cf.load_rules()
    all_non = _parent("urban_plan", None, ("01", "02", "03", "04", "06", "2303"))
    mixed = _parent("urban_plan", None, ("01", "07"))
    assert rules.in_group("非建设用地", all_non.cls)
    assert not rules.in_group("耕地", all_non.cls)
    assert not rules.in_group("建设用地", mixed.cls) and not rules.in_group("非建设用地", mixed.cls)
    assert rules.in_group("任意", mixed.cls)
    assert rules.decide(mixed, _parent("land_use_plan", "0701")).type == "X0"


def _rules_data() -> dict:
    return json.loads(cf._rules_resource().read_text(encoding="utf-8"))


def _custom(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "rules.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


def test_matching_most_specific_wins_then_first_listed(tmp_path: Path):
    data = _rules_data()
    base = {"severity": "提示", "resolution": "precedence", "basis": "test",
            "message": {"zh": "测试", "en": "test"}}
    data["rules"] = [
        {**base, "id": "T1", "type": "X0", "a": {"roles": ["*"], "group": "任意"},
         "b": {"roles": ["*"], "group": "任意"}},
        {**base, "id": "T2", "type": "C8", "a": {"roles": ["current_use"], "group": "任意"},
         "b": {"roles": ["*"], "group": "任意"}},
        {**base, "id": "T3", "type": "C4", "a": {"roles": ["current_use"], "group": "耕地"},
         "b": {"roles": ["*"], "group": "任意"}},
        {**base, "id": "T4", "type": "C1", "a": {"roles": ["*"], "group": "任意"},
         "b": {"roles": ["current_use"], "group": "林地"}},
        {**base, "id": "T5", "type": "C2", "a": {"roles": ["*"], "group": "林地"},
         "b": {"roles": ["current_use"], "group": "任意"}},
    ]
    rules = cf.load_rules(_custom(tmp_path, data))
    cur = _parent("current_use", "0101")
    other = _parent("reference")
    assert rules.match(cur, other)[0].id == "T3"  # prefix group beats any
    assert rules.match(other, cur)[0].id == "T3"  # symmetric
    assert rules.match(_parent("current_use", "0701"), other)[0].id == "T2"
    assert rules.match(other, other)[0].id == "T1"
    # two 林地 current-use parcels: T4 and T5 both match with specificity 4 → first listed
    f1, f2 = _parent("current_use", "0301"), _parent("current_use", "0302")
    assert rules.match(f1, f2)[0].id == "T4"
    data["rules"][3], data["rules"][4] = data["rules"][4], data["rules"][3]
    assert cf.load_rules(_custom(tmp_path, data)).match(f1, f2)[0].id == "T5"
    # an identical rule (even mirrored) is refused: it could never apply
    data["rules"].append({**data["rules"][3], "id": "T6", "a": data["rules"][3]["b"],
                          "b": data["rules"][3]["a"]})
    with pytest.raises(StandardsError, match="T6"):
        cf.load_rules(_custom(tmp_path, data))


BAD_EDITS = [
    ("kind", lambda d: d.update(kind="scheme"), "header"),
    ("unknown top key", lambda d: d.update(extra=1), "header"),
    ("unknown rule key", lambda d: d["rules"][0].update(severty="冲突"), "rule"),
    ("bad severity", lambda d: d["rules"][0].update(severity="严重"), "rule"),
    ("bad type", lambda d: d["rules"][0].update(type="C99"), "rule"),
    ("bad resolution", lambda d: d["rules"][0].update(resolution="eval"), "rule"),
    ("bad winner", lambda d: d["rules"][0].update(winner="c"), "rule"),
    ("unknown group", lambda d: d["rules"][0]["a"].update(group="建设"), "rule"),
    ("unknown role", lambda d: d["rules"][0]["a"].update(roles=["land_plan"]), "role"),
    ("unknown role set", lambda d: d["rules"][0]["a"].update(roles=["@plans"]), "role"),
    ("unknown level", lambda d: d["rules"][0]["a"].update(levels=["town"]), "rule"),
    ("missing message", lambda d: d["rules"][0].update(message={"zh": "x"}), "rule"),
    ("duplicate id", lambda d: d["rules"].append(dict(d["rules"][0])), "rule"),
    ("same sides", lambda d: d["rules"].append({**d["rules"][0], "id": "Z9"}), "rule"),
    ("bad prefix", lambda d: d["groups"]["耕地"].update(prefixes=["1"]), "group"),
    ("prefix not a class", lambda d: d["groups"]["耕地"].update(prefixes=["99"]), "group"),
    ("empty group", lambda d: d["groups"].update(空={"en": "x"}), "group"),
    ("any_of unknown", lambda d: d["groups"].update(X={"en": "x", "any_of": ["无"]}), "group"),
    ("any_of cycle", lambda d: d["groups"].update(P={"en": "p", "any_of": ["Q"]},
                                                 Q={"en": "q", "any_of": ["P"]}), "group"),
    ("bad type code", lambda d: d["types"].update({"c-1": {"zh": "x", "en": "x"}}), "type"),
    ("no X0", lambda d: d["types"].pop("X0"), "type"),
    ("bad implied class", lambda d: d["precedence"]["implied_class"].update(
        basic_farmland="99"), "precedence"),
    ("rank not int", lambda d: d["precedence"]["levels"].update(county="low"), "precedence"),
    ("bad severity def", lambda d: d["severities"]["冲突"].pop("rank"), "severity"),
    ("bad pair", lambda d: d["pairs"].append({"a": ["*"], "b": ["current_use"]}), "role"),
]


@pytest.mark.parametrize("label,edit,code", BAD_EDITS, ids=[b[0] for b in BAD_EDITS])
def test_rule_table_validation_failures(tmp_path: Path, label, edit, code):
    data = copy.deepcopy(_rules_data())
    edit(data)
    path = _custom(tmp_path, data)
    with pytest.raises(StandardsError) as ei:
        cf.load_rules(path)
    assert ei.value.code == f"standards.rules.{code}", (label, ei.value)
    assert ei.value.path == str(path) and ei.value.zh and ei.value.en


def test_rule_table_duplicate_json_key_and_bad_json(tmp_path: Path):
    p = tmp_path / "r.json"
    p.write_text('{"id": "a", "id": "b"}', encoding="utf-8")
    with pytest.raises(StandardsError, match="duplicate key"):
        cf.load_rules(p)
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(StandardsError):
        cf.load_rules(p)


# --------------------------------------------------------------------------- register

@pytest.fixture
def two_plans(project: Project) -> Project:
    """土规: 0101 水田 [0,100]² and 0701 城镇住宅 [100,200]×[0,100];
    城规 (GB 50137): R2 over [50,150]×[0,100] and E2 over [150,250]×[0,100];
    乡镇界: 东 x ≥ 120, 西 x < 120 (both [0,100] tall, plus margin)."""
    add_layer(project, "土规", "land_use_plan", [box(0, 0, 100, 100), box(100, 0, 200, 100)],
              ["0101", "0701"], scheme="gbt21010_2017")
    add_layer(project, "城规", "urban_plan", [box(50, 0, 150, 100), box(150, 0, 250, 100)],
              ["R2", "E2"], scheme="gb50137_2011")
    add_layer(project, "乡镇界", "township", [box(-10, -10, 120, 110), box(120, -10, 260, 110)],
              names=["西镇", "东镇"])
    return project


def test_register_hand_computed(two_plans: Project):
    reg = one(two_plans, "土规", "城规").set_index(["fid_a", "fid_b"])
    # pieces: 土规1 ∩ R2 = [50,100] → 5000 m² C2; 土规2 ∩ R2 = [100,150] → 5000 m² C1;
    #         土规2 ∩ E2 = [150,200] → 5000 m² C3
    assert sorted(reg.index) == [(1, 1), (2, 1), (2, 2)]
    # township = the one holding the piece's representative point: for a box that is the
    # middle of its mid-height row, so [100,150] → x = 125 → 东镇 (x ≥ 120; also the larger
    # share, 30 of 50 m)
    exp = {(1, 1): ("C2", "冲突", "西镇"), (2, 1): ("C1", "一致", "东镇"),
           (2, 2): ("C3", "冲突", "东镇")}
    for k, (typ, sev, town) in exp.items():
        row = reg.loc[k]
        assert (row.conflict_type, row.severity, row.township) == (typ, sev, town)
        assert row.area_m2 == pytest.approx(5000.0, rel=1e-9)
        assert row.area_ha == pytest.approx(0.5, rel=1e-9)
        assert row.area_mu == pytest.approx(5000.0 / MU, rel=1e-9)  # 7.5 亩
        assert row.sliver == 0
        assert row.rule_version == "conflict_rules/1.0"
    assert reg.loc[(1, 1), "code_a"] == "0101" and reg.loc[(1, 1), "name_a"] == "水田"
    assert reg.loc[(1, 1), "code_b"] == "070102" and reg.loc[(1, 1), "src_code_b"] == "R2"
    assert reg.loc[(1, 1), "pending"] == 1 and reg.loc[(2, 1), "pending"] == 0
    assert reg.loc[(2, 1), "proposed_code"] == "070102"  # C1: the 城规 layout
    # stored = returned
    stored = cf.read_register(two_plans).set_index(["fid_a", "fid_b"])
    assert sorted(stored.index) == sorted(reg.index)
    assert stored.crs.to_epsg() == 4549


def test_register_is_a_valid_geopackage_layer(two_plans: Project):
    one(two_plans, "土规", "城规")
    info = pyogrio.read_info(two_plans.gpkg, layer=cf.REGISTER_TABLE)
    assert info["features"] == 3 and info["geometry_type"] == "MultiPolygon"
    with sqlite3.connect(two_plans.gpkg) as conn:
        kinds = dict(conn.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        assert kinds[cf.REGISTER_TABLE] == "features"
        assert kinds[cf.RUNS_TABLE] == "attributes" and kinds[cf.RULES_TABLE] == "attributes"
        n_rtree = conn.execute(f'SELECT count(*) FROM "rtree_{cf.REGISTER_TABLE}_geom"'
                               ).fetchone()[0]
        assert n_rtree == 3
        cnt = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name=?",
                           (cf.REGISTER_TABLE,)).fetchone()[0]
        assert cnt == 3
        trig = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE "
                                           "type='trigger' AND tbl_name=?",
                                           (cf.REGISTER_TABLE,))}
        assert any(t.endswith("_insert") for t in trig)  # restored after bulk writes
    # a bbox read through GDAL uses the R-tree
    hit = pyogrio.read_dataframe(two_plans.gpkg, layer=cf.REGISTER_TABLE,
                                 bbox=(X0 + 160, Y0 + 10, X0 + 170, Y0 + 20))
    assert hit["conflict_type"].tolist() == ["C3"]
    assert any(e["action"] == "conflicts.detect" for e in two_plans.audit_log())
    _validate_gpkg(two_plans.gpkg)
    # after an in-place re-check and a merged map, GDAL's validator still passes
    cf.recheck(two_plans, "城规", changed=[1])
    cf.build_merged_map(two_plans)
    _validate_gpkg(two_plans.gpkg)


def _validate_gpkg(path: Path) -> None:
    """GDAL's own GeoPackage validator (PyPI gdal-utils), in-process."""
    validator = pytest.importorskip("osgeo_utils.samples.validate_gpkg")
    errors = validator.check(str(path), abort_at_first_error=False, warning_msg=False)
    assert errors == [], errors


def test_stable_ids(two_plans: Project):
    first = one(two_plans, "土规", "城规")["conflict_id"].tolist()
    again = one(two_plans, "土规", "城规")["conflict_id"].tolist()
    swapped = one(two_plans, "城规", "土规")
    assert first == again
    assert sorted(swapped["conflict_id"]) == sorted(first)
    assert all(i.startswith("CF-") for i in first) and len(set(first)) == 3
    # the rerun replaced the pair's rows (in either order), not appended
    assert len(cf.read_register(two_plans)) == 3
    # the id names the parents: fids in the code-point order of the layer names
    # (土 U+571F < 城 U+57CE, so 土规's fid comes first), after a hash of the two names
    h = cf._pair_hash("土规", "城规")
    assert sorted(first) == sorted([f"CF-{h}-1-1", f"CF-{h}-2-1", f"CF-{h}-2-2"])
    assert cf.conflict_ids("城规", np.array([7]), "土规", np.array([9])) == [f"CF-{h}-9-7"]


def test_zero_area_contacts_are_not_pieces(project: Project):
    add_layer(project, "土规", "land_use_plan", [box(0, 0, 100, 100)], ["0701"],
              scheme="gbt21010_2017")
    add_layer(project, "红线", "eco_redline", [box(100, 0, 200, 100), box(200, 100, 300, 200)])
    assert len(one(project, "土规", "红线")) == 0  # shared edge + touching corner


def test_c5_c6_and_control_lines(project: Project):
    add_layer(project, "土规", "land_use_plan", [box(0, 0, 100, 100)], ["0701"],
              scheme="gbt21010_2017")
    add_layer(project, "红线", "eco_redline", [box(80, 0, 200, 100)], names=["湖滨湿地"])
    add_layer(project, "基本农田", "basic_farmland", [box(-50, 0, 30, 100)], ["0101"])
    add_layer(project, "开发边界", "urban_boundary", [box(20, 0, 90, 100)])
    r = one(project, "土规", "红线").iloc[0]
    assert (r.conflict_type, r.area_m2, r.name_b) == ("C5", pytest.approx(2000.0), "湖滨湿地")
    assert r.pending == 1 and r.pending_reason == "winner_has_no_class"
    r = one(project, "土规", "基本农田").iloc[0]
    assert (r.conflict_type, r.proposed_code) == ("C6", "0101")
    assert r.area_m2 == pytest.approx(3000.0)
    r = one(project, "开发边界", "红线").iloc[0]
    assert (r.conflict_type, r.area_m2) == ("C9", pytest.approx(1000.0))
    r = one(project, "开发边界", "基本农田").iloc[0]
    assert (r.conflict_type, r.area_m2) == ("C10", pytest.approx(1000.0))


def test_slivers_flagged_kept_and_out_of_headline(project: Project):
    add_layer(project, "土规", "land_use_plan",
              [box(0, 0, 1000, 1000), box(2000, 0, 3000, 1000), box(4000, 0, 5000, 1000)],
              ["0701", "0701", "0701"], scheme="gbt21010_2017")
    red = [
        box(998, 0, 1100, 300),  # 2 m × 300 m = 600 m² → small (area)
        box(2996, 0, 3100, 1000),  # 4 m × 1000 m = 4000 m², 2A/P = 8000/2008 = 3.98 m → thin
        # a real 200 m × 200 m conflict plus a 1 m crumb in one piece: not a sliver
        shapely.union(box(4100, 100, 4300, 300), box(4999, 600, 5100, 610)),
    ]
    add_layer(project, "红线", "eco_redline", red)
    reg = one(project, "土规", "红线").set_index("fid_a")
    assert reg.loc[1, "sliver"] == 1 and reg.loc[1, "sliver_reason"] == "area"
    assert reg.loc[2, "sliver"] == 1 and reg.loc[2, "sliver_reason"] == "width"
    assert reg.loc[2, "mean_width_m"] == pytest.approx(8000 / 2008, rel=1e-9)
    assert reg.loc[3, "sliver"] == 0
    assert reg.loc[3, "area_m2"] == pytest.approx(40_000 + 10)
    assert (reg["conflict_type"] == "C5").all()  # slivers keep their type
    s = cf.register_summary(reg.reset_index())
    assert s["conflicts"] == 1 and s["conflict_area_ha"] == pytest.approx(4.001)
    assert s["slivers"] == 2 and s["sliver_area_ha"] == pytest.approx(0.46)
    # thresholds come from the project settings
    project.set_settings(sliver_max_area_m2=100.0, sliver_max_mean_width_m=1.0)
    reg = one(project, "土规", "红线").set_index("fid_a")
    assert reg["sliver"].tolist() == [0, 0, 0]


def test_boundary_mismatch_is_not_a_planning_conflict(project: Project):
    # a county line and a lake that disagree by a ~600 m wide strip: big, but a mismatch
    add_layer(project, "行政区", "admin_boundary", [box(0, 0, 20_000, 20_000)])
    add_layer(project, "湖", "water", [box(19_400, -5000, 40_000, 25_000)])
    reg = one(project, "行政区", "湖")
    r = reg.iloc[0]
    assert r.conflict_type == "B1" and r.sliver == 1 and r.sliver_reason == "boundary"
    assert r.area_m2 == pytest.approx(600 * 20_000)
    s = cf.register_summary(reg)
    assert s["conflicts"] == 0 and s["area_ha"] == 0 and s["slivers"] == 1


def test_pivots_sum_to_register_totals(two_plans: Project):
    add_layer(two_plans, "红线", "eco_redline", [box(90, 0, 160, 100), box(240, 0, 240.5, 50)])
    cf.detect_all(two_plans)
    reg = cf.read_register(two_plans)
    assert reg["sliver"].sum() >= 1  # the 0.5 m strip
    main_total = reg.loc[reg["sliver"] == 0, "area_ha"].sum()
    piv = cf.pivot_tables(reg)
    for key in ("class_x_class", "by_township", "by_type_severity"):
        p = piv[key]
        assert p.loc["合计", "合计"] == pytest.approx(main_total, rel=1e-12), key
        body = p.drop(index="合计", columns="合计")
        assert body.to_numpy().sum() == pytest.approx(main_total, rel=1e-12), key
        assert np.allclose(body.sum(axis=1), p["合计"].drop("合计"))
    sev = piv["by_type_severity"]
    assert list(sev.columns[:-1]) == [c for c in ("冲突", "警告", "提示", "一致")
                                      if c in sev.columns]
    # by township: 西镇 holds 土规×城规 pieces [50,100] and [100,120)… by representative point
    assert set(piv["by_township"].index) - {"合计"} <= {"西镇", "东镇", "（县域外）"}


def test_csv_and_xlsx_round_trip(two_plans: Project, tmp_path: Path):
    one(two_plans, "土规", "城规")
    paths = cf.export_register(two_plans, tmp_path / "out")
    reg = cf.read_register(two_plans)
    csv = pd.read_csv(paths["csv"], encoding="utf-8-sig", dtype={"code_a": str, "code_b": str})
    assert list(csv["conflict_id"]) == list(reg["conflict_id"])
    assert np.allclose(csv["area_m2"], reg["area_m2"]) and np.allclose(csv["area_mu"],
                                                                       reg["area_mu"])
    assert csv["code_a"].tolist() == reg["code_a"].tolist()  # leading zeros survive
    assert csv["message_zh"].str.len().min() > 0
    assert (csv["type_name"] == reg["type_name"]).all()
    wb = openpyxl.load_workbook(paths["xlsx"], read_only=True)
    assert {"说明", "差异图斑", "类×类(公顷)", "乡镇(公顷)", "类型×程度(公顷)", "规则"} <= set(
        wb.sheetnames)
    info = {r[0]: r[1] for r in wb["说明"].iter_rows(min_row=2, values_only=True)}
    assert info["规则表版本 rule table"] == "conflict_rules/1.0"
    # the committee sheet lists the differences (severity not 一致); the CSV every piece
    diff = reg[reg["severity"] != "一致"]
    x = pd.read_excel(paths["xlsx"], sheet_name="差异图斑", dtype={"code_a": str})
    assert list(x["conflict_id"]) == list(diff["conflict_id"]) and len(x) == 2
    assert x["code_a"].tolist() == diff["code_a"].tolist()
    assert np.allclose(x["area_ha"], diff["area_ha"])
    t = pd.read_excel(paths["xlsx"], sheet_name="类型×程度(公顷)", index_col=0)
    assert t.loc["合计", "合计"] == pytest.approx(reg["area_ha"].sum())
    assert t.loc["C2 城规建设、土规非建设", "冲突"] == pytest.approx(0.5)
    k = pd.read_excel(paths["xlsx"], sheet_name="类×类(公顷)", index_col=0)
    assert k.loc["合计", "合计"] == pytest.approx(1.5)
    everything = cf.export_register(two_plans, tmp_path / "all", xlsx_all_rows=True)
    y = pd.read_excel(everything["xlsx"], sheet_name="差异图斑")
    assert list(y["conflict_id"]) == list(reg["conflict_id"])


@pytest.mark.parametrize("route", ["swap", "in_place"])
def test_failed_write_leaves_register_unchanged(two_plans: Project, monkeypatch, route):
    if route == "in_place":  # another pair with more rows than 土规×城规 stays: SQL route
        add_layer(two_plans, "红线", "eco_redline",
                  [box(10 * i, 0, 10 * i + 5, 100) for i in range(25)])
        one(two_plans, "土规", "红线")
    one(two_plans, "土规", "城规")
    before = two_plans.snapshot_state()
    reg_before = cf.read_register(two_plans)
    swapped = []
    monkeypatch.setattr(cf, "_swap_register", lambda *a, _f=cf._swap_register, **k: (
        swapped.append(1), _f(*a, **k)))

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cf, "_finish_store", boom)
    with pytest.raises(RuntimeError):
        cf.detect_conflicts(two_plans, "土规", "城规")
    assert bool(swapped) == (route == "swap")
    assert two_plans.snapshot_state() == before  # no temporary table left either
    pd.testing.assert_frame_equal(cf.read_register(two_plans), reg_before)


def test_both_write_routes_give_the_same_register(two_plans: Project):
    add_layer(two_plans, "红线", "eco_redline",
              [box(10 * i, 0, 10 * i + 5, 100) for i in range(25)])
    one(two_plans, "土规", "红线")
    one(two_plans, "土规", "城规")  # in place: the 红线 pair (25 rows) stays
    in_place = cf.read_register(two_plans)
    runs = [cf.compute_conflicts(two_plans, a, b) for a, b in (("土规", "红线"),
                                                                ("土规", "城规"))]
    cf._store_runs(two_plans, runs, cf.load_rules())  # both pairs replaced: swapped in
    swapped = cf.read_register(two_plans)
    pd.testing.assert_frame_equal(in_place.drop(columns="run_id"),
                                  swapped.drop(columns="run_id"))
    cf.detect_conflicts(two_plans, "土规", "红线")  # 25 new ≥ 3 kept: swap, keeping 土规×城规
    pd.testing.assert_frame_equal(in_place.drop(columns="run_id"),
                                  cf.read_register(two_plans).drop(columns="run_id"))
    with sqlite3.connect(two_plans.gpkg) as conn:
        n = conn.execute(f'SELECT count(*) FROM "rtree_{cf.REGISTER_TABLE}_geom"').fetchone()[0]
        idx = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index' "
                                          "AND tbl_name=?", (cf.REGISTER_TABLE,))}
    assert n == len(in_place) and set(cf._REGISTER_INDEXES) <= idx


def test_cancel_stops_and_changes_nothing(two_plans: Project):
    before = two_plans.snapshot_state()
    token = CancelToken()
    seen = []

    def progress(f, msg):
        seen.append(f)
        if f > 0.1:
            token.cancel()

    with pytest.raises(Cancelled):
        cf.detect_conflicts(two_plans, "土规", "城规", task=Task(progress, token))
    assert two_plans.snapshot_state() == before
    assert seen and all(0 <= f <= 1 for f in seen)


def test_progress_is_monotonic_to_one(two_plans: Project):
    seen = []
    cf.detect_all(two_plans, Task(lambda f, m: seen.append(f)))
    assert seen[-1] == 1.0 and all(b >= a - 1e-12 for a, b in itertools.pairwise(seen))


def test_meaningful_pairs_by_role(project: Project):
    g = [box(0, 0, 10, 10)]
    add_layer(project, "现状", "current_use", g, ["0101"])
    add_layer(project, "土规", "land_use_plan", g, ["0101"], scheme="gbt21010_2017")
    add_layer(project, "城规", "urban_plan", g, ["E2"], scheme="gb50137_2011")
    add_layer(project, "林规", "forest_plan", g, ["0301"])
    add_layer(project, "红线", "eco_redline", g)
    add_layer(project, "农田", "basic_farmland", g, ["0101"])
    add_layer(project, "边界", "urban_boundary", g)
    add_layer(project, "省级", "spatial_plan", g, ["0101"], level="provincial")
    add_layer(project, "乡镇", "township", g, names=["x"])
    add_layer(project, "湖", "water", g)
    pairs = {frozenset(p) for p in cf.meaningful_pairs(project)}
    expect = {("土规", "城规"), ("省级", "土规"), ("省级", "城规"), ("现状", "土规"),
              ("现状", "城规"), ("现状", "省级"), ("林规", "现状"), ("林规", "土规"),
              ("林规", "城规"), ("林规", "省级"), ("红线", "农田"), ("红线", "边界"),
              ("农田", "边界")}
    for plan in ("土规", "城规", "省级", "林规"):
        for line in ("红线", "农田", "边界"):
            expect.add((plan, line))
    assert pairs == {frozenset(p) for p in expect}
    assert len(cf.meaningful_pairs(project)) == len(pairs)  # each pair once


# --------------------------------------------------------------------------- incremental

def _grid_project(project: Project, rng: np.random.Generator, n: int = 24) -> None:
    """n×n parcels of 50 m (jittered interior vertices) vs 4×4 zones of 300 m, shifted so
    boundaries cross; random codes; a basic-farmland layer; two townships."""
    xs = np.linspace(0, 50 * n, n + 1)
    jit = rng.uniform(-8, 8, (n + 1, n + 1, 2))
    jit[0, :, :] = jit[-1, :, :] = jit[:, 0, :] = jit[:, -1, :] = 0
    parcels = []
    for i in range(n):
        for j in range(n):
            pts = [(xs[i] + jit[i, j, 0], xs[j] + jit[i, j, 1]),
                   (xs[i + 1] + jit[i + 1, j, 0], xs[j] + jit[i + 1, j, 1]),
                   (xs[i + 1] + jit[i + 1, j + 1, 0], xs[j + 1] + jit[i + 1, j + 1, 1]),
                   (xs[i] + jit[i, j + 1, 0], xs[j + 1] + jit[i, j + 1, 1])]
            parcels.append(shapely.Polygon([(X0 + x, Y0 + y) for x, y in pts]))
    codes = rng.choice(["0101", "0103", "0301", "0701", "1001", "1207", "0404"], len(parcels))
    add_layer(project, "现状", "current_use", parcels, list(codes))
    zones, zcodes = [], []
    for i in range(4):
        for j in range(4):
            zones.append(box(130 + 300 * i, -20 + 300 * j, 430 + 300 * i, 280 + 300 * j))
            zcodes.append(rng.choice(["0101", "0701", "0301", "1001"]))
    add_layer(project, "土规", "land_use_plan", zones, zcodes, scheme="gbt21010_2017")
    add_layer(project, "农田", "basic_farmland", [box(0, 0, 400, 1200), box(700, 500, 1000, 800)],
              ["0101", "0102"])
    add_layer(project, "乡镇", "township", [box(-100, -100, 600, 1400),
                                          box(600, -100, 1400, 1400)], names=["甲", "乙"])


def _edit(project: Project, rng: np.random.Generator, k: int = 40):
    """Random edits of 现状 saved through the project API (fids preserved): move vertices,
    replace geometry, change code, delete, add."""
    g = project.read_layer("现状")
    fids = g.index.to_numpy()
    pick = rng.choice(fids, k, replace=False)
    move, repl, code, dele = np.array_split(pick, 4)
    geo = g.geometry.to_numpy().copy()
    pos = {f: i for i, f in enumerate(fids)}
    for f in move:
        xy = shapely.get_coordinates(geo[pos[f]])
        xy[:-1] += rng.normal(0, 6, (len(xy) - 1, 2))
        xy[-1] = xy[0]
        geo[pos[f]] = shapely.make_valid(shapely.polygons(xy))
    for f in repl:
        c = shapely.centroid(geo[pos[f]])
        geo[pos[f]] = shapely.box(c.x - 70, c.y - 20, c.x + 70, c.y + 25)  # crosses others
    g = g.set_geometry(gpd.GeoSeries(geo, index=g.index, crs=g.crs))
    g.loc[code, "DLBM"] = rng.choice(["0101", "0701", "1001", "0301", "1207"], len(code))
    g = g.drop(index=dele)
    add = rng.choice(g.index.to_numpy(), 6, replace=False)
    new = g.loc[add].copy()
    new["geometry"] = [shapely.box(c.x - 40, c.y - 15, c.x + 55, c.y + 30)
                       for c in new.geometry.centroid]
    new.index = np.arange(fids.max() + 1, fids.max() + 1 + len(new))
    g = pd.concat([g, new])
    u = unify(g["DLBM"], "ydyh2023")
    for c in u.columns:
        g[c] = u[c]
    g["fid"] = g.index
    project.write_vector_layer(g.reset_index(drop=True).set_crs(project.epsg,
                                                                 allow_override=True),
                               project.layer("现状"), replace=True)
    changed = np.concatenate([move, repl, code])
    return changed, new.index.to_numpy(), dele


def _compare(inc: pd.DataFrame, full: pd.DataFrame) -> None:
    a = inc.set_index("conflict_id").sort_index()
    b = full.set_index("conflict_id").sort_index()
    assert list(a.index) == list(b.index)
    for col in ("layer_a", "fid_a", "layer_b", "fid_b", "conflict_type", "severity", "rule_id",
                "code_a", "code_b", "township", "sliver", "pending", "proposed_code"):
        assert (a[col].astype(object).fillna("<NA>").astype(str)
                == b[col].astype(object).fillna("<NA>").astype(str)).all(), col
    assert np.allclose(a["area_m2"], b["area_m2"], rtol=1e-9, atol=1e-6)
    assert np.allclose(a["mean_width_m"], b["mean_width_m"], rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_recheck_equals_full_rerun(project: Project, seed: int):
    rng = np.random.default_rng(seed)
    _grid_project(project, rng)
    cf.detect_conflicts(project, "现状", "土规")
    cf.detect_conflicts(project, "土规", "农田")
    cf.detect_conflicts(project, "农田", "现状")  # 现状 as side b
    untouched = cf.read_register(project, "土规", "农田")
    changed, added, deleted = _edit(project, rng)
    runs = cf.recheck(project, "现状", changed=changed, added=added, deleted=deleted)
    assert {(r.layer_a, r.layer_b) for r in runs} == {("现状", "土规"), ("农田", "现状")}
    assert all(r.kind == "incremental" and r.removed > 0 for r in runs)
    inc = cf.read_register(project)
    pd.testing.assert_frame_equal(cf.read_register(project, "土规", "农田"), untouched)
    cf.detect_conflicts(project, "现状", "土规")
    cf.detect_conflicts(project, "农田", "现状")
    full = cf.read_register(project)
    _compare(inc, full)
    assert len(inc) == len(full) > 0
    stored = {r["pair_key"]: r for r in cf.read_runs(project)}
    assert all(r["rule_version"] == "conflict_rules/1.0" for r in stored.values())


def test_recheck_falls_back_to_full_when_the_run_is_stale(project: Project):
    rng = np.random.default_rng(5)
    _grid_project(project, rng, n=12)
    cf.detect_conflicts(project, "现状", "土规")
    # the other layer changed since the run: patching 现状's rows would miss that
    zones = project.read_layer("土规")
    zones.loc[zones.index[0], "DLBM"] = "0701"
    u = unify(zones["DLBM"], "gbt21010_2017")
    for c in u.columns:
        zones[c] = u[c]
    zones["fid"] = zones.index
    project.write_vector_layer(zones.reset_index(drop=True), project.layer("土规"),
                               replace=True)
    changed, added, deleted = _edit(project, rng, k=8)
    runs = cf.recheck(project, "现状", changed=changed, added=added, deleted=deleted)
    assert [r.kind for r in runs] == ["full"]
    inc = cf.read_register(project)
    cf.detect_conflicts(project, "现状", "土规")
    _compare(inc, cf.read_register(project))
    # other sliver thresholds: also a full recompute
    project.set_settings(sliver_max_area_m2=50.0)
    runs = cf.recheck(project, "现状", changed=changed[:2])
    assert [r.kind for r in runs] == ["full"]
    assert cf.read_runs(project)[0]["settings"]["sliver_max_area_m2"] == 50.0


def test_recheck_without_runs_is_a_no_op(project: Project):
    add_layer(project, "现状", "current_use", [box(0, 0, 10, 10)], ["0101"])
    assert cf.recheck(project, "现状", changed=[1]) == []


# --------------------------------------------------------------------------- merged 一张图

def test_merged_map_by_precedence(project: Project):
    # 现状 covers [0,300]×[0,100]: three parcels of 100 m
    add_layer(project, "现状", "current_use",
              [box(0, 0, 100, 100), box(100, 0, 200, 100), box(200, 0, 300, 100)],
              ["0101", "0301", "0701"])
    # 土规: 0701 over [0,150], 0101 over [150,300]
    add_layer(project, "土规", "land_use_plan", [box(0, 0, 150, 100), box(150, 0, 300, 100)],
              ["0701", "0101"], scheme="gbt21010_2017")
    # 城规: M1 over [120,180] (C1 on [120,150], C2 on [150,180])
    add_layer(project, "城规", "urban_plan", [box(120, 0, 180, 100)], ["M1"],
              scheme="gb50137_2011")
    # 永久基本农田 over [0,50] (C6 against the 土规's 0701 there); 红线 over [280,320]
    add_layer(project, "农田", "basic_farmland", [box(0, 0, 50, 100)], ["0102"])
    add_layer(project, "红线", "eco_redline", [box(280, 0, 320, 100)])
    m = cf.build_merged_map(project)
    f = m.frame
    assert f["area_m2"].sum() == pytest.approx(320 * 100, rel=1e-9)  # the union, no overlap
    assert shapely.union_all(f.geometry.values).area == pytest.approx(320 * 100, rel=1e-9)

    def at(x: float) -> pd.Series:
        hit = f[f.geometry.contains(shapely.Point(X0 + x, Y0 + 50))]
        assert len(hit) == 1
        return hit.iloc[0]

    assert (at(25).mp_code, at(25).pending) == ("0102", 0)  # 农田 overrules 土规 0701
    assert (at(75).mp_code, at(75).source_layer) == ("0701", "土规")
    assert (at(75)["fid_土规"], at(75)["fid_现状"], at(75)["fid_红线"]) == (1, 1, -1)
    assert (at(135).mp_code, at(135).source_layer) == ("100101", "城规")  # C1 layout
    assert (at(165).mp_code, at(165).pending) == ("0101", 1)  # C2 is 待定; 土规 proposed
    assert "C2" in at(165).pending_types
    assert (at(250).mp_code, at(250).pending) == ("0101", 0)
    assert (at(290).mp_code, at(290).pending) == ("0101", 0)  # 0101 is fine in the red line
    assert at(290).controls == "生态保护红线"
    assert pd.isna(at(310).mp_code) and at(310).pending == 1  # only the red line: no class
    stored = cf.read_merged(project)
    assert len(stored) == len(f) and stored["pending"].sum() == f["pending"].sum()


def test_benchmark_smoke(repo_root: Path):
    """A tiny in-process run of benchmarks/bench_conflicts.py (the benchmark itself is not
    part of the suite): geopandas and multiplan agree on the area, re-check == full rerun."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_conflicts", repo_root / "benchmarks" / "bench_conflicts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.smoke() == 0
