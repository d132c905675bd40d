"""CGCS2000 Gauss-Krüger rules (domain.md §4), checked against hand values and against
pyproj's own definition of each EPSG code (the independent route)."""

from __future__ import annotations

import pytest
from pyproj import CRS, Transformer

from multiplan.core import crs as crsmod

GK3_PREFIXED = range(4513, 4534)
GK3_UNPREFIXED = range(4534, 4555)
GK6_PREFIXED = range(4491, 4502)
GK6_UNPREFIXED = range(4502, 4513)
ALL_GK = [*GK6_PREFIXED, *GK6_UNPREFIXED, *GK3_PREFIXED, *GK3_UNPREFIXED]

# CRS.to_dict() goes through a PROJ string and says so; that is the point here
pytestmark = pytest.mark.filterwarnings("ignore:You will likely lose:UserWarning")


# ---------------------------------------------------------------------- domain.md §4 values
@pytest.mark.parametrize("cm, epsg", [(75, 4534), (105, 4544), (108, 4545), (111, 4546),
                                      (120, 4549), (135, 4554)])
def test_unprefixed_epsg_from_central_meridian(cm: int, epsg: int) -> None:
    assert crsmod.epsg_gk3(cm) == epsg
    assert epsg == 4534 + (cm - 75) // 3  # the formula of domain.md §4


def test_zone_37_prefixed() -> None:
    assert crsmod.epsg_gk3(111, prefixed=True) == 4525
    info = crsmod.gk_info(4525)
    assert info is not None
    assert (info.zone, info.central_meridian, info.prefixed, info.degrees) == (37, 111, True, 3)
    assert info.false_easting == 37_500_000


def test_changxing_county() -> None:
    lon = 119.9  # 长兴县
    assert crsmod.zone3_for_longitude(lon) == 40
    assert crsmod.epsg_for_longitude(lon) == 4549
    assert crsmod.epsg_for_longitude(lon, prefixed=True) == 4528
    info = crsmod.gk_info(4528)
    assert info is not None and info.false_easting == 40_500_000
    assert crsmod.gk_info(4549).false_easting == 500_000


@pytest.mark.parametrize("lon, zone", [(73.6, 25), (108.0, 36), (109.49, 36), (109.51, 37),
                                       (118.49, 39), (118.51, 40), (121.4, 40), (134.7, 45)])
def test_zone_is_the_nearest_central_meridian(lon: float, zone: int) -> None:
    assert crsmod.zone3_for_longitude(lon) == zone
    assert abs(lon - 3 * zone) <= 1.5


@pytest.mark.parametrize("cm, prefixed", [(100, False), (72, False), (138, False),
                                          (72, True), (138, True)])
def test_out_of_range_central_meridians_are_refused(cm: int, prefixed: bool) -> None:
    with pytest.raises(ValueError):
        crsmod.epsg_gk3(cm, prefixed)


@pytest.mark.parametrize("epsg", [4490, 4326, 3857, 4512 + 100, 2383])
def test_gk_info_is_none_for_other_crs(epsg: int) -> None:
    assert crsmod.gk_info(epsg) is None


# ---------------------------------------------------------------------- against pyproj
@pytest.mark.parametrize("epsg", ALL_GK)
def test_gk_info_matches_pyproj(epsg: int) -> None:
    info = crsmod.gk_info(epsg)
    assert info is not None and info.epsg == epsg
    params = CRS.from_epsg(epsg).to_dict()
    assert params["proj"] == "tmerc"
    assert params["lon_0"] == info.central_meridian
    assert params["x_0"] == info.false_easting
    assert params["y_0"] == 0
    assert params["k"] == 1
    assert params["lat_0"] == 0
    ell = CRS.from_epsg(epsg).ellipsoid
    assert ell.semi_major_metre == 6378137.0
    assert ell.inverse_flattening == pytest.approx(298.257222101, abs=1e-9)
    # prefixed ⇔ false easting carries the zone number; the degrees follow from the range
    assert info.prefixed == (params["x_0"] > 1_000_000)
    assert info.degrees == (3 if epsg >= 4513 else 6)
    if info.prefixed:
        assert params["x_0"] == info.zone * 1_000_000 + 500_000
    # the datum is CGCS2000
    assert "2000" in CRS.from_epsg(epsg).geodetic_crs.name


@pytest.mark.parametrize("epsg", [*GK3_PREFIXED, *GK3_UNPREFIXED])
def test_gk3_round_trip(epsg: int) -> None:
    info = crsmod.gk_info(epsg)
    assert crsmod.epsg_gk3(info.central_meridian, info.prefixed) == epsg
    # the pair of a zone: same meridian, with and without prefix
    other = crsmod.epsg_gk3(info.central_meridian, not info.prefixed)
    assert CRS.from_epsg(other).to_dict()["lon_0"] == info.central_meridian


def test_prefixed_and_unprefixed_differ_only_by_false_easting() -> None:
    t = Transformer.from_crs(4528, 4549, always_xy=True)
    x, y = t.transform(40_490_000.0, 3_430_000.0)
    assert x == pytest.approx(490_000.0, abs=1e-6) and y == pytest.approx(3_430_000.0, abs=1e-6)


def test_crs_label_and_lonlat_center() -> None:
    assert crsmod.crs_label(4549).startswith("EPSG:4549 CGCS2000")
    assert crsmod.crs_label(None) == "未知 / unknown"
    lon, lat = crsmod.lonlat_center(CRS.from_epsg(4549), (490_000, 3_430_000, 490_200,
                                                            3_430_200))
    elon, elat = Transformer.from_crs(4549, 4490, always_xy=True).transform(490_100,
                                                                              3_430_100)
    assert (lon, lat) == pytest.approx((elon, elat), abs=1e-12)
    assert 119.8 < lon < 120 and 30.9 < lat < 31.1


# ---------------------------------------------------------------------- guessing from coordinates
LONLAT = (119.90, 31.00, 119.95, 31.05)
UNPREFIXED = (490_000.0, 3_430_000.0, 490_600.0, 3_430_200.0)
PREFIXED_40 = (40_490_000.0, 3_430_000.0, 40_490_600.0, 3_430_200.0)
PREFIXED_37 = (37_430_000.0, 2_350_000.0, 37_480_000.0, 2_400_000.0)  # 湛江, zone 37
PREFIXED_6DEG_20 = (20_400_000.0, 3_400_000.0, 20_500_000.0, 3_500_000.0)


def test_guess_lonlat() -> None:
    g = crsmod.guess_from_bounds(LONLAT)
    assert (g.kind, g.epsg) == ("geographic", 4490)
    assert "EPSG:4490" in g.zh and "EPSG:4490" in g.en


@pytest.mark.parametrize("bounds, kind, epsg", [
    (PREFIXED_40, "gk3_prefixed", 4528),
    (PREFIXED_37, "gk3_prefixed", 4525),
    (PREFIXED_6DEG_20, "gk6_prefixed", 4498),
])
def test_guess_prefixed(bounds: tuple, kind: str, epsg: int) -> None:
    g = crsmod.guess_from_bounds(bounds, 4549)
    assert (g.kind, g.epsg) == (kind, epsg)
    zone = int(bounds[0] // 1_000_000)
    assert f"EPSG:{epsg}" in g.zh and f"EPSG:{epsg}" in g.en
    assert str(zone) in g.zh and "prefix" in g.en
    # the guessed CRS really has that false easting
    assert CRS.from_epsg(epsg).to_dict()["x_0"] == zone * 1_000_000 + 500_000


def test_guess_unprefixed_names_the_project_zone_only_when_it_can() -> None:
    g = crsmod.guess_from_bounds(UNPREFIXED, 4549)
    assert (g.kind, g.epsg) == ("gk_unprefixed", 4549)
    assert "EPSG:4549" in g.zh and "EPSG:4549" in g.en
    assert crsmod.guess_from_bounds(UNPREFIXED).epsg is None
    # a prefixed project cannot be the answer for unprefixed coordinates
    assert crsmod.guess_from_bounds(UNPREFIXED, 4528).epsg is None


@pytest.mark.parametrize("bounds", [
    (-5_000_000.0, -3_000_000.0, -4_000_000.0, -2_000_000.0),  # negative
    (39_900_000.0, 3_430_000.0, 40_100_000.0, 3_430_200.0),  # spans two zone prefixes
    (13_350_000.0, -5.0, 13_360_000.0, 3_640_000.0),  # negative northing
    (200.0, 100.0, 400.0, 300.0),  # local engineering coordinates
])
def test_guess_unknown(bounds: tuple) -> None:
    g = crsmod.guess_from_bounds(bounds, 4549)
    assert (g.kind, g.epsg) == ("unknown", None)


# ---------------------------------------------------------------------- declared vs coordinates
def test_declared_unprefixed_but_prefixed_coordinates() -> None:
    p = crsmod.declared_crs_problem(CRS.from_epsg(4549), PREFIXED_40, 4549)
    assert p is not None and (p.kind, p.epsg) == ("gk3_prefixed", 4528)
    assert "EPSG:4549" in p.zh and "带号" in p.zh and "EPSG:4528" in p.zh
    assert "EPSG:4549" in p.en and "prefix" in p.en and "EPSG:4528" in p.en


def test_declared_prefixed_but_unprefixed_coordinates() -> None:
    p = crsmod.declared_crs_problem(CRS.from_epsg(4528), UNPREFIXED, 4549)
    assert p is not None and p.epsg == 4549
    assert "EPSG:4549" in p.zh and "EPSG:4549" in p.en and "no prefix" in p.en


def test_declared_projected_but_lonlat_coordinates() -> None:
    p = crsmod.declared_crs_problem(CRS.from_epsg(4549), LONLAT, 4549)
    assert p is not None and (p.kind, p.epsg) == ("geographic", 4490)


def test_declared_geographic_but_projected_coordinates() -> None:
    p = crsmod.declared_crs_problem(CRS.from_epsg(4490), UNPREFIXED, 4549)
    assert p is not None and (p.kind, p.epsg) == ("gk_unprefixed", 4549)


def test_declared_geographic_outside_china() -> None:
    p = crsmod.declared_crs_problem(CRS.from_epsg(4326), (0.001, 0.001, 0.002, 0.002), 4549)
    assert p is not None and p.kind == "outside_china" and p.epsg is None
    assert "中国范围之外" in p.zh and "outside China" in p.en


def test_declared_prefixed_zone_of_another_prefix() -> None:
    # zone 37 coordinates declared as zone 40
    p = crsmod.declared_crs_problem(CRS.from_epsg(4528), PREFIXED_37, 4549)
    assert p is not None and p.epsg == 4525


@pytest.mark.parametrize("epsg, bounds", [
    (4549, UNPREFIXED), (4528, PREFIXED_40), (4490, LONLAT), (4326, LONLAT),
    (4525, PREFIXED_37),
    (3857, (13_347_000.0, 3_632_000.0, 13_350_000.0, 3_635_000.0)),  # web mercator, 长兴
])
def test_fitting_declarations_are_accepted(epsg: int, bounds: tuple) -> None:
    assert crsmod.declared_crs_problem(CRS.from_epsg(epsg), bounds, 4549) is None


def test_a_wrong_unprefixed_zone_cannot_be_told_from_coordinates() -> None:
    # Known limit: unprefixed coordinates of zone 40 declared as zone 36 (CM 108°E) still
    # fall inside China, so nothing looks wrong; the later 'far from the other layers'
    # warning of the import is what catches it.
    assert crsmod.declared_crs_problem(CRS.from_epsg(4545), UNPREFIXED, 4549) is None
