"""CGCS2000 / Gauss-Krüger CRS discipline.

Facts (domain.md §4): CGCS2000 geographic is EPSG:4490. 3° Gauss-Krüger zones:
with zone prefix EPSG 4513–4533 = zones 25–45 (false easting zone×10⁶+500 000);
without prefix EPSG 4534–4554 = central meridians 75°E…135°E (false easting 500 000).
6° zones: prefixed 4491–4501 (zones 13–23), unprefixed 4502–4512.

A project uses one 3° zone chosen from the county's central longitude and one convention
(prefixed or not), recorded in its settings. Sources are checked against their
coordinates so that a missing or wrong ``.prj`` never produces a silent result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyproj import CRS, Transformer

CGCS2000_GEOGRAPHIC = 4490

# China's rough envelope in lon/lat, used to sanity-check a declared CRS.
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)


def zone3_for_longitude(lon: float) -> int:
    """3° zone number whose central meridian (3×zone) is nearest to ``lon``."""
    return math.floor(lon / 3.0 + 0.5)


def epsg_gk3(central_meridian: int, prefixed: bool = False) -> int:
    if central_meridian % 3:
        raise ValueError(f"not a 3° central meridian: {central_meridian}")
    if prefixed:
        zone = central_meridian // 3
        if not 25 <= zone <= 45:
            raise ValueError(f"3° zone {zone} outside EPSG 4513–4533")
        return 4513 + zone - 25
    if not 75 <= central_meridian <= 135:
        raise ValueError(f"central meridian {central_meridian} outside EPSG 4534–4554")
    return 4534 + (central_meridian - 75) // 3


def epsg_for_longitude(lon: float, prefixed: bool = False) -> int:
    return epsg_gk3(3 * zone3_for_longitude(lon), prefixed)


@dataclass(frozen=True)
class GKInfo:
    epsg: int
    degrees: int  # 3 or 6
    prefixed: bool
    zone: int
    central_meridian: int

    @property
    def false_easting(self) -> float:
        return self.zone * 1_000_000 + 500_000 if self.prefixed else 500_000.0


def gk_info(epsg: int) -> GKInfo | None:
    """Describe a CGCS2000 Gauss-Krüger EPSG code, or None if it is not one."""
    if 4513 <= epsg <= 4533:
        zone = 25 + epsg - 4513
        return GKInfo(epsg, 3, True, zone, 3 * zone)
    if 4534 <= epsg <= 4554:
        cm = 75 + 3 * (epsg - 4534)
        return GKInfo(epsg, 3, False, cm // 3, cm)
    if 4491 <= epsg <= 4501:
        zone = 13 + epsg - 4491
        return GKInfo(epsg, 6, True, zone, 6 * zone - 3)
    if 4502 <= epsg <= 4512:
        cm = 75 + 6 * (epsg - 4502)
        return GKInfo(epsg, 6, False, (cm + 3) // 6, cm)
    return None


def to_crs(value: int | str | CRS) -> CRS:
    if isinstance(value, CRS):
        return value
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return CRS.from_epsg(int(value))
    return CRS.from_user_input(value)


def crs_label(crs: CRS | int | None) -> str:
    if crs is None:
        return "未知 / unknown"
    crs = to_crs(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} {crs.name}" if epsg else crs.name


@dataclass(frozen=True)
class CrsGuess:
    """What the coordinates themselves suggest."""

    #: "geographic" | "gk3_prefixed" | "gk6_prefixed" | "gk_unprefixed" | "unknown" |
    #: "outside_china" (only from declared_crs_problem)
    kind: str
    epsg: int | None
    zh: str
    en: str


def guess_from_bounds(bounds: tuple[float, float, float, float],
                      project_epsg: int | None = None) -> CrsGuess:
    """Guess the CRS family from coordinate ranges alone (no .prj needed).

    lon/lat range → CGCS2000 geographic (EPSG:4490; WGS84 cannot be told apart);
    x ≈ zone×10⁶+500 000 → prefixed GK, zone from the millions digit;
    x within 0–1 000 000 and y a plausible northing → unprefixed GK of unknown zone
    (the project's zone is the likely one).
    """
    minx, miny, maxx, maxy = bounds
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
        return CrsGuess("geographic", CGCS2000_GEOGRAPHIC,
                        "坐标是经纬度，可能为 EPSG:4490（CGCS2000 地理坐标）",
                        "coordinates are longitude/latitude, likely EPSG:4490 (CGCS2000)")
    northing_ok = 0 <= miny and maxy <= 10_000_000
    zone_lo, zone_hi = int(minx // 1_000_000), int(maxx // 1_000_000)
    if northing_ok and zone_lo == zone_hi and 13 <= zone_lo <= 45:
        zone = zone_lo
        if 25 <= zone <= 45:
            epsg = 4513 + zone - 25
            return CrsGuess("gk3_prefixed", epsg,
                            f"X 坐标带有带号 {zone}（约 {zone}×10⁶+500000），"
                            f"可能为 EPSG:{epsg}（CGCS2000 3°带 {zone} 带，含带号）",
                            f"x carries zone prefix {zone}, likely EPSG:{epsg} "
                            f"(CGCS2000 3° GK zone {zone}, prefixed)")
        epsg = 4491 + zone - 13
        return CrsGuess("gk6_prefixed", epsg,
                        f"X 坐标带有带号 {zone}，可能为 EPSG:{epsg}（CGCS2000 6°带，含带号）",
                        f"x carries zone prefix {zone}, likely EPSG:{epsg} "
                        f"(CGCS2000 6° GK, prefixed)")
    if northing_ok and 0 <= minx and maxx <= 1_000_000 and maxy > 100_000:
        info = gk_info(project_epsg) if project_epsg else None
        if info is not None and info.prefixed:
            info = None
        epsg = info.epsg if info else None
        zh = "X 坐标约为 500000（不含带号的高斯-克吕格投影）"
        en = "x is around 500 000 (Gauss-Krüger without zone prefix)"
        if epsg:
            zh += f"，可能为项目所用的 EPSG:{epsg}"
            en += f", likely the project's EPSG:{epsg}"
        return CrsGuess("gk_unprefixed", epsg, zh, en)
    return CrsGuess("unknown", None, "无法从坐标判断坐标系", "the coordinates do not reveal the CRS")


def lonlat_center(crs: CRS, bounds: tuple[float, float, float, float]) -> tuple[float, float]:
    minx, miny, maxx, maxy = bounds
    t = Transformer.from_crs(crs, CRS.from_epsg(CGCS2000_GEOGRAPHIC), always_xy=True)
    lon, lat = t.transform((minx + maxx) / 2, (miny + maxy) / 2)
    return float(lon), float(lat)


def outside_china(lonlat_bounds: tuple[float, float, float, float]) -> CrsGuess | None:
    """A guess saying the lon/lat box lies outside China, or None if its centre is inside."""
    minx, miny, maxx, maxy = lonlat_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    if CHINA_LON[0] <= lon <= CHINA_LON[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]:
        return None
    return CrsGuess("outside_china", None,
                    f"坐标（中心约 经度 {lon:.4f}°，纬度 {lat:.4f}°）位于中国范围之外",
                    f"the coordinates (centre about {lon:.4f}°E, {lat:.4f}°N) lie outside "
                    f"China")


def declared_crs_problem(declared: CRS, bounds: tuple[float, float, float, float],
                         project_epsg: int | None = None) -> CrsGuess | None:
    """Return a guess describing why ``declared`` does not fit the coordinates, or None.

    Checks: a geographic CRS must hold lon/lat values; a CGCS2000 GK CRS must have x near its
    false easting (prefix vs no prefix); any CRS must put the data inside China.
    """
    guess = guess_from_bounds(bounds, project_epsg)
    if declared.is_geographic:
        if guess.kind != "geographic":
            return guess
        return outside_china(bounds)
    epsg = declared.to_epsg()
    info = gk_info(epsg) if epsg else None
    if info is not None:
        fe = info.false_easting
        minx, _, maxx, _ = bounds
        # a zone spans at most a few hundred km either side of the central meridian
        if not (fe - 600_000 <= minx and maxx <= fe + 600_000):
            if guess.kind == "gk_unprefixed" and info.prefixed:
                epsg2 = epsg_gk3(info.central_meridian, False) if info.degrees == 3 else None
                if epsg2:
                    return CrsGuess("gk_unprefixed", epsg2,
                                    f"声明为含带号的 EPSG:{epsg}，但 X 坐标约为 500000；"
                                    f"可能为不含带号的 EPSG:{epsg2}",
                                    f"declared EPSG:{epsg} (prefixed) but x is around 500 000; "
                                    f"likely EPSG:{epsg2} (no prefix)")
            if guess.kind in ("gk3_prefixed", "gk6_prefixed") and not info.prefixed:
                return CrsGuess(guess.kind, guess.epsg,
                                f"声明为不含带号的 EPSG:{epsg}，但 X 坐标带有带号；" + guess.zh,
                                f"declared EPSG:{epsg} (no prefix) but x carries a zone "
                                f"prefix; " + guess.en)
            return guess
    try:
        lon, lat = lonlat_center(declared, bounds)
    except Exception:  # noqa: BLE001 — any projection failure means "does not fit"
        return guess
    if not (CHINA_LON[0] <= lon <= CHINA_LON[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]):
        return guess if guess.kind != "unknown" else outside_china((lon, lat, lon, lat))
    return None
