"""承载规模 (carrying scale) per township, by the short-board rule (domain.md §6.4, §6.4a).

For each township (and the county as their sum):

* 可承载耕地规模 = min(land-limited, water-limited): land = area of the farmland classes of
  农业生产适宜性; water = agriculture water ÷ 综合灌溉定额 (m³/亩; 15 亩 = 1 ha);
* 可承载人口 = urban water ÷ 人均城镇用水量;
* 可承载城镇建设用地规模 = min(land-limited, water-limited): land = area of the urban classes
  of 城镇建设适宜性 outside the excluded control lines; water = 可承载人口 × 人均城镇建设用地;
* current farmland / urban construction land / population against them → 超载 where the
  current value exceeds the carrying scale.

The county's water (用水总量控制指标, by sector) is split among townships by the sum of
the water-modulus factor over each (or by area), unless a township's own values are given.
Everything here works on the per-township sums the raster passes produce, so it is cheap
and can be recomputed for scenarios.
"""

from __future__ import annotations

import copy
from typing import Any

MU_PER_HA = 15.0

REQUIRED = ("water_by_sector_m3", "irrigation_quota_m3_per_mu", "urban_water_m3_per_capita",
            "urban_land_m2_per_capita")


def missing_parameters(cap: dict[str, Any]) -> list[str]:
    out = [k for k in REQUIRED if cap.get(k) in (None, {}, [])]
    w = cap.get("water_by_sector_m3") or {}
    if w and not all(k in w for k in ("agriculture", "urban")):
        out.append("water_by_sector_m3.agriculture/urban")
    return out


def _split_weights(units: list[dict[str, Any]], how: str) -> list[float]:
    if how == "modulus":
        tot = sum(u.get("modulus_m3", 0.0) for u in units)
        if tot > 0:
            return [u.get("modulus_m3", 0.0) / tot for u in units]
    tot = sum(u["cells"] for u in units)
    return [u["cells"] / tot if tot else 0.0 for u in units]


def _min_limit(land: float, water: float | None) -> tuple[float, str]:
    if water is None:
        return land, "land"
    return (land, "land") if land <= water else (water, "water")


def carrying_scale(units: list[dict[str, Any]], cap: dict[str, Any],
                   cell_area_m2: float) -> dict[str, Any]:
    """Rows per unit plus a county total.

    ``units``: ``[{"name", "cells", "farmland_cells", "urban_cells", "modulus_m3",
    "current_farmland_ha", "current_urban_ha"}]`` (current values may be None).
    """
    missing = missing_parameters(cap)
    cell_ha = cell_area_m2 / 10_000.0
    weights = _split_weights(units, cap.get("water_split", "modulus"))
    sector = cap.get("water_by_sector_m3") or {}
    own = cap.get("water_by_township_m3") or {}
    quota = cap.get("irrigation_quota_m3_per_mu")
    w_pc = cap.get("urban_water_m3_per_capita")
    land_pc = cap.get("urban_land_m2_per_capita")
    pop_now = cap.get("current_population") or {}
    rows = []
    for u, wt in zip(units, weights, strict=True):
        name = u["name"]
        t_own = own.get(name, {}) if isinstance(own, dict) else {}
        agri_w = t_own.get("agriculture", sector.get("agriculture", 0.0) * wt if sector else None)
        urban_w = t_own.get("urban", sector.get("urban", 0.0) * wt if sector else None)
        farm_land = u["farmland_cells"] * cell_ha
        farm_water = (agri_w / quota / MU_PER_HA) if (agri_w is not None and quota) else None
        farm_cap, farm_lim = _min_limit(farm_land, farm_water)
        pop_cap = (urban_w / w_pc) if (urban_w is not None and w_pc) else None
        urb_land = u["urban_cells"] * cell_ha
        urb_water = (pop_cap * land_pc / 10_000.0) if (pop_cap is not None and land_pc) else None
        urb_cap, urb_lim = _min_limit(urb_land, urb_water)
        cur_f = u.get("current_farmland_ha")
        cur_u = u.get("current_urban_ha")
        cur_p = pop_now.get(name)
        rows.append({
            "unit": name,
            "water_agriculture_m3": agri_w, "water_urban_m3": urban_w,
            "farmland_land_limited_ha": farm_land, "farmland_water_limited_ha": farm_water,
            "farmland_carrying_ha": farm_cap, "farmland_limited_by": farm_lim,
            "farmland_current_ha": cur_f,
            "farmland_overload": (cur_f > farm_cap) if cur_f is not None else None,
            "population_carrying": pop_cap, "population_current": cur_p,
            "population_overload": (cur_p > pop_cap) if (cur_p is not None
                                                         and pop_cap is not None) else None,
            "urban_land_limited_ha": urb_land, "urban_water_limited_ha": urb_water,
            "urban_carrying_ha": urb_cap, "urban_limited_by": urb_lim,
            "urban_current_ha": cur_u,
            "urban_overload": (cur_u > urb_cap) if cur_u is not None else None,
        })
    rows.append(_total(rows))
    rows = [{k: _plain(v) for k, v in r.items()} for r in rows]
    return {"computed": not missing, "missing": missing, "rows": rows,
            "unit_kind": cap.get("unit_of_report", "township")}


def _plain(v: Any) -> Any:
    """numpy scalars → Python (the rows go into JSON)."""
    if isinstance(v, (bool, str)) or v is None:
        return v
    if hasattr(v, "item"):
        return v.item()
    return v


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def s(key: str) -> float | None:
        vals = [r[key] for r in rows]
        return None if any(v is None for v in vals) else float(sum(vals))

    t: dict[str, Any] = {"unit": "全县"}
    for key in ("water_agriculture_m3", "water_urban_m3", "farmland_land_limited_ha",
                "farmland_water_limited_ha", "farmland_carrying_ha", "farmland_current_ha",
                "population_carrying", "population_current", "urban_land_limited_ha",
                "urban_water_limited_ha", "urban_carrying_ha", "urban_current_ha"):
        t[key] = s(key)
    # the county's own minimum, not the sum of township minima
    t["farmland_carrying_ha"], t["farmland_limited_by"] = _min_limit(
        t["farmland_land_limited_ha"] or 0.0, t["farmland_water_limited_ha"])
    t["urban_carrying_ha"], t["urban_limited_by"] = _min_limit(
        t["urban_land_limited_ha"] or 0.0, t["urban_water_limited_ha"])
    for cur, capk, flag in (("farmland_current_ha", "farmland_carrying_ha", "farmland_overload"),
                            ("urban_current_ha", "urban_carrying_ha", "urban_overload"),
                            ("population_current", "population_carrying",
                             "population_overload")):
        t[flag] = (t[cur] > t[capk]) if (t[cur] is not None and t[capk] is not None) else None
    return t


def with_scenarios(units: list[dict[str, Any]], cap: dict[str, Any],
                   cell_area_m2: float) -> dict[str, Any]:
    """The current scale plus one per scenario (``{"id", "zh", …overrides}``)."""
    out = {"current": carrying_scale(units, cap, cell_area_m2), "scenarios": {}}
    for sc in cap.get("scenarios", []):
        c = copy.deepcopy(cap)
        c.update({k: v for k, v in sc.items() if k not in ("id", "zh", "en")})
        res = carrying_scale(units, c, cell_area_m2)
        res["zh"] = sc.get("zh", sc["id"])
        out["scenarios"][sc["id"]] = res
    return out
