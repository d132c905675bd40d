"""Combination of single-factor grades, exactly as domain.md §6.3 (matrices are data).

All functions work on arrays of grades (``uint8``, 1–5, 0 = no data) and take the merged
parameter dict, so they can be tested cell by cell without any raster.

* 农业: 土地 × 水 matrix → (× 光热 matrix when a 光热 grade is given) → the ordered
  agriculture penalties → patch correction → 5 → 3 (or 2) classes.
* 城镇: 土地 × 水 matrix → the ordered urban penalties → patch correction → classes.
* 生态: level = the higher importance (lower grade number) of every service-importance
  and fragility grade → × 集中度 grade through the S5 matrix → 极重要 / 重要 / 一般.
  Agriculture and urban suitability are evaluated only outside 极重要 (class code 4 there).

A penalty step whose factor is missing (``None``) is skipped; the run record says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .grading import (
    apply_action,
    apply_modifier,
    apply_penalty,
    grade,
    interval_index,
    lookup_matrix,
    map_classes,
)

ECO_EXCLUDED = 4  # suitability class code inside 生态保护极重要区


# --------------------------------------------------------------------------- land
def agriculture_land(slope: np.ndarray, params: dict[str, Any],
                     silt: np.ndarray | None = None) -> np.ndarray:
    g = grade(slope, params["factors"]["slope_agriculture"])
    if silt is not None:
        g = apply_modifier(g, silt, params["modifiers"]["soil_silt"])
    return g


def urban_land(slope: np.ndarray, elevation: np.ndarray, relief: np.ndarray | None,
               params: dict[str, Any]) -> np.ndarray:
    g = grade(slope, params["factors"]["slope_urban"])
    g = apply_modifier(g, elevation, params["modifiers"]["elevation"])
    if relief is not None:
        g = apply_modifier(g, relief, params["modifiers"]["relief"])
    return g


# --------------------------------------------------------------------------- penalties
def penalty_codes(step: dict[str, Any], codes: dict[str, np.ndarray | None]) -> np.ndarray | None:
    """The per-cell code a penalty step tests: the factor's own code, or for a
    ``count_of`` step how many of the listed factors sit at ``count_grade``."""
    if "count_of" in step:
        present = [codes.get(k) for k in step["count_of"] if codes.get(k) is not None]
        if not present:
            return None
        total = np.zeros(present[0].shape, dtype="uint8")
        for c in present:
            total += (c == step.get("count_grade", 5)).astype("uint8")
        return total
    return codes.get(step["factor"])


def apply_penalties(current: np.ndarray, steps: list[dict[str, Any]],
                    codes: dict[str, np.ndarray | None]) -> np.ndarray:
    """Apply the penalty steps in order (clamped after each); skip missing factors."""
    out = current
    for step in steps:
        c = penalty_codes(step, codes)
        if c is None:
            continue
        out = apply_penalty(out, step, c)
    return out


def agriculture_grade(land: np.ndarray, water: np.ndarray, params: dict[str, Any],
                      codes: dict[str, np.ndarray | None] | None = None) -> np.ndarray:
    """农业 5-level grade before the patch correction."""
    codes = codes or {}
    m = params["matrices"]
    g = lookup_matrix(land, water, m["agriculture_land_water"]["table"])
    lh = codes.get("light_heat")
    if lh is not None:
        lh = np.where(g > 0, lh, 0)
        g = np.where(lh > 0, lookup_matrix(g, lh, m["agriculture_light_heat"]["table"]), g)
    return apply_penalties(g.astype("uint8"), params["penalties"]["agriculture"], codes)


def urban_grade(land: np.ndarray, water: np.ndarray, params: dict[str, Any],
                codes: dict[str, np.ndarray | None] | None = None) -> np.ndarray:
    """城镇 5-level grade before the patch correction."""
    g = lookup_matrix(land, water, params["matrices"]["urban_land_water"]["table"])
    return apply_penalties(g, params["penalties"]["urban"], codes or {})


# --------------------------------------------------------------------------- ecology
def ecology_level(grades: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """The higher importance (lowest grade number) over all service/fragility grades;
    a cell no layer grades (0 everywhere) is 5 (低)."""
    out = np.full(shape, 5, dtype="uint8")
    for g in grades:
        g = np.asarray(g)
        valid = (g >= 1) & (g <= 5)
        out = np.where(valid, np.minimum(out, g), out).astype("uint8")
    return out


def concentration_grade(area_km2: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    return grade(area_km2, params["factors"]["concentration"])


def ecology_importance(level: np.ndarray, conc: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """极重要 1 / 重要 2 / 一般 3 from the level × 集中度 matrix (0 stays 0)."""
    return lookup_matrix(level, conc, params["matrices"]["ecology_concentration"]["table"])


# --------------------------------------------------------------------------- patches
def compactness_action(comp: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Index of the compactness action per value (NaN → −1: no correction)."""
    t = params["concentration"]["compactness"]
    c = np.asarray(comp, dtype="float64")
    idx = interval_index(c, t["breaks"], t["closed"]).astype("int16")
    idx[~np.isfinite(c)] = -1
    return idx


def apply_compactness(current: np.ndarray, action_idx: np.ndarray,
                      params: dict[str, Any]) -> np.ndarray:
    """Correct grades by each cell's patch action index (−1 = none); clamp to 1–5."""
    out = current
    for i, action in enumerate(params["concentration"]["compactness"]["actions"]):
        out = np.where(action_idx == i, apply_action(current, action_idx == i, action), out)
    return out.astype("uint8")


def contiguity_grade(area_mu: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    terrain = params["concentration"]["agriculture"]["terrain"]
    return grade(area_mu, params["factors"][f"contiguity_{terrain}"])


# --------------------------------------------------------------------------- classes
def suitability_classes(grade5: np.ndarray, params: dict[str, Any],
                        eco_excluded: np.ndarray | None = None) -> np.ndarray:
    """5-level grade → class codes (1 适宜, 2 一般适宜, 3 不适宜; 4 in 生态保护极重要区)."""
    scheme = params["classes"]["scheme"]
    out = map_classes(grade5, params["classes"]["suitability"][scheme])
    if eco_excluded is not None:
        out = np.where(eco_excluded, ECO_EXCLUDED, out).astype("uint8")
    return out


def contiguity_classes(grade5: np.ndarray, contiguity: np.ndarray, params: dict[str, Any],
                       eco_excluded: np.ndarray | None = None) -> np.ndarray:
    """The S5 reference matrix 农业承载能力 × 地块连片度 → class codes (two-class scheme:
    一般适宜 goes where the scheme's mapping sends grade 3)."""
    cls = lookup_matrix(grade5, contiguity,
                        params["matrices"]["agriculture_contiguity"]["table"])
    if params["classes"]["scheme"] == "two":
        to = int(params["classes"]["suitability"]["two"]["3"])  # where 一般适宜 grades go
        cls = np.where(cls == 2, to, cls).astype("uint8")
    if eco_excluded is not None:
        cls = np.where(eco_excluded, ECO_EXCLUDED, cls).astype("uint8")
    return cls
