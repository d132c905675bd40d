"""Tests for multiplan.core.classification.

Expected values are copied from /work/shared/domain.md (§1.1, §1.2, §2, §3), not from the
tables under test.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multiplan.core import classification as cl
from multiplan.core.errors import StandardsError

STANDARDS = resources.files("multiplan").joinpath("resources", "standards")


def _packaged(name: str) -> dict:
    return json.loads(STANDARDS.joinpath(name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ydyh() -> cl.Scheme:
    return cl.load_scheme("ydyh2023")


# --------------------------------------------------------------------------- counts

def test_ydyh2023_counts_match_hand_count(ydyh):
    # Hand count of domain.md §1.2 (level-2 codes per level-1 group):
    # 01:3 02:5 03:4 04:3 05:7 06:2 07:4 08:7 09:4 10:3 11:2 12:9 13:12 14:3 15:7 16:0
    # 17:6 18:4 19:6 20:5 21:2 22:6 23:7 24:0  -> 111
    # Level-3 codes (6 digits, in brackets): 06: 2+3=5; 07: 3+2=5; 08: 2+5+2+3+4=16;
    # 09: 5; 10: 3; 11: 3; 12 (1208): 3  -> 40
    assert len(ydyh.codes(1)) == 24
    assert len(ydyh.codes(2)) == 111
    assert len(ydyh.codes(3)) == 40
    assert len(ydyh) == 24 + 111 + 40
    assert ydyh.codes(1) == [f"{i:02d}" for i in range(1, 25)]


def test_legacy_counts_match_hand_count():
    # §2.1: 3+4+7+4+7+4+2+10+6+9+10+7 = 73 level-2 codes, plus the four 三调 merged
    # classes 05H1, 0508, 08H1, 08H2 named in §2.1.
    g17 = cl.load_scheme("gbt21010_2017")
    assert len(g17.codes(1)) == 12
    assert len(g17.codes(2)) == 73 + 4
    # §2.2: 3+3+3+3+4+3+2+8+5+7+9+7 = 57
    g07 = cl.load_scheme("gbt21010_2007")
    assert len(g07.codes(1)) == 12
    assert len(g07.codes(2)) == 57
    # §2.3: level 1 H E R A B M W S U G = 10;
    # level 2 H1-H5,H9 (6) E1,E2,E9 (3) R1-R3 (3) A1-A9 (9) B1-B4,B9 (5) M1-3 (3) W1-3 (3)
    # S1-S4,S9 (5) U1-U3,U9 (4) G1-3 (3) = 44;
    # level 3 H11-14 (4) H21-25 (5) H41-42 (2) E11-13 (3) R11..R32 (6) A21-22 (2) A31-35 (5)
    # A41-42 (2) A51,A52,A53,A59 (4) B11-14 (4) B21,B22,B29 (3) B31-32 (2) B41,B49 (2)
    # S41-42 (2) U11-16 (6) U21-22 (2) U31-32 (2) = 56
    g50 = cl.load_scheme("gb50137_2011")
    assert (len(g50.codes(1)), len(g50.codes(2)), len(g50.codes(3))) == (10, 44, 56)


# --------------------------------------------------------------------------- names

# Names given in full in domain.md §1.1 / §1.2.
EXACT_NAMES = {
    "01": "耕地", "06": "农业设施建设用地", "08": "公共管理与公共服务用地", "16": "留白用地",
    "24": "其他海域", "0101": "水田", "0204": "油料园地", "0205": "其他园地",
    "0507": "红树林地", "0601": "农村道路", "0701": "城镇住宅用地",
    "0702": "城镇社区服务设施用地", "0704": "农村社区服务设施用地", "0803": "文化用地",
    "0904": "其他商业服务业用地", "1003": "盐田", "1102": "储备库用地", "1207": "城镇村道路用地",
    "1312": "其他公用设施用地", "1402": "防护绿地", "1706": "冰川及常年积雪",
    "1906": "海底电缆管道用海", "2203": "海洋保护修复及海岸防护工程用海", "2302": "后备耕地",
    "2307": "裸岩石砾地", "060101": "村道用地", "060202": "畜禽养殖设施建设用地",
    "070103": "三类城镇住宅用地", "100103": "三类工业用地",
}


@pytest.mark.parametrize(("code", "name"), sorted(EXACT_NAMES.items()))
def test_ydyh2023_names(ydyh, code, name):
    assert ydyh.name(code) == name
    assert ydyh.code_for_name(name) == code


# domain.md §1.2 abbreviates ("1201 铁路"); §3.1 and its note use the full names
# (公路用地, 铁路用地, 机场用地). The short form must still find the class.
@pytest.mark.parametrize(("short", "code", "full"), [
    ("铁路", "1201", "铁路用地"), ("机场", "1203", "机场用地"), ("供水", "1301", "供水用地"),
    ("军事设施", "1501", "军事设施用地"), ("医院", "080601", "医院用地"),
    ("社会停车场", "120803", "社会停车场用地"), ("零售商业", "090101", "零售商业用地"),
])
def test_ydyh2023_abbreviated_names(ydyh, short, code, full):
    assert ydyh.name(code) == full
    assert ydyh.code_for_name(short) == code
    assert ydyh.code_for_name(full) == code


def test_ydyh2023_structure(ydyh):
    assert ydyh.get("060101").parent == "0601"
    assert ydyh.get("0601").parent == "06"
    assert ydyh.get("0601").level == 2
    assert ydyh.children("16") == [] and ydyh.children("24") == []
    assert ydyh.children("0803") == ["080301", "080302"]
    assert ydyh.level1("070101") == "07"
    assert ydyh.level1("24") == "24"
    assert ydyh.level1("9999") is None


def test_legacy_names():
    g17 = cl.load_scheme("gbt21010_2017")
    assert g17.name("0204") == "其他园地"
    assert g17.name("0810") == "公园与绿地"
    assert g17.name("1110") == "冰川及永久积雪"
    assert g17.code_for_name("新闻出版") == "0802"
    g07 = cl.load_scheme("gbt21010_2007")
    assert g07.name("031") == "有林地"
    assert g07.name("127") == "裸地"
    assert g07.code_for_name("街巷") == "103"
    g50 = cl.load_scheme("gb50137_2011")
    assert g50.code_for_name("中小学") == "A33"
    assert g50.code_for_name("康体") == "B32"
    # R11/R21/R31 are all 住宅用地 ("Rx1 住宅"), so the name alone is ambiguous
    assert g50.code_for_name("住宅用地") is None
    assert g50.level1("R11") == "R"
    assert g50.get("R11").parent == "R1"


# --------------------------------------------------------------------------- normalisation

@pytest.mark.parametrize(("raw", "expected"), [
    (101, "0101"), (101.0, "0101"), (np.int64(60101), "060101"), ("101", "0101"),
    (" 0101 ", "0101"), ("０１０１", "0101"), ("101.0", "0101"), (1, "01"), ("16", "16"),
])
def test_normalise_ydyh2023(ydyh, raw, expected):
    assert ydyh.normalise(raw) == expected
    assert ydyh.is_valid(raw)


@pytest.mark.parametrize("raw", [None, np.nan, pd.NA, "", "   ", float("inf")])
def test_normalise_missing(ydyh, raw):
    assert ydyh.normalise(raw) is None
    assert not ydyh.is_valid(raw)


def test_normalise_legacy():
    g07 = cl.load_scheme("gbt21010_2007")
    assert g07.normalise(11) == "011"  # numeric: the 3-digit level-2 reading
    assert g07.name(11) == "水田"
    assert g07.normalise(1) == "01"
    assert g07.normalise(10) == "10"
    assert g07.normalise("11") == "11"  # text is literal: level-1 水域及水利设施用地
    g50 = cl.load_scheme("gb50137_2011")
    assert g50.normalise(" r21 ") == "R21"
    assert not g50.is_valid("R4")


def test_is_valid_is_strict(ydyh):
    assert ydyh.is_valid("0805")
    assert not ydyh.is_valid("0808")  # 08 has 0801–0807 only
    assert not ydyh.is_valid("1601")  # 16 has no level-2
    assert not ydyh.is_valid("070104")


# --------------------------------------------------------------------------- colours

def test_colour_table_is_kept_raw():
    rule = _packaged("ydyh2023.json")["colour_rule"]
    assert len(rule["table"]) == 39  # §3.1: 20 + 19 rows
    assert rule["table"]["城镇道路用地"] == [163, 163, 163]


@pytest.mark.parametrize(("code", "rgb"), [
    ("01", (245, 248, 220)),      # level-1 name 耕地
    ("0101", (245, 248, 220)),    # 水田: no level-2 row -> level-1 耕地
    ("0701", (255, 255, 45)),     # exact level-2 name 城镇住宅用地
    ("070101", (255, 255, 45)),   # level-3 takes its level-2
    ("0703", (255, 211, 128)),    # 农村宅基地
    ("0802", (230, 0, 92)),       # 科研用地
    ("0901", (255, 0, 0)),        # 商业用地 -> level-1 商业服务业用地
    ("1101", (135, 97, 211)),     # 物流仓储用地 -> level-1 仓储用地
    ("1102", (153, 153, 255)),    # 储备库用地
    ("1202", (173, 173, 173)),    # 公路用地 beats level-1 交通运输用地
    ("1201", (183, 183, 183)),    # 铁路用地: no row -> level-1 (§3.1 note)
    ("1203", (183, 183, 183)),    # 机场用地: no row -> level-1 (§3.1 note)
    ("1205", (153, 153, 153)),    # 管道运输用地
    ("1306", (0, 99, 128)),       # -> 公用设施用地
    ("1402", (20, 141, 74)),      # 防护绿地
    ("16", (255, 255, 255)),      # 留白用地
    ("1704", (51, 142, 192)),     # -> 陆地水域
    ("2203", (131, 188, 214)),    # -> 特殊用海
    ("2303", (238, 238, 238)),    # -> 其他土地
])
def test_ydyh2023_colours(ydyh, code, rgb):
    assert ydyh.colour(code) == rgb


def test_colour_fallback_grey(ydyh):
    grey = ydyh.fallback_colour
    assert grey[0] == grey[1] == grey[2]
    # §3.1 has no 居住用地 row and no 城镇社区服务设施用地 row: level-2 name misses,
    # level-1 name misses -> grey.
    assert ydyh.colour("07") == grey
    assert ydyh.colour("0702") == grey
    assert ydyh.colour("0704") == grey
    # no 工矿用地 / 绿地与开敞空间用地 / 公共管理与公共服务用地 rows either
    assert ydyh.colour("10") == grey
    assert ydyh.colour("14") == grey
    assert ydyh.colour("08") == grey
    assert ydyh.colour("9999") == grey
    assert ydyh.colour(None) == grey


def test_colour_renamed_classes(ydyh):
    # decision: the 2021 制图规范 uses the 2020 name 城镇道路用地 (domain.md §1.3) and
    # 盐田用地; the table's colour aliases carry them over to 1207 and 1003.
    assert ydyh.colour("1207") == (163, 163, 163)
    assert ydyh.colour("1003") == (0, 0, 255)


def test_gb50137_legacy_colours():
    g50 = cl.load_scheme("gb50137_2011")
    assert g50.colour("R") == (255, 255, 0)
    assert g50.colour("R1") == (255, 255, 127)
    assert g50.colour("R11") == (255, 255, 127)
    assert g50.colour("R2") == (255, 255, 0)
    assert g50.colour("M2") == (76, 57, 38)
    assert g50.colour("M1") == (127, 95, 63)
    assert g50.colour("A6") == g50.colour("A9") == (165, 82, 103)
    assert g50.colour("G2") == (0, 127, 0)
    assert g50.colour("E2") == (41, 165, 0)
    assert g50.colour("H2") == (192, 192, 192)
    assert g50.colour("G3") == g50.fallback_colour


# --------------------------------------------------------------------------- 三生 / 三大类

@pytest.mark.parametrize(("code", "expected"), [
    ("0101", "生产"), ("0201", "生产"), ("0301", "生态"), ("0401", "生态"), ("0501", "生态"),
    ("060201", "生产"), ("0701", "生活"), ("080403", "生活"), ("0901", "生产"),
    ("1001", "生产"), ("1101", "生产"), ("1201", "生产"), ("1301", "生活"), ("1401", "生活"),
    ("1402", "生态"), ("1501", "生活"), ("16", "生活"), ("1701", "生态"), ("1704", "生产"),
    ("1705", "生产"), ("1801", "生产"), ("1901", "生产"), ("2001", "生产"), ("2101", "生活"),
    ("2203", "生态"), ("2301", "生活"), ("2302", "生产"), ("2303", "生产"), ("2305", "生态"),
    ("24", "生态"),
])
def test_sansheng_defaults(code, expected):
    assert cl.sansheng(code) == expected
    assert cl.load_scheme("ydyh2023").get(code).sansheng == expected


def test_sansheng_overrides_longest_prefix_wins():
    assert cl.sansheng("0901", {"09": "生活"}) == "生活"
    assert cl.sansheng("0901") == "生产"  # the default is untouched
    # an override of 14 does not beat the longer default prefix 1402
    assert cl.sansheng("1401", {"14": "生产"}) == "生产"
    assert cl.sansheng("1402", {"14": "生产"}) == "生态"
    assert cl.sansheng("1402", {"1402": "混合"}) == "混合"
    assert cl.sansheng(101) == "生产"
    assert cl.sansheng(None) == ""
    assert cl.sansheng("R1") == ""
    with pytest.raises(StandardsError):
        cl.sansheng("0101", {"01": "其他"})
    with pytest.raises(StandardsError):
        cl.sansheng("0101", {"0x": "生产"})


def test_sansheng_version():
    v = cl.sansheng_table_version()
    assert isinstance(v, str) and v
    v1 = cl.sansheng_table_version({"09": "生活"})
    assert v1 != v and v1.startswith(v)
    assert cl.sansheng_table_version({"09": "生活"}) == v1
    assert cl.sansheng_table_version({"09": "生产"}) != v1
    assert set(cl.sansheng_classes()) == {"生产", "生活", "生态", "混合"}


@pytest.mark.parametrize(("code", "expected"), [
    ("0701", True), ("0802", True), ("090105", True), ("1003", True), ("1207", True),
    ("1311", True), ("1402", True), ("1507", True), ("16", True), ("060101", True),
    ("0601", False), ("060102", False), ("0101", False), ("0602", False), ("1704", False),
    ("1701", False), ("2301", False), ("1801", False), ("9999", False), (None, False),
])
def test_is_construction(code, expected):
    assert cl.is_construction(code) is expected


def test_construction_group_is_07_to_16_plus_060101(ydyh):
    construction = {c for c, e in ydyh.entries.items() if e.is_construction}
    expected = {c for c in ydyh.entries if 7 <= int(c[:2]) <= 16} | {"060101"}
    assert construction == expected


@pytest.mark.parametrize(("code", "category"), [
    ("0101", "农用地"), ("0201", "农用地"), ("0401", "农用地"), ("0403", "未利用地"),
    ("0602", "农用地"), ("0701", "建设用地"), ("1704", "农用地"), ("1705", "农用地"),
    ("1701", "未利用地"), ("1706", "未利用地"), ("1801", "海洋"), ("24", "海洋"),
    ("2303", "农用地"), ("2302", "未利用地"), ("2307", "未利用地"), ("05", None),
])
def test_category(ydyh, code, category):
    assert ydyh.get(code).category == category


# --------------------------------------------------------------------------- crosswalks

SOURCES = ("gbt21010_2017", "gbt21010_2007", "gb50137_2011")


@pytest.mark.parametrize("source", SOURCES)
def test_crosswalk_targets_exist_in_2023(ydyh, source):
    data = _packaged(f"xwalk_{source}_to_ydyh2023.json")
    assert data["source_scheme"] == source and data["target_scheme"] == "ydyh2023"
    for row in data["rows"]:
        if row["status"] == "ok":
            assert row["target"] in ydyh.entries, row
        else:
            assert row["status"] == "待定"
            assert row.get("target") is None
            assert len(row["candidates"]) >= 2
            for c in row["candidates"]:
                assert c in ydyh.entries, row


@pytest.mark.parametrize("source", SOURCES)
def test_every_legacy_code_is_mapped(source):
    scheme = cl.load_scheme(source)
    xw = cl.load_crosswalk(source)
    for code in scheme.entries:
        m = xw.map(code)
        assert m.status in ("ok", "待定"), code
        assert (m.target is None) == (m.status == "待定")


@pytest.mark.parametrize(("source", "code", "candidates"), [
    ("gbt21010_2017", "0204", {"0204", "0205"}),
    ("gbt21010_2017", "0802", {"0801", "0902"}),
    ("gbt21010_2017", "0810", {"1401", "1402", "1403"}),
    ("gbt21010_2017", "0809", {f"13{i:02d}" for i in range(1, 13)}),
    ("gb50137_2011", "B32", {"0805", "0903"}),
    ("gb50137_2011", "E2", {"01", "02", "03", "04", "06", "2303"}),
    ("gb50137_2011", "E13", {"1704", "1705"}),
    ("gbt21010_2007", "082", {"0801", "0902"}),
])
def test_split_rows_are_pending(source, code, candidates):
    m = cl.load_crosswalk(source).map(code)
    assert m.status == "待定"
    assert m.target is None
    assert set(m.candidates) == candidates


@pytest.mark.parametrize(("source", "code", "target"), [
    # domain.md §2.4
    ("gbt21010_2017", "0101", "0101"), ("gbt21010_2017", "0203", "0203"),
    ("gbt21010_2017", "0303", "0507"), ("gbt21010_2017", "0305", "0303"),
    ("gbt21010_2017", "0403", "0402"), ("gbt21010_2017", "0501", "090101"),
    ("gbt21010_2017", "0505", "0902"), ("gbt21010_2017", "0702", "0703"),
    ("gbt21010_2017", "0803", "0804"), ("gbt21010_2017", "0804", "0802"),
    ("gbt21010_2017", "0903", "1505"), ("gbt21010_2017", "1004", "1207"),
    ("gbt21010_2017", "1006", "0601"), ("gbt21010_2017", "1108", "0504"),
    ("gbt21010_2017", "1109", "1311"), ("gbt21010_2017", "1202", "0602"),
    ("gb50137_2011", "A33", "080403"), ("gb50137_2011", "A35", "0802"),
    ("gb50137_2011", "A7", "1504"), ("gb50137_2011", "B4", "090105"),
    ("gb50137_2011", "M2", "100102"), ("gb50137_2011", "W3", "110103"),
    ("gb50137_2011", "S3", "120801"), ("gb50137_2011", "U32", "1311"),
    ("gb50137_2011", "G2", "1402"), ("gb50137_2011", "H24", "1203"),
    ("gb50137_2011", "E12", "1703"), ("gb50137_2011", "R12", "0702"),
    # by name from §2.2
    ("gbt21010_2007", "011", "0101"), ("gbt21010_2007", "104", "0601"),
    ("gbt21010_2007", "118", "1311"), ("gbt21010_2007", "121", "2301"),
])
def test_ok_rows(source, code, target):
    m = cl.load_crosswalk(source).map(code)
    assert (m.status, m.target, m.candidates) == ("ok", target, [])


def test_crosswalk_prefix_fallback_and_unknown():
    x50 = cl.load_crosswalk("gb50137_2011")
    m = x50.map("R21")  # no R21 row: the R2 row applies (Rx1 住宅 -> 070102)
    assert (m.status, m.target, m.row) == ("ok", "070102", "R2")
    assert x50.map("r11").target == "070101"
    assert x50.map("R22").target == "0702"
    assert x50.map("B21").target == "0902"  # via B2
    assert x50.map("B211").status == "unknown"
    assert x50.map(None).status == "unknown"
    x17 = cl.load_crosswalk("gbt21010_2017")
    assert x17.map("0199").status == "unknown"
    assert x17.map(201).target == "0201"  # numeric column
    assert x17.map("0204").common_parent == "02"
    assert cl.load_crosswalk("gbt21010_2007").map(11).target == "0101"


def test_identity_crosswalk():
    x = cl.load_crosswalk("ydyh2023", "ydyh2023")
    assert x.map("0101").status == "ok" and x.map("0101").target == "0101"
    assert x.map(60101).target == "060101"
    assert x.map("0808").status == "unknown"


def test_unknown_crosswalk_raises():
    with pytest.raises(StandardsError):
        cl.load_crosswalk("ydyh2023", "gb50137_2011")
    with pytest.raises(StandardsError):
        cl.load_scheme("nosuch")


# --------------------------------------------------------------------------- unify

def test_unify_mixed_series():
    s = pd.Series(["0101", 204, " 0802 ", None, "abc", 1006, np.nan, "05H1"],
                  index=[10, 11, 12, 13, 14, 15, 16, 17])
    df = cl.unify(s, "gbt21010_2017")
    assert list(df.columns) == ["mp_code", "mp_name", "mp_status", "mp_candidates"]
    assert list(df.index) == list(s.index)
    assert list(df["mp_status"]) == ["ok", "待定", "待定", "unknown", "unknown", "ok",
                                     "unknown", "待定"]
    assert df.loc[10, "mp_code"] == "0101" and df.loc[10, "mp_name"] == "水田"
    assert df.loc[15, "mp_code"] == "0601" and df.loc[15, "mp_name"] == "农村道路"
    assert df.loc[11, "mp_candidates"] == "0204,0205"
    assert df.loc[12, "mp_candidates"] == "0801,0902"
    assert df.loc[10, "mp_candidates"] == ""
    assert df.loc[14, "mp_candidates"] == ""
    assert pd.isna(df.loc[11, "mp_code"]) and pd.isna(df.loc[13, "mp_code"])


def test_unify_ydyh2023_identity_and_gb50137():
    df = cl.unify(pd.Series([101, "060101", "0808", "2303"]), "ydyh2023")
    assert list(df["mp_status"]) == ["ok", "ok", "unknown", "ok"]
    assert list(df["mp_name"][[0, 1, 3]]) == ["水田", "村道用地", "田坎"]
    df = cl.unify(pd.Series(["R21", "B32", "A33", "Z9"]), "gb50137_2011")
    assert list(df["mp_status"]) == ["ok", "待定", "ok", "unknown"]
    assert list(df["mp_code"][[0, 2]]) == ["070102", "080403"]


def test_unify_large_series_is_correct():
    rng = np.random.default_rng(7)
    values = np.array(["0101", "0204", "1006", "0810", "bad"], dtype=object)
    s = pd.Series(rng.choice(values, 150_000))
    df = cl.unify(s, "gbt21010_2017")
    assert len(df) == 150_000
    counts = df["mp_status"].value_counts()
    assert counts["ok"] == int(s.isin(["0101", "1006"]).sum())
    assert counts["待定"] == int(s.isin(["0204", "0810"]).sum())
    assert counts["unknown"] == int((s == "bad").sum())


def test_unify_empty():
    df = cl.unify(pd.Series([], dtype=object), "gb50137_2011")
    assert len(df) == 0
    assert list(df.columns) == ["mp_code", "mp_name", "mp_status", "mp_candidates"]


# --------------------------------------------------------------------------- versions

def test_version_ids_exposed():
    ids = {d["id"]: d for d in cl.available_schemes()}
    assert set(ids) == {"ydyh2023", "gbt21010_2017", "gbt21010_2007", "gb50137_2011"}
    assert cl.available_schemes()[0]["id"] == "ydyh2023"
    for sid, info in ids.items():
        s = cl.load_scheme(sid)
        assert info["version"] == s.version and info["title"] == s.title
        assert s.version_id == f"{sid}/{s.version}"
        assert s.title and s.source and s.confidence
    xs = {x["source"]: x for x in cl.available_crosswalks()}
    assert set(xs) == set(SOURCES)
    x = cl.load_crosswalk("gb50137_2011")
    assert x.version and x.version_id == xs["gb50137_2011"]["version_id"]


def test_tables_are_cached():
    assert cl.load_scheme("ydyh2023") is cl.load_scheme(" YDYH2023 ")
    assert cl.load_crosswalk("gbt21010_2017") is cl.load_crosswalk("gbt21010_2017", "ydyh2023")


# --------------------------------------------------------------------------- validation

def _classification_tables() -> list[str]:
    """The standards files of kind scheme/crosswalk; other kinds (conflict rules, assessment
    parameters) have validators of their own in their modules."""
    names = []
    for r in STANDARDS.iterdir():
        if r.name.endswith(".json"):
            kind = json.loads(r.read_text(encoding="utf-8")).get("kind")
            if kind in ("scheme", "crosswalk") or r.name.startswith(("ydyh", "gb", "xwalk_")):
                names.append(r.name)
    return sorted(names)


def test_every_scheme_and_crosswalk_is_listed():
    listed = {s["id"] + ".json" for s in cl.available_schemes()}
    listed |= {f"xwalk_{c['source']}_to_{c['target']}.json" for c in cl.available_crosswalks()}
    assert set(_classification_tables()) == listed


@pytest.mark.parametrize("name", _classification_tables())
def test_packaged_tables_validate(name, tmp_path):
    target = tmp_path / name
    target.write_text(STANDARDS.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    data = cl.validate_table_file(target)
    for key in ("id", "version", "title", "source", "confidence"):
        assert data[key]


def _broken(tmp_path: Path, name: str, data: dict) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


def _mutate_ydyh(fn):
    data = _packaged("ydyh2023.json")
    fn(data)
    return data


def _entry(data, code):
    return next(r for r in data["entries"] if r["code"] == code)


@pytest.mark.parametrize(("what", "mutate", "row_text"), [
    ("duplicate code", lambda d: d["entries"].append(dict(_entry(d, "0101"))), "0101"),
    ("missing parent", lambda d: d["entries"].remove(_entry(d, "0601")), "060101"),
    ("bad colour", lambda d: _entry(d, "0205").__setitem__("colour", [256, 0, 0]), "0205"),
    ("colour not per rule", lambda d: _entry(d, "0701").__setitem__("colour", [1, 2, 3]), "0701"),
    ("int code", lambda d: _entry(d, "0102").__setitem__("code", 102), "102"),
    ("bad shape", lambda d: _entry(d, "0103").__setitem__("code", "013"), "013"),
    ("sansheng off rule", lambda d: _entry(d, "1402").__setitem__("sansheng", "生活"), "1402"),
    ("construction flag", lambda d: _entry(d, "0101").__setitem__("is_construction", True),
     "0101"),
    ("missing header", lambda d: d.pop("version"), "version"),
])
def test_validator_rejects_broken_scheme(tmp_path, what, mutate, row_text):
    path = _broken(tmp_path, "broken_ydyh.json", _mutate_ydyh(mutate))
    with pytest.raises(StandardsError) as info:
        cl.validate_table_file(path)
    err = info.value
    assert err.path == str(path)
    assert "broken_ydyh.json" in str(err)
    assert row_text in str(err), (what, str(err))
    assert err.code.startswith("standards.")


def test_validator_rejects_broken_crosswalk(tmp_path):
    data = _packaged("xwalk_gb50137_2011_to_ydyh2023.json")
    next(r for r in data["rows"] if r["source"] == "G2")["target"] = "1499"
    path = _broken(tmp_path, "bad_xwalk.json", data)
    with pytest.raises(StandardsError) as info:
        cl.validate_table_file(path)
    assert "bad_xwalk.json" in str(info.value)
    assert "G2" in str(info.value) and "1499" in str(info.value)

    data = _packaged("xwalk_gb50137_2011_to_ydyh2023.json")
    next(r for r in data["rows"] if r["source"] == "B32")["status"] = "maybe"
    with pytest.raises(StandardsError, match="B32"):
        cl.validate_table_file(_broken(tmp_path, "bad_status.json", data))

    data = _packaged("xwalk_gbt21010_2017_to_ydyh2023.json")
    next(r for r in data["rows"] if r["source"] == "0204")["candidates"] = ["0204", "0299"]
    with pytest.raises(StandardsError, match="0299"):
        cl.validate_table_file(_broken(tmp_path, "bad_cand.json", data))


def test_validator_rejects_bad_json(tmp_path):
    p = tmp_path / "not_json.json"
    p.write_text('{"id": "x", ', encoding="utf-8")
    with pytest.raises(StandardsError) as info:
        cl.validate_table_file(p)
    assert info.value.path == str(p)
    p.write_text('{"id": "a", "id": "b"}', encoding="utf-8")
    with pytest.raises(StandardsError, match="duplicate"):
        cl.validate_table_file(p)
    with pytest.raises(StandardsError):
        cl.validate_table_file(tmp_path / "missing.json")
