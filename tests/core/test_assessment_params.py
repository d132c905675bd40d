"""The 双评价 parameter file: schema check on load, overrides, fingerprint, no eval."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from multiplan.core.assessment import params as P
from multiplan.core.errors import StandardsError


def test_packaged_file_loads_and_says_what_it_is() -> None:
    d = P.default_parameters()
    info = P.rule_file_info()
    assert info["id"] == "assessment_2019" and info["version_id"] == "assessment_2019/1.0"
    assert len(info["sha256"]) == 64
    assert d["kind"] == "assessment_parameters"
    assert P.rule_file_path().name == "assessment_2019.json"


def test_every_table_carries_its_confidence_and_boundary_rule() -> None:
    d = P.default_parameters()
    for section in ("factors", "modifiers"):
        for name, t in d[section].items():
            assert t["confidence"] in ("H", "M", "L", "P"), name
            assert t["source"], name
            assert t["boundary"], name  # which side of a break a value takes, in words
    for side in ("urban", "agriculture"):
        for step in d["penalties"][side]:
            assert step["confidence"] in ("H", "M", "L", "P"), step["factor"]
    for m in d["matrices"].values():
        assert m["confidence"] == "M" and "domain.md §6.3" in m["source"]
    assert d["concentration"]["compactness"]["confidence"] == "M"
    assert d["classes"]["suitability"]["confidence"] == {"three": "M", "two": "P"}


def test_defaults_match_domain_md_6_2() -> None:
    """The numbers, typed again from domain.md §6.2 (not read from the file)."""
    f = P.default_parameters()["factors"]
    assert f["slope_agriculture"]["breaks"] == [2, 6, 15, 25]
    assert f["slope_urban"]["breaks"] == [3, 8, 15, 25]
    assert f["precipitation"]["breaks"] == [200, 400, 800, 1200]
    assert f["aridity"]["breaks"] == [0.5, 1.0, 3.0, 7.0]
    assert f["water_modulus"]["breaks"] == [30000, 80000, 130000, 250000]
    assert f["water_total_modulus"]["breaks"] == [50000, 100000, 200000, 500000]
    assert f["thi"]["breaks"] == [35, 40, 45, 50, 70, 75, 80, 85]
    assert f["travel_time"]["breaks"] == [1, 2, 3.5, 5]
    assert f["contiguity_plain"]["breaks"] == [150, 400, 600, 900]
    assert f["contiguity_hilly"]["breaks"] == [80, 150, 250, 400]
    assert f["concentration"]["breaks"] == [0.25, 0.5, 1, 2]
    m = P.default_parameters()["modifiers"]
    assert m["soil_silt"]["breaks"] == [60, 80]
    assert m["elevation"]["breaks"] == [3500, 5000]
    assert m["relief"]["breaks"] == [100, 200]
    rw = P.default_parameters()["relief_window"]
    assert rw["cell_size_breaks_m"] == [30, 50, 100] and rw["window_cells"] == [15, 12, 9, 3]


def _bad(mutate) -> dict:
    d = P.default_parameters()
    mutate(d)
    return d


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["factors"]["slope_urban"].update(breaks=[3, 8, 8, 25]), "factors.slope_urban"),
    (lambda d: d["factors"]["slope_urban"].update(grades=[1, 2, 3, 4]), "factors.slope_urban"),
    (lambda d: d["factors"]["slope_urban"].update(grades=[1, 2, 3, 4, 6]), "factors.slope_urban"),
    (lambda d: d["factors"]["slope_urban"].update(closed="both"), "factors.slope_urban"),
    (lambda d: d["factors"]["slope_urban"].update(breaks=[3, "8", 15, 25]),
     "factors.slope_urban"),
    (lambda d: d["factors"]["slope_urban"].pop("confidence"), "factors.slope_urban"),
    (lambda d: d["modifiers"]["relief"]["actions"].append({"op": "none"}), "modifiers.relief"),
    (lambda d: d["modifiers"]["relief"]["actions"].__setitem__(1, {"op": "exec",
                                                                   "value": "1+1"}),
     "modifiers.relief"),
    (lambda d: d["modifiers"]["soil_silt"]["actions"].__setitem__(2, {"op": "set", "value": 7}),
     "modifiers.soil_silt"),
    (lambda d: d["matrices"]["urban_land_water"]["table"].pop(), "matrices.urban_land_water"),
    (lambda d: d["matrices"]["urban_land_water"]["table"][0].__setitem__(0, 0),
     "matrices.urban_land_water"),
    (lambda d: d["matrices"]["ecology_concentration"]["table"][0].__setitem__(0, 4),
     "matrices.ecology_concentration"),
    (lambda d: d["penalties"]["urban"][0]["rules"][0].update(when="1"), "penalties.urban[0]"),
    (lambda d: d["penalties"]["urban"][4]["rules"][2].update(if_current=[0, 9]),
     "penalties.urban[4]"),
    (lambda d: d["concentration"].update(connectivity=6), "concentration.connectivity"),
    (lambda d: d["concentration"]["urban"].update(method="contiguity_matrix"),
     "concentration.urban.method"),
    (lambda d: d["classes"].update(scheme="four"), "classes.scheme"),
    (lambda d: d["classes"]["suitability"]["two"].update({"5": 7}), "classes.suitability.two"),
    (lambda d: d["water_indicator"].update(urban="precipitation"), "water_indicator.urban"),
    (lambda d: d["capacity"].update(irrigation_quota_m3_per_mu=-3), "capacity."),
    (lambda d: d["capacity"].update(water_by_sector_m3={"industry": 5}), "capacity."),
    (lambda d: d["plan_check"]["rules"][0].update(result="slope"), "plan_check.rules[0]"),
    (lambda d: d["location"].update(speed_kmh=0), "location"),
    (lambda d: d.pop("matrices"), "matrices"),
])
def test_schema_check_names_the_key(mutate, where) -> None:
    with pytest.raises(StandardsError) as ei:
        P.validate(_bad(mutate), "x.json")
    assert where in ei.value.en and ei.value.path == "x.json"


def test_overrides_merge_and_are_rechecked() -> None:
    d = P.effective_parameters({"factors": {"slope_urban": {"breaks": [2, 8, 15, 25]}},
                                "classes": {"scheme": "two"}})
    assert d["factors"]["slope_urban"]["breaks"] == [2, 8, 15, 25]
    assert d["factors"]["slope_urban"]["grades"] == [1, 2, 3, 4, 5]  # kept from the file
    assert d["classes"]["scheme"] == "two"
    with pytest.raises(StandardsError):
        P.effective_parameters({"factors": {"slope_urban": {"breaks": [9, 8, 15, 25]}}})
    merged = P.deep_merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}, "d": 4})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 4}


def test_fingerprint_ignores_engine_but_not_rules_or_cell() -> None:
    d = P.default_parameters()
    fp = P.fingerprint(d, 30)
    e = copy.deepcopy(d)
    e["engine"]["block_size"] = 64
    e["engine"]["workers"] = 1
    assert P.fingerprint(e, 30) == fp
    assert P.fingerprint(d, 60) != fp
    e["modifiers"]["relief"]["breaks"] = [100, 250]
    assert P.fingerprint(e, 30) != fp


def test_overrides_file(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"classes": {"scheme": "two"}}), encoding="utf-8")
    assert P.read_overrides_file(good) == {"classes": {"scheme": "two"}}
    bad = tmp_path / "bad.json"
    bad.write_text('{"classes": {"scheme": "two"', encoding="utf-8")
    with pytest.raises(StandardsError) as ei:
        P.read_overrides_file(bad)
    assert ei.value.code == "assessment.params_json"
    dup = tmp_path / "dup.json"
    dup.write_text('{"classes": {"scheme": "two", "scheme": "three"}}', encoding="utf-8")
    with pytest.raises(StandardsError):
        P.read_overrides_file(dup)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"matrices": {"urban_land_water": {"table": [[1]]}}}),
                     encoding="utf-8")
    with pytest.raises(StandardsError):
        P.read_overrides_file(wrong)
    # a whole copy of the packaged file is accepted as overrides
    full = tmp_path / "full.json"
    full.write_text(P.rule_file_path().read_text(encoding="utf-8"), encoding="utf-8")
    assert P.effective_parameters(P.read_overrides_file(full)) == P.default_parameters() | {
        "id": "assessment_2019", "version": "1.0", "kind": "assessment_parameters"}


def test_no_eval_in_the_package() -> None:
    src = Path(P.__file__).parent
    for f in src.glob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert "eval(" not in text and "exec(" not in text, f.name
