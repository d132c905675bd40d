"""The 双评价 pipeline: three windowed passes over one grid, outputs, run record.

Pass 1 (block + halo): read and align every factor, compute slope (Horn), relief (moving
window), THI, travel time; grade each factor; combine 土地 × 水 and apply the ordered
penalties for 农业 and 城镇; take the ecological level; label ecological patches.
Between passes the patch labels of all blocks are joined (see :mod:`.patches`).
Pass 2: 生态保护重要性 from level × patch concentration; mask 生态保护极重要区 out of
agriculture and urban and label their patches. Pass 3: patch correction (compactness) and
the 5 → 3 (or 2) class mapping; zonal counts by township and plan zone; per-feature counts
for the plan check. Then 承载规模, the outputs (COG under ``rasters/assessment/``,
registered as layers of role ``assessment_result``), the findings (rows of the conflict
register) and the run record, in that order — the record is written last, so an
interrupted run leaves the gate false.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from multiplan.core.errors import ProjectError
from multiplan.core.layers import LayerRecord
from multiplan.core.tasks import Task, ensure_task

from . import combine as cb
from .capacity import with_scenarios
from .engine import BlockReader, OutputRaster, default_workers, run_blocks, to_cog
from .factors import relief as relief_fn
from .factors import relief_window, slope_horn, thi, travel_time_hours, window_offsets
from .grading import grade, modal_grade
from .grid import Block, Grid, RasterInput, VectorInput, make_grid
from .inputs import Resolved, file_sha256, input_fingerprints, resolve_inputs
from .params import fingerprint, project_parameters, rule_file_info
from .patches import PatchAccumulator, PatchResult
from .plancheck import (
    FeatureSet,
    build_findings,
    findings_frame,
    rule_roles,
    select_features,
    store_findings,
)
from .records import insert_run, latest_run

OUTPUT_DIR = "rasters/assessment"
M2_PER_MU = 10_000.0 / 15.0


@dataclass(frozen=True)
class OutputSpec:
    key: str
    layer: str
    file: str
    dtype: str
    legend: str  # continuous | grade | eco | suitability
    zh: str
    en: str
    unit: str = ""


OUTPUT_SPECS: dict[str, OutputSpec] = {s.key: s for s in [
    OutputSpec("slope", "双评价_坡度", "slope.tif", "float32", "continuous", "坡度", "slope", "°"),
    OutputSpec("relief", "双评价_地形起伏度", "relief.tif", "float32", "continuous", "地形起伏度",
               "relief", "m"),
    OutputSpec("agri_land", "双评价_农业土地资源", "agri_land.tif", "uint8", "grade",
               "农业土地资源等级", "agriculture land-resource grade"),
    OutputSpec("urban_land", "双评价_城镇土地资源", "urban_land.tif", "uint8", "grade",
               "城镇土地资源等级", "urban land-resource grade"),
    OutputSpec("precip_grade", "双评价_降水量分级", "precipitation_grade.tif", "uint8", "grade",
               "降水量分级", "precipitation grade"),
    OutputSpec("aridity_grade", "双评价_干旱指数分级", "aridity_grade.tif", "uint8", "grade",
               "干旱指数分级", "aridity grade"),
    OutputSpec("modulus_grade", "双评价_用水总量控制指标模数分级", "water_modulus_grade.tif",
               "uint8", "grade", "用水总量控制指标模数分级", "water-quota modulus grade"),
    OutputSpec("total_modulus_grade", "双评价_水资源总量模数分级", "water_total_modulus_grade.tif",
               "uint8", "grade", "水资源总量模数分级", "total water-resource modulus grade"),
    OutputSpec("thi_grade", "双评价_气候舒适度", "climate_comfort.tif", "uint8", "grade",
               "气候舒适度（温湿指数）分级", "climate comfort (THI) grade"),
    OutputSpec("location_grade", "双评价_区位优势度", "location.tif", "uint8", "grade",
               "区位优势度分级", "location advantage grade"),
    OutputSpec("eco_level", "双评价_生态保护等级", "eco_level.tif", "uint8", "grade",
               "生态保护等级", "ecological protection level"),
    OutputSpec("eco_importance", "双评价_生态保护重要性", "eco_importance.tif", "uint8", "eco",
               "生态保护重要性", "ecological protection importance"),
    OutputSpec("agri_grade", "双评价_农业生产适宜性等级", "agriculture_grade.tif", "uint8",
               "grade", "农业生产适宜性等级（5 级）", "agricultural production grade (5 levels)"),
    OutputSpec("urban_grade", "双评价_城镇建设适宜性等级", "urban_grade.tif", "uint8", "grade",
               "城镇建设适宜性等级（5 级）", "urban construction grade (5 levels)"),
    OutputSpec("agri_suitability", "双评价_农业生产适宜性", "agriculture_suitability.tif", "uint8",
               "suitability", "农业生产适宜性", "agricultural production suitability"),
    OutputSpec("urban_suitability", "双评价_城镇建设适宜性", "urban_suitability.tif", "uint8",
               "suitability", "城镇建设适宜性", "urban construction suitability"),
]}

#: Results whose class areas are counted by township and plan zone.
STAT_KEYS = ("eco_importance", "agri_suitability", "urban_suitability", "eco_level",
             "agri_grade", "urban_grade")
NC = 8  # class code slots per statistic
#: Result names used by the plan-check rules → output keys.
RESULT_KEYS = {"eco_importance": "eco_importance", "agriculture_suitability": "agri_suitability",
               "urban_suitability": "urban_suitability"}

GRADE_COLOURS = {1: (26, 150, 65, 255), 2: (166, 217, 106, 255), 3: (255, 255, 191, 255),
                 4: (253, 174, 97, 255), 5: (215, 25, 28, 255)}
ECO_COLOURS = {1: (0, 100, 0, 255), 2: (120, 190, 90, 255), 3: (235, 235, 205, 255)}
SUIT_COLOURS = {1: (56, 168, 0, 255), 2: (255, 211, 127, 255), 3: (230, 76, 0, 255),
                4: (170, 170, 170, 255)}


def legend(params: dict[str, Any], kind: str) -> dict[int, str]:
    """Class code → Chinese label for a legend kind."""
    if kind == "grade":
        return {int(k): v for k, v in params["grade_labels"]["level"].items()}
    if kind == "eco":
        return {int(k): v["zh"] for k, v in params["classes"]["ecology"]["codes"].items()}
    if kind == "suitability":
        codes = {int(k): v["zh"] for k, v in params["classes"]["suitability"]["codes"].items()}
        if params["classes"]["scheme"] == "two":
            codes = {1: "适宜区", 3: "不适宜区", 4: codes[4]}
        return codes
    return {}


def colours(kind: str) -> dict[int, tuple[int, int, int, int]]:
    return {"grade": GRADE_COLOURS, "eco": ECO_COLOURS, "suitability": SUIT_COLOURS}.get(kind, {})


def class_codes(params: dict[str, Any], result: str, keys: list[str]) -> list[int]:
    """Class codes of a result for class keys (e.g. ``unsuitable`` → 3)."""
    table = params["classes"]["ecology" if result == "eco_importance" else "suitability"]
    by_key = {v["key"]: int(k) for k, v in table["codes"].items()}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise ProjectError("assessment.class_key", f"未知的类别 {unknown}",
                           f"unknown class keys {unknown} for {result}")
    return [by_key[k] for k in keys]


@dataclass
class AssessmentRun:
    run_id: str
    time: str
    grid: Grid
    params_version: str
    outputs: dict[str, dict[str, Any]]
    stats_township: pd.DataFrame
    stats_zone: pd.DataFrame
    capacity: dict[str, Any]
    findings: list[dict[str, Any]]
    notes: list[dict[str, str]]
    timings: dict[str, float]
    patches: dict[str, int]
    synthetic_inputs: list[str] = field(default_factory=list)
    class_scheme: str = "three"

    @property
    def class_scheme_text(self) -> str:
        return ("三类：适宜 / 一般适宜 / 不适宜（2019 征求意见稿）" if self.class_scheme == "three"
                else "两类：适宜区 / 不适宜区（2020 指南做法，5 级中 1–4 级为适宜区）")

    def summary(self) -> dict[str, Any]:
        county = {}
        if len(self.stats_township):
            t = self.stats_township.groupby(["result", "code", "class"], as_index=False)[
                "area_ha"].sum()
            for r in t.itertuples():
                county.setdefault(r.result, {})[r._3] = round(float(r.area_ha), 4)
        by_type: dict[str, int] = {}
        for f in self.findings:
            by_type[f["conflict_type"]] = by_type.get(f["conflict_type"], 0) + 1
        return {"county_area_ha": county, "findings_by_type": by_type,
                "patches": self.patches, "timings_s": self.timings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "time": self.time, "grid": self.grid.to_dict(),
            "params_version": self.params_version, "class_scheme": self.class_scheme,
            "outputs": self.outputs,
            "summary": self.summary(), "capacity": self.capacity,
            "findings": self.findings, "notes": self.notes,
            "synthetic_inputs": self.synthetic_inputs,
            "stats_township": self.stats_township.to_dict(orient="records"),
            "stats_zone": self.stats_zone.to_dict(orient="records"),
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _note(notes: list[dict[str, str]], code: str, zh: str, en: str) -> None:
    notes.append({"code": code, "zh": zh, "en": en})


class _Pipeline:
    def __init__(self, project: Any, params: dict[str, Any], resolved: Resolved,
                 *, block_size: int, workers: int, tmp: Path, cog: bool = True) -> None:
        self.project = project
        self.p = params
        self.r = resolved
        self.block_size = block_size
        self.workers = workers
        self.tmp = tmp
        self.cog = cog
        self.notes: list[dict[str, str]] = []
        self.readers: list[Any] = []
        self._setup()

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        import rasterio

        project, p, r = self.project, self.p, self.r
        cell = float(project.setting("assessment_cell_size_m", 30.0))
        if not cell > 0:
            raise ProjectError("assessment.cell", "评价网格尺寸必须为正数",
                               "the assessment cell size must be positive", path=project.gpkg)
        county = project.read_layer(r.county.name)
        geom = shapely.union_all(shapely.make_valid(county.geometry.values))
        self.n_relief = relief_window(cell, p["relief_window"])
        rb, ra = window_offsets(self.n_relief)
        self.rel_before, self.rel_after = rb, ra
        self.halo = max(1, rb, ra)
        dem_path = project.folder / r.factors["dem"].records[0].raster_path
        with rasterio.open(dem_path) as src:
            res = src.res
            align = None
            if abs(res[0] - cell) < 1e-6 and abs(res[1] - cell) < 1e-6:
                align = (src.transform.c, src.transform.f)
        self.grid = make_grid(project.epsg, tuple(geom.bounds), cell, align)
        g = self.grid
        self.county = VectorInput(np.array([geom]), np.array([1]), g, "classes", "uint8")
        # townships: 1..n; n + 1 marks county cells outside every township
        self.tw_names: list[str] = []
        self.tw_geoms = np.zeros(0, dtype=object)
        if r.townships is not None:
            tw = project.read_layer(r.townships.name)
            names = (tw[r.township_field].astype(str).tolist() if r.township_field
                     else [f"fid {i}" for i in tw.index])
            self.tw_names = names
            self.tw_geoms = shapely.make_valid(tw.geometry.values)
            self.townships = VectorInput(self.tw_geoms, np.arange(1, len(names) + 1), g,
                                         "classes", "int32")
        else:
            _note(self.notes, "townships.missing", "没有乡镇界图层：统计与承载规模只按全县给出",
                  "no township layer: statistics and carrying scale are county-wide only")
            self.townships = None
        self.n_tw = len(self.tw_names)
        # factor inputs
        self.inp: dict[str, list[Any]] = {}
        for key, ref in r.factors.items():
            if key == "county_seat":
                continue
            readers = []
            for rec in ref.records:
                if rec.kind == "raster":
                    rd = RasterInput(str(project.folder / rec.raster_path), g, self.halo,
                                     ref.kind)
                else:
                    gdf = project.read_layer(rec.name, columns=[ref.field])
                    vals = pd.to_numeric(gdf[ref.field], errors="coerce").to_numpy("float64")
                    if ref.kind == "classes":
                        vals = np.nan_to_num(vals, nan=0).astype("int64")
                    rd = VectorInput(gdf.geometry.values, vals, g, ref.kind)
                readers.append(rd)
                self.readers.append(rd)
            self.inp[key] = readers
        for key in ("temperature", "humidity"):
            if key in self.inp and self.inp[key][0].count not in (1, 12):
                raise ProjectError("assessment.climate_bands",
                                   f"{key} 图层须为 1 个（年均）或 12 个（逐月）波段",
                                   f"the {key} layer must have 1 (annual) or 12 (monthly) bands",
                                   path=project.gpkg)
        self.has_thi = "temperature" in self.inp and "humidity" in self.inp
        if self.has_thi and self.inp["temperature"][0].count != self.inp["humidity"][0].count:
            raise ProjectError("assessment.climate_bands", "气温与湿度图层的波段数不一致",
                               "temperature and humidity have different band counts",
                               path=project.gpkg)
        self.thi_input = None
        if self.has_thi and not p["thi"]["lapse_correction"]:
            self.thi_input = _thi_on_climate_grid(self.inp["temperature"][0],
                                                  self.inp["humidity"][0], self.tmp, g,
                                                  self.halo)
            if self.thi_input is not None:
                self.readers.append(self.thi_input)
        wi = p["water_indicator"]
        need = {"water_modulus": ["water_modulus"], "water_total_modulus": ["water_total_modulus"],
                "precipitation": ["precipitation"], "aridity": ["precipitation", "evaporation"]}
        for side in ("agriculture", "urban"):
            miss = [k for k in need[wi[side]] if k not in self.inp]
            if miss:
                zh_side = "农业" if side == "agriculture" else "城镇"
                raise ProjectError(
                    f"assessment.input_missing.{miss[0]}",
                    f"{zh_side}水资源评价指标 {wi[side]} 需要因子图层：{'、'.join(miss)}"
                    f"（图层名之一：{'、'.join(p['inputs'][miss[0]]['layers'])}）",
                    f"the {side} water indicator {wi[side]} needs the factor layer(s) "
                    f"{', '.join(miss)}", path=project.gpkg)
        self.eco_refs = [rd for k in ("eco_service", "eco_fragility") for rd in self.inp.get(k, [])]
        for key in r.missing:
            alternatives = {"water_modulus", "water_total_modulus", "precipitation", "evaporation"}
            if key in alternatives and key not in need[wi["agriculture"]] + need[wi["urban"]]:
                continue  # an input of a water indicator nobody chose: nothing is lost
            spec = p["inputs"].get(key, {})
            _note(self.notes, f"factor.missing.{key}",
                  f"未提供“{spec.get('zh', key)}”：相关修正/惩罚未评价",
                  f"{key} not provided: its modifier/penalty was not evaluated")
        if not self.eco_refs:
            _note(self.notes, "ecology.no_inputs",
                  "没有生态系统服务功能重要性或生态脆弱性图层：生态保护等级一律为“低”，"
                  "不会出现生态保护极重要区",
                  "no ecosystem-service or fragility layer: every cell is ecological level 5 "
                  "and there is no ecologically very important area")
        self._setup_plan()

    def _setup_plan(self) -> None:
        """Plan zones, control lines to exclude from urban land, plan features per rule."""
        project, p, g = self.project, self.p, self.grid
        self.zone_keys: list[tuple[str, str]] = []
        self.zone_inputs: list[VectorInput] = []
        for rec in self.r.zone_layers:
            gdf = project.read_layer(rec.name)
            fld = next((f for f in (rec.name_field, rec.code_field, "mp_code")
                        if f and f in gdf.columns), None)
            keys = gdf[fld].astype(str).tolist() if fld else [str(i) for i in gdf.index]
            ids = []
            for k in keys:
                if (rec.name, k) not in self.zone_keys:
                    self.zone_keys.append((rec.name, k))
                ids.append(self.zone_keys.index((rec.name, k)) + 1)
            self.zone_inputs.append(VectorInput(gdf.geometry.values, np.array(ids), g,
                                                "classes", "int32"))
        self.excl_inputs = []
        for rec in self.r.exclude_layers:
            gdf = project.read_layer(rec.name, columns=[])
            self.excl_inputs.append(VectorInput(gdf.geometry.values, np.ones(len(gdf), int),
                                                g, "classes", "uint8"))
        pc = p["plan_check"]
        self.rules = pc.get("rules", [])
        self.feature_sets: list[FeatureSet] = []
        self.feature_inputs: list[VectorInput] = []
        for rec in self.r.plan_layers:
            rules = [ru for ru in self.rules if rec.role in rule_roles(ru, pc)]
            if not rules:
                continue
            gdf = project.read_layer(rec.name)
            codes = (gdf["mp_code"].where(gdf["mp_code"].notna(), None).tolist()
                     if "mp_code" in gdf.columns else [None] * len(gdf))
            nf = rec.name_field if rec.name_field in gdf.columns else (
                "mp_name" if "mp_name" in gdf.columns else None)
            names = gdf[nf].tolist() if nf else [None] * len(gdf)
            sel = {ru["id"]: select_features(ru, codes) for ru in rules}
            any_sel = np.zeros(len(gdf), dtype=bool)
            for s in sel.values():
                any_sel |= s
            if not any_sel.any():
                continue
            idx = np.flatnonzero(any_sel)
            fs = FeatureSet(rec.name, gdf.index.to_numpy()[idx], [codes[i] for i in idx],
                            [names[i] for i in idx], gdf.geometry.values[idx],
                            {k: v[idx] for k, v in sel.items()})
            self.feature_sets.append(fs)
            self.feature_inputs.append(VectorInput(fs.geoms, np.arange(1, idx.size + 1), g,
                                                   "classes", "int32"))
        self.rule_codes = {ru["id"]: class_codes(p, ru["result"], ru["classes"])
                           for ru in self.rules}
        cap = p["capacity"]
        self.farm_codes = class_codes(p, "agriculture_suitability", cap["farmland_classes"])
        self.urban_codes = class_codes(p, "urban_suitability", cap["urban_classes"])

    # ------------------------------------------------------------------ pass 1
    def _read(self, key: str, block: Block, halo: int = 0, i: int = 0) -> np.ndarray | None:
        rds = self.inp.get(key)
        if not rds:
            return None
        return rds[i].read(block, halo)

    def _codes(self, key: str, block: Block) -> np.ndarray | None:
        a = self._read(key, block)
        if a is None:
            return None
        return np.clip(a[0], 0, 255).astype("uint8")

    def pass1(self, block: Block) -> dict[str, Any]:
        p, H = self.p, self.halo
        h, w = block.height, block.width
        inside = self.county.read(block)[0] > 0
        dem_h = self.inp["dem"][0].read(block, H)[0].astype("float32")
        dem = dem_h[H:H + h, H:H + w]
        slope = slope_horn(dem_h[H - 1:H + h + 1, H - 1:H + w + 1], self.grid.cell)
        rb, ra = self.rel_before, self.rel_after
        rel = relief_fn(dem_h[H - rb:H + h + ra, H - rb:H + w + ra], self.n_relief)
        valid = inside & np.isfinite(dem)
        slope[~valid] = np.nan
        rel[~valid] = np.nan
        out: dict[str, Any] = {"slope": slope, "relief": rel}
        silt = self._read("soil_silt", block)
        out["agri_land"] = cb.agriculture_land(slope, p, None if silt is None else silt[0])
        out["urban_land"] = cb.urban_land(slope, np.where(valid, dem, np.nan), rel, p)
        f = p["factors"]
        water: dict[str, np.ndarray] = {}
        pr = self._read("precipitation", block)
        if pr is not None:
            water["precipitation"] = out["precip_grade"] = grade(pr[0], f["precipitation"])
            ev = self._read("evaporation", block)
            if ev is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ar = np.where(pr[0] > 0, ev[0] / pr[0], np.nan)
                water["aridity"] = out["aridity_grade"] = grade(ar, f["aridity"])
        mod = self._read("water_modulus", block)
        modulus_m3 = None
        if mod is not None:
            water["water_modulus"] = out["modulus_grade"] = grade(mod[0], f["water_modulus"])
            modulus_m3 = np.nan_to_num(mod[0], nan=0.0) * (self.grid.cell_area_m2 / 1e6)
        tmod = self._read("water_total_modulus", block)
        if tmod is not None:
            water["water_total_modulus"] = out["total_modulus_grade"] = grade(
                tmod[0], f["water_total_modulus"])
        codes: dict[str, np.ndarray | None] = {k: self._codes(k, block) for k in (
            "geohazard", "storm_surge", "air_capacity", "water_env_capacity",
            "soil_environment", "salinisation", "meteo_hazard", "light_heat")}
        if self.has_thi:
            tp = p["thi"]
            monthly = []
            if self.thi_input is not None:  # THI computed on the climate grid, then bilinear
                th = self.thi_input.read(block)
                monthly = [grade(th[k], f["thi"]) for k in range(th.shape[0])]
            else:  # lapse correction needs the temperature of every cell
                t = self.inp["temperature"][0].read(block)
                rh = self.inp["humidity"][0].read(block)
                for k in range(t.shape[0]):
                    tc = t[k] - tp["lapse_rate_c_per_100m"] * (
                        dem - tp["reference_elevation_m"]) / 100
                    monthly.append(grade(thi(tc, rh[k]), f["thi"]))
            g = monthly[0] if len(monthly) == 1 else modal_grade(np.stack(monthly), tp["tie"])
            codes["thi"] = out["thi_grade"] = g
        if self.r.seat is not None:
            x, y = self.grid.centres(block)
            loc = p["location"]
            tt = travel_time_hours(x, y, self.r.seat, loc["speed_kmh"], loc["detour_factor"])
            codes["location"] = out["location_grade"] = grade(np.broadcast_to(tt, (h, w)),
                                                              f["travel_time"])
        eco_grades = [np.clip(rd.read(block)[0], 0, 255).astype("uint8") for rd in self.eco_refs]
        eco5 = cb.ecology_level(eco_grades, (h, w))
        wi = p["water_indicator"]
        out["agri5a"] = cb.agriculture_grade(out["agri_land"], water[wi["agriculture"]], p, codes)
        out["urban5a"] = cb.urban_grade(out["urban_land"], water[wi["urban"]], p, codes)
        for k, v in out.items():
            if v.dtype.kind == "f":
                v[~inside] = np.nan
            else:
                out[k] = np.where(inside, v, 0).astype("uint8")
        out["eco_level"] = np.where(inside, eco5, 0).astype("uint8")
        out["eco_prov"] = self.eco_acc.add_block(out["eco_level"], block.row, block.col)
        tw = np.zeros((h, w), dtype="int32")
        if self.townships is not None:
            tw = self.townships.read(block)[0]
        tw = np.where(inside, np.where(tw > 0, tw, self.n_tw + 1), 0).astype("int32")
        out["tw"] = tw
        nb = self.n_tw + 2
        out["tw_cells"] = np.bincount(tw.ravel(), minlength=nb)
        # county cells a required factor does not cover (they get no grade)
        wi = p["water_indicator"]
        out["gaps"] = np.array([
            int((inside & ~np.isfinite(dem)).sum()),
            int((inside & (water[wi["agriculture"]] == 0)).sum()),
            int((inside & (water[wi["urban"]] == 0)).sum()), int(inside.sum())])
        out["tw_modulus"] = (np.bincount(tw.ravel(), weights=modulus_m3.ravel(), minlength=nb)
                             if modulus_m3 is not None else np.zeros(nb))
        return out

    # ------------------------------------------------------------------ pass 2
    def pass2(self, block: Block) -> dict[str, Any]:
        rd = self.tmp_reader
        eco5 = rd.read("eco_level", block)
        prov = rd.read("eco_prov", block)
        imp = np.where(eco5 > 0, self.eco_res.per_cell(prov, self.eco_imp_root), 0).astype("uint8")
        excl = imp == 1
        out = {"eco_importance": imp}
        for side in ("agri", "urban"):
            g = rd.read(f"{side}5a", block)
            g = np.where(excl, 0, g).astype("uint8")
            acc = self.acc.get(side)
            if acc is not None:
                out[f"{side}_prov"] = acc.add_block(g, block.row, block.col)
        return out

    # ------------------------------------------------------------------ pass 3
    def pass3(self, block: Block) -> dict[str, Any]:
        p, rd = self.p, self.tmp_reader
        imp = rd.read("eco_importance", block)
        excl = imp == 1
        inside = rd.read("eco_level", block) > 0
        out: dict[str, Any] = {}
        for side, res_key in (("agri", "agri_suitability"), ("urban", "urban_suitability")):
            g5 = np.where(excl, 0, rd.read(f"{side}5a", block)).astype("uint8")
            method = p["concentration"]["agriculture" if side == "agri" else "urban"]["method"]
            cls = None
            if method == "compactness":
                prov = rd.read(f"{side}_prov", block)
                act = self.patch_res[side].per_cell(prov, self.actions[side])
                act = np.where(prov > 0, act, -1)
                g5 = cb.apply_compactness(g5, act, p)
            elif method == "contiguity_matrix":
                prov = rd.read(f"{side}_prov", block)
                cont = self.patch_res[side].per_cell(prov, self.contiguity[side])
                cls = cb.contiguity_classes(g5, np.where(prov > 0, cont, 0), p, excl & inside)
            if cls is None:
                cls = cb.suitability_classes(g5, p, excl & inside)
            out[f"{side}_grade"] = g5
            out[res_key] = np.where(inside, cls, 0).astype("uint8")
        tw = rd.read("tw", block).ravel()
        nb = self.n_tw + 2
        counts = {}
        vals = {"eco_importance": imp, "eco_level": rd.read("eco_level", block),
                **{k: out[k] for k in ("agri_suitability", "urban_suitability", "agri_grade",
                                       "urban_grade")}}
        for k in STAT_KEYS:
            counts[k] = np.bincount(tw * NC + vals[k].ravel(), minlength=nb * NC)
        # 承载规模: urban land outside the excluded control lines
        excl_cl = np.zeros(imp.shape, dtype=bool)
        for vi in self.excl_inputs:
            excl_cl |= vi.read(block)[0] > 0
        farm = np.isin(out["agri_suitability"], self.farm_codes)
        urb = np.isin(out["urban_suitability"], self.urban_codes) & ~excl_cl
        counts["farmland"] = np.bincount(tw[farm.ravel()], minlength=nb)
        counts["urban_avail"] = np.bincount(tw[urb.ravel()], minlength=nb)
        # plan zones
        nz = len(self.zone_keys) + 1
        if self.zone_inputs:
            zid = np.zeros(imp.shape, dtype="int64")
            for vi in self.zone_inputs:
                z = vi.read(block)[0]
                zid = np.where(z > 0, z, zid)
            zid = np.where(inside, zid, 0).ravel()
            for k in ("eco_importance", "agri_suitability", "urban_suitability"):
                counts[f"zone_{k}"] = np.bincount(zid * NC + vals[k].ravel(),
                                                  minlength=nz * NC)
        # plan check
        checks = []
        for fs, vi in zip(self.feature_sets, self.feature_inputs, strict=True):
            fid = np.where(inside, vi.read(block)[0], 0)
            m = fs.fids.size + 1
            allc = np.bincount(fid.ravel(), minlength=m)
            per_rule = {}
            for ru in self.rules:
                if ru["id"] not in fs.rules:
                    continue
                res = vals[RESULT_KEYS[ru["result"]]]
                bad = (fid > 0) & np.isin(res, self.rule_codes[ru["id"]])
                per_rule[ru["id"]] = np.bincount(fid[bad], minlength=m)
            checks.append((allc, per_rule))
        out["counts"] = counts
        out["checks"] = checks
        return out

    def _note_gaps(self, gaps: np.ndarray) -> None:
        total = max(int(gaps[3]), 1)
        wi = self.p["water_indicator"]
        for n, key in zip(gaps[:3], ("dem", wi["agriculture"], wi["urban"]), strict=True):
            if n:
                share = 100.0 * n / total
                zh = self.p["inputs"].get(key, {}).get("zh", key)
                _note(self.notes, f"coverage.{key}",
                      f"“{zh}”未覆盖县域的 {share:.2f}%（{int(n)} 个栅格），这些栅格没有适宜性等级",
                      f"{key} does not cover {share:.2f} % of the county ({int(n)} cells); "
                      f"those cells get no suitability grade")

    # ------------------------------------------------------------------ driver
    def run(self, task: Task) -> dict[str, Any]:
        g, p = self.grid, self.p
        blocks = g.blocks(self.block_size)
        conn = p["concentration"]["connectivity"]
        self.eco_acc = PatchAccumulator(g.height, g.width, conn, compactness=False)
        tmp = self.tmp
        timings: dict[str, float] = {}

        def writer(key: str, dtype: str, nodata: Any, final: bool) -> OutputRaster:
            spec = OUTPUT_SPECS.get(key)
            kw: dict[str, Any] = {}
            if final and spec is not None:
                kw["colormap"] = colours(spec.legend) or None
                kw["description"] = spec.zh
            # finals are compressed once: by the COG copy, or here when there is none
            return OutputRaster(tmp / f"{key}.tif", g, dtype, nodata,
                                compress=final and not self.cog, **kw)

        # pass 1 --------------------------------------------------------
        t0 = time.perf_counter()
        w1: dict[str, OutputRaster] = {}
        acc1 = {"tw_cells": np.zeros(self.n_tw + 2), "tw_modulus": np.zeros(self.n_tw + 2),
                "gaps": np.zeros(4, dtype=np.int64)}

        def consume1(block: Block, out: dict[str, Any]) -> None:
            for k, v in out.items():
                if k in acc1:
                    acc1[k] += v
                    continue
                if k not in w1:
                    if k in ("eco_prov",):
                        w1[k] = writer(k, "int64", None, False)
                    elif k == "tw":
                        w1[k] = writer(k, "int32", None, False)
                    elif k in ("agri5a", "urban5a"):
                        w1[k] = writer(k, "uint8", 0, False)
                    elif v.dtype.kind == "f":
                        w1[k] = writer(k, "float32", float("nan"), True)
                    else:
                        w1[k] = writer(k, "uint8", 0, True)
                w1[k].write(block, v)

        try:
            run_blocks(blocks, self.pass1, consume1, workers=self.workers,
                       task=task.sub(0.0, 0.6), message="因子计算与分级 / factors")
        finally:
            for wr in w1.values():
                wr.close()
            for rdr in self.readers:
                rdr.close()
        timings["pass1_factors"] = time.perf_counter() - t0
        self._note_gaps(acc1["gaps"])

        t0 = time.perf_counter()
        self.eco_res = self.eco_acc.finish()
        area_km2 = self.eco_res.area * g.cell_area_m2 / 1e6
        conc = cb.concentration_grade(area_km2, p)
        self.eco_imp_root = cb.ecology_importance(self.eco_res.value, conc, p)
        self.eco_imp_root[0] = 0
        self.tmp_reader = BlockReader({k: tmp / f"{k}.tif" for k in w1})
        self.acc: dict[str, PatchAccumulator] = {}
        for side, key in (("agri", "agriculture"), ("urban", "urban")):
            if p["concentration"][key]["method"] != "none":
                self.acc[side] = PatchAccumulator(
                    g.height, g.width, conn,
                    compactness=p["concentration"][key]["method"] == "compactness")
        timings["patches_ecology"] = time.perf_counter() - t0

        # pass 2 --------------------------------------------------------
        t0 = time.perf_counter()
        w2: dict[str, OutputRaster] = {}

        def consume2(block: Block, out: dict[str, Any]) -> None:
            for k, v in out.items():
                if k not in w2:
                    w2[k] = (writer(k, "uint8", 0, True) if k == "eco_importance"
                             else writer(k, "int64", None, False))
                w2[k].write(block, v)

        try:
            run_blocks(blocks, self.pass2, consume2, workers=self.workers,
                       task=task.sub(0.6, 0.75), message="生态保护重要性 / ecology")
        finally:
            for wr in w2.values():
                wr.close()
            self.tmp_reader.close()
        timings["pass2_ecology"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        self.patch_res: dict[str, PatchResult] = {}
        self.actions: dict[str, np.ndarray] = {}
        self.contiguity: dict[str, np.ndarray] = {}
        for side, acc in self.acc.items():
            res = acc.finish()
            self.patch_res[side] = res
            if acc.compactness:
                self.actions[side] = cb.compactness_action(res.compactness, p)
            else:
                self.contiguity[side] = cb.contiguity_grade(res.area * g.cell_area_m2 / M2_PER_MU,
                                                            p)
        timings["patches_suitability"] = time.perf_counter() - t0

        # pass 3 --------------------------------------------------------
        t0 = time.perf_counter()
        self.tmp_reader = BlockReader({k: tmp / f"{k}.tif" for k in list(w1) + list(w2)})
        w3: dict[str, OutputRaster] = {}
        nb = self.n_tw + 2
        counts: dict[str, np.ndarray] = {}
        checks_acc: list[list[Any]] = [[None, {}] for _ in self.feature_sets]

        def consume3(block: Block, out: dict[str, Any]) -> None:
            for k, v in out["counts"].items():
                counts[k] = counts[k] + v if k in counts else v.astype("int64")
            for i, (allc, per_rule) in enumerate(out["checks"]):
                a = checks_acc[i]
                a[0] = allc if a[0] is None else a[0] + allc
                for rid, cnt in per_rule.items():
                    a[1][rid] = cnt if rid not in a[1] else a[1][rid] + cnt
            for k, v in out.items():
                if k in ("counts", "checks"):
                    continue
                if k not in w3:
                    w3[k] = writer(k, "uint8", 0, True)
                w3[k].write(block, v)

        try:
            run_blocks(blocks, self.pass3, consume3, workers=self.workers,
                       task=task.sub(0.75, 0.9), message="适宜性与统计 / suitability")
        finally:
            for wr in w3.values():
                wr.close()
            self.tmp_reader.close()
        timings["pass3_suitability"] = time.perf_counter() - t0
        return {"acc1": acc1, "counts": counts, "checks": checks_acc, "nb": nb,
                "timings": timings,
                "written": sorted(set(w1) | set(w2) | set(w3)),
                "patches": {"ecology": self.eco_res.n_patches,
                            **{k: v.n_patches for k, v in self.patch_res.items()}}}


def _thi_on_climate_grid(temp: Any, hum: Any, tmp: Path, grid: Grid,
                         halo: int) -> RasterInput | None:
    """Monthly THI computed on the climate rasters' own grid, written once, then read
    (bilinear) like any continuous factor: THI of interpolated T and RH and interpolated THI
    differ only in second-order terms on smooth climate fields, and the per-cell work halves.
    Only for raster inputs on the same grid (else None: THI is computed per cell)."""
    import rasterio

    if not (isinstance(temp, RasterInput) and isinstance(hum, RasterInput)):
        return None
    if (temp.src_transform != hum.src_transform or temp.src_shape != hum.src_shape
            or not temp.direct or not hum.direct):
        return None
    with rasterio.open(temp.path) as t, rasterio.open(hum.path) as h:
        if t.width * t.height * t.count > 50_000_000:  # not a coarse climate grid
            return None
        tv = t.read().astype("float32")
        hv = h.read().astype("float32")
        prof = t.profile
        for arr, nd in ((tv, t.nodata), (hv, h.nodata)):
            if nd is not None:
                arr[arr == nd] = np.nan
    out = tmp / "thi_climate_grid.tif"
    prof.update(dtype="float32", nodata=np.nan, driver="GTiff", compress=None)
    with rasterio.open(out, "w", **prof) as dst:
        dst.write(thi(tv, hv).astype("float32"))
    return RasterInput(str(out), grid, halo, "continuous")


def _finding_geometry(pl: _Pipeline, fs: FeatureSet, i: int, rule: dict[str, Any],
                      results: BlockReader) -> Any:
    """The cells of feature ``i`` in the rule's classes, as a MultiPolygon (cell edges)."""
    from rasterio.features import rasterize, shapes

    g = pl.grid
    geom = fs.geoms[i]
    minx, miny, maxx, maxy = geom.bounds
    t = g.transform
    c0 = max(int(np.floor((minx - t.c) / g.cell)), 0)
    c1 = min(int(np.ceil((maxx - t.c) / g.cell)), g.width)
    r0 = max(int(np.floor((t.f - maxy) / g.cell)), 0)
    r1 = min(int(np.ceil((t.f - miny) / g.cell)), g.height)
    if c1 <= c0 or r1 <= r0:
        return shapely.MultiPolygon()
    wt = g.window_transform(r0, c0)
    inside = rasterize([(geom, 1)], out_shape=(r1 - r0, c1 - c0), transform=wt, fill=0,
                       dtype="uint8")
    cls = results.read(RESULT_KEYS[rule["result"]], Block(-1, r0, c0, r1 - r0, c1 - c0))
    mask = (inside > 0) & np.isin(cls, pl.rule_codes[rule["id"]])
    parts = [shapely.geometry.shape(gj) for gj, _ in
             shapes(mask.astype("uint8"), mask=mask, transform=wt)]
    merged = shapely.union_all(parts) if parts else shapely.MultiPolygon()
    if merged.geom_type == "Polygon":
        merged = shapely.MultiPolygon([merged])
    return merged


# ---------------------------------------------------------------------- statistics
def _stats_tables(pl: _Pipeline, counts: dict[str, np.ndarray]) -> tuple[pd.DataFrame,
                                                                          pd.DataFrame]:
    p, g = pl.p, pl.grid
    rows = []
    names = pl.tw_names + ["（乡镇界外）"]
    for key in STAT_KEYS:
        spec = OUTPUT_SPECS[key]
        lab = legend(p, spec.legend)
        c = counts[key].reshape(-1, NC)
        for t in range(1, pl.n_tw + 2):
            total = c[t, 1:].sum()
            if total == 0:
                continue
            for code in range(1, NC):
                if c[t, code] == 0 and code not in lab:
                    continue
                rows.append({"unit": names[t - 1], "result": key, "result_zh": spec.zh,
                             "code": code, "class": lab.get(code, str(code)),
                             "cells": int(c[t, code]),
                             "area_ha": float(c[t, code] * g.cell_area_m2 / 1e4),
                             "share": float(c[t, code] / total)})
    tw_df = pd.DataFrame(rows, columns=["unit", "result", "result_zh", "code", "class", "cells",
                                        "area_ha", "share"])
    zrows = []
    for key in ("eco_importance", "agri_suitability", "urban_suitability"):
        ck = f"zone_{key}"
        if ck not in counts:
            continue
        spec = OUTPUT_SPECS[key]
        lab = legend(p, spec.legend)
        c = counts[ck].reshape(-1, NC)
        for zi, (layer, zone) in enumerate(pl.zone_keys, start=1):
            total = c[zi, 1:].sum()
            if total == 0:
                continue
            for code in range(1, NC):
                if c[zi, code] == 0 and code not in lab:
                    continue
                zrows.append({"layer": layer, "zone": zone, "result": key,
                              "result_zh": spec.zh, "code": code,
                              "class": lab.get(code, str(code)), "cells": int(c[zi, code]),
                              "area_ha": float(c[zi, code] * g.cell_area_m2 / 1e4),
                              "share": float(c[zi, code] / total)})
    z_df = pd.DataFrame(zrows, columns=["layer", "zone", "result", "result_zh", "code", "class",
                                        "cells", "area_ha", "share"])
    return tw_df, z_df


def _current_use_by_township(project: Any, pl: _Pipeline) -> tuple[dict[int, float],
                                                                  dict[int, float]] | None:
    """Current farmland / urban construction land (ha) per township index (0-based), each
    parcel in the township holding its representative point; None without the layers."""
    from multiplan.core.classification import is_construction

    rec = pl.r.current_use
    if rec is None or pl.townships is None:
        return None
    gdf = project.read_layer(rec.name)
    if "mp_code" not in gdf.columns:
        return None
    cap = pl.p["capacity"]
    codes = gdf["mp_code"].fillna("").astype(str)
    farm = codes.str.startswith(tuple(cap["current_farmland_prefixes"])).to_numpy()
    cu = cap["current_urban_land"]
    constr = {c: bool(c) and is_construction(c) for c in set(codes)}
    urb = (codes.map(constr).to_numpy(dtype=bool).copy() if cu.get("construction", True)
           else np.zeros(len(codes), bool))
    if cu.get("exclude_prefixes"):
        urb &= ~codes.str.startswith(tuple(cu["exclude_prefixes"])).to_numpy()
    geoms = gdf.geometry.values
    area = shapely.area(geoms)
    pts = shapely.point_on_surface(geoms)
    tree = shapely.STRtree(pl.tw_geoms)
    pi, ti = tree.query(pts, predicate="within")
    first = {}
    for a, b in zip(pi.tolist(), ti.tolist(), strict=True):
        first.setdefault(a, b)
    f_ha: dict[int, float] = {}
    u_ha: dict[int, float] = {}
    for i, t in first.items():
        if farm[i]:
            f_ha[t] = f_ha.get(t, 0.0) + area[i] / 1e4
        if urb[i]:
            u_ha[t] = u_ha.get(t, 0.0) + area[i] / 1e4
    return f_ha, u_ha


# ---------------------------------------------------------------------- public
def run_assessment(project: Any, *, task: Task | None = None, block_size: int | None = None,
                   workers: int | None = None) -> AssessmentRun:
    """Run the whole 双评价 on ``project`` with its effective parameters; write and register
    the result rasters, record the run and the plan-check findings; return the run."""
    import rasterio

    project.guard_analysis("assessment", "运行双评价并写入结果", "running the assessment and "
                             "storing its results")
    task = ensure_task(task)
    t_start = time.perf_counter()
    params = project_parameters(project)
    eng = params["engine"]
    block_size = int(block_size or eng["block_size"])
    workers = default_workers(workers or eng["workers"])
    task.progress(0.0, "检查输入 / checking inputs")
    resolved = resolve_inputs(project, params)
    fingerprints = input_fingerprints(project, resolved)
    cell = float(project.setting("assessment_cell_size_m", 30.0))
    run_id = uuid.uuid4().hex
    out_dir = project.folder / OUTPUT_DIR
    tmp = project.folder / "rasters" / f".assess-{run_id[:12]}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        # rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64: bytes, process-wide
        with rasterio.Env(GDAL_CACHEMAX=int(eng.get("gdal_cache_mb", 16)) * 1024 * 1024):
            pl = _Pipeline(project, params, resolved, block_size=block_size, workers=workers,
                           tmp=tmp, cog=bool(eng.get("cog", True)))
            res = pl.run(task)
            timings = res["timings"]
            task.progress(0.9, "统计与承载规模 / statistics")
            t0 = time.perf_counter()
            stats_tw, stats_zone = _stats_tables(pl, res["counts"])
            capacity = _capacity(project, pl, res)
            findings, jobs = [], []
            results = BlockReader({k: tmp / f"{k}.tif" for k in set(RESULT_KEYS.values())})
            for fs, (allc, per_rule) in zip(pl.feature_sets, res["checks"], strict=True):
                for ru in pl.rules:
                    if ru["id"] in per_rule:
                        found = build_findings(ru, fs, per_rule[ru["id"]][1:], allc[1:],
                                               pl.grid.cell_area_m2)
                        jobs += [(fs, f["_index"], ru) for f in found]
                        findings += found
            with ThreadPoolExecutor(max_workers=pl.workers) as ex:
                fgeoms = list(ex.map(lambda j: _finding_geometry(pl, *j, results), jobs))
            results.close()
            frame = findings_frame(
                findings, fgeoms, pl.grid.epsg, pl.tw_names, pl.tw_geoms, run_id,
                rule_file_info()["version_id"],
                {k: OUTPUT_SPECS[v].layer for k, v in RESULT_KEYS.items()},
                {k: legend(params, OUTPUT_SPECS[v].legend) for k, v in RESULT_KEYS.items()},
                pl.rule_codes)
            timings["statistics"] = time.perf_counter() - t0
            task.progress(0.93, "写出结果 / writing results")
            t0 = time.perf_counter()
            outputs = _finalise_outputs(project, pl, res["written"], tmp, out_dir, params,
                                        run_id, bool(eng.get("cog", True)))
            timings["outputs"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    timings["total"] = time.perf_counter() - t_start
    rinfo = rule_file_info()
    now = _now()
    synthetic = sorted(n for n, fp in fingerprints.items() if fp["synthetic"])
    run = AssessmentRun(run_id=run_id, time=now, grid=pl.grid,
                        params_version=rinfo["version_id"], outputs=outputs,
                        stats_township=stats_tw, stats_zone=stats_zone, capacity=capacity,
                        findings=frame.drop(columns="geometry").to_dict(orient="records"),
                        notes=pl.notes,
                        timings={k: round(v, 3) for k, v in timings.items()},
                        patches=res["patches"], synthetic_inputs=synthetic,
                        class_scheme=params["classes"]["scheme"])
    _register_and_record(project, pl, run, params, rinfo, fingerprints, cell, frame)
    task.progress(1.0, "完成 / done")
    return run


def _capacity(project: Any, pl: _Pipeline, res: dict[str, Any]) -> dict[str, Any]:
    acc1, counts = res["acc1"], res["counts"]
    cur = _current_use_by_township(project, pl)
    units = []
    names = pl.tw_names + ["（乡镇界外）"]
    for t in range(1, pl.n_tw + 2):
        cells = int(acc1["tw_cells"][t])
        if cells == 0:
            continue
        units.append({
            "name": names[t - 1], "cells": cells,
            "farmland_cells": int(counts["farmland"][t]),
            "urban_cells": int(counts["urban_avail"][t]),
            "modulus_m3": float(acc1["tw_modulus"][t]),
            "current_farmland_ha": (cur[0].get(t - 1, 0.0) if cur and t <= pl.n_tw else None),
            "current_urban_ha": (cur[1].get(t - 1, 0.0) if cur and t <= pl.n_tw else None),
        })
    out = with_scenarios(units, pl.p["capacity"], pl.grid.cell_area_m2)
    if not out["current"]["computed"]:
        _note(pl.notes, "capacity.parameters_missing",
              "承载规模的水资源约束未计算：请在项目参数中设置 "
              + "、".join(out["current"]["missing"]),
              "the water constraint of the carrying scale was not computed: set "
              + ", ".join(out["current"]["missing"]) + " in the project parameters")
    return out


def _deps(pl: _Pipeline, key: str) -> set[str]:
    """Input keys an output depends on (for its synthetic flag)."""
    p = pl.p
    need = {"water_modulus": {"water_modulus"}, "water_total_modulus": {"water_total_modulus"},
            "precipitation": {"precipitation"}, "aridity": {"precipitation", "evaporation"}}
    eco = {"eco_service", "eco_fragility"}
    thi_d = {"temperature", "humidity"} | ({"dem"} if p["thi"]["lapse_correction"] else set())
    agri = ({"dem", "soil_silt", "light_heat", "soil_environment", "salinisation",
             "meteo_hazard"} | need[p["water_indicator"]["agriculture"]] | eco)
    urban = ({"dem", "storm_surge", "geohazard", "air_capacity", "water_env_capacity",
              "county_seat"} | thi_d | need[p["water_indicator"]["urban"]] | eco)
    return {
        "slope": {"dem"}, "relief": {"dem"}, "agri_land": {"dem", "soil_silt"},
        "urban_land": {"dem"}, "precip_grade": {"precipitation"},
        "aridity_grade": {"precipitation", "evaporation"}, "modulus_grade": {"water_modulus"},
        "total_modulus_grade": {"water_total_modulus"}, "thi_grade": thi_d,
        "location_grade": {"county_seat"}, "eco_level": eco, "eco_importance": eco,
        "agri_grade": agri, "agri_suitability": agri, "urban_grade": urban,
        "urban_suitability": urban,
    }[key]


def _finalise_outputs(project: Any, pl: _Pipeline, written: list[str], tmp: Path,
                      out_dir: Path, params: dict[str, Any], run_id: str,
                      cog: bool) -> dict[str, dict[str, Any]]:
    """Tag each result, copy it to a COG (one file per worker thread: GDAL releases the GIL)
    and move it into ``rasters/assessment/``."""
    import rasterio

    out_dir.mkdir(parents=True, exist_ok=True)
    rinfo = rule_file_info()
    keys = [k for k in OUTPUT_SPECS if k in written]

    def one(key: str) -> tuple[str, dict[str, Any]]:
        spec = OUTPUT_SPECS[key]
        src = tmp / f"{key}.tif"
        synth = any(ref.synthetic for k, ref in pl.r.factors.items() if k in _deps(pl, key))
        lab = legend(params, spec.legend)
        with rasterio.open(src, "r+") as ds:
            ds.update_tags(MULTIPLAN_LAYER=spec.layer, MULTIPLAN_RUN=run_id,
                           MULTIPLAN_PARAMS=rinfo["version_id"],
                           SYNTHETIC="yes" if synth else "no",
                           UNITS=spec.unit, CLASSES=str(dict(lab.items())), TITLE=spec.zh)
        dst_tmp = out_dir / f".{spec.file}.{run_id[:8]}"
        if cog:
            flt = spec.dtype == "float32"  # level 1: half the time, +5 % size for floats
            to_cog(src, dst_tmp, resampling="average" if flt else "nearest", threads=1,
                   level=1 if flt else 6)
        else:
            shutil.copyfile(src, dst_tmp)
        final = out_dir / spec.file
        os.replace(dst_tmp, final)
        rel = final.relative_to(project.folder).as_posix()
        return key, {"layer": spec.layer, "path": rel, "sha256": file_sha256(final),
                     "synthetic": synth, "legend": spec.legend, "zh": spec.zh}

    with ThreadPoolExecutor(max_workers=pl.workers) as ex:
        return dict(ex.map(one, keys))


def _register_and_record(project: Any, pl: _Pipeline, run: AssessmentRun,
                         params: dict[str, Any], rinfo: dict[str, str],
                         fingerprints: dict[str, Any], cell: float, findings: Any) -> None:
    """Register the result rasters, replace the plan-check entries in the conflict register
    (source ``AS``), store the run record and audit — in one SQLite transaction, so
    registry, entries and record never disagree."""
    from multiplan import __version__
    from multiplan.core.conflicts import ensure_register

    ensure_register(project)  # GDAL creates the table on its own connection, so before

    prev = latest_run(project)
    current_layers = {o["layer"] for o in run.outputs.values()}
    stale = []
    if prev:
        stale = [o for o in prev["outputs"].values()
                 if o["layer"] not in current_layers and project.has_layer(o["layer"])]
    with project.transaction() as conn:
        for o in stale:
            conn.execute('DELETE FROM "mp_layers" WHERE "name" = ?', (o["layer"],))
            project._audit(conn, "layer.remove", o["layer"], {"by": "assessment.run"})
        for key, o in run.outputs.items():
            spec = OUTPUT_SPECS[key]
            rec = LayerRecord(name=spec.layer, kind="raster", level="county",
                              role="assessment_result", title=spec.zh, raster_path=o["path"],
                              source_path=None, source_sha256=o["sha256"],
                              synthetic=o["synthetic"], imported_at=run.time,
                              report={"run_id": run.run_id, "legend": spec.legend,
                                      "classes": {str(k): v for k, v in
                                                  legend(params, spec.legend).items()},
                                      "unit": spec.unit, "params": rinfo["version_id"]})
            row = rec.to_row()  # the same row Project.register_raster writes
            keys = ", ".join(f'"{k}"' for k in row)
            conn.execute('DELETE FROM "mp_layers" WHERE "name" = ?', (rec.name,))
            conn.execute(f'INSERT INTO "mp_layers" ({keys}) VALUES '
                         f'({", ".join("?" for _ in row)})', list(row.values()))
        insert_run(conn, {
            "run_id": run.run_id, "time": run.time, "status": "complete",
            "multiplan_version": __version__, "rule_file": rinfo,
            "params_sha256": fingerprint(params, cell), "params": params,
            "cell_size_m": cell, "grid": run.grid.to_dict(), "inputs": fingerprints,
            "outputs": run.outputs,
            "summary": {**run.summary(), "capacity": run.capacity,
                        "stats_township": run.stats_township.to_dict(orient="records"),
                        "stats_zone": run.stats_zone.to_dict(orient="records"),
                        "synthetic_inputs": run.synthetic_inputs},
            "notes": run.notes,
        })
        store_findings(conn, findings, run_id=run.run_id, rule_version=rinfo["version_id"],
                       rules=pl.rules)
        project._audit(conn, "assessment.run", run.run_id, {
            "params": rinfo["version_id"], "cell_size_m": cell,
            "outputs": sorted(o["layer"] for o in run.outputs.values()),
            "findings": len(run.findings), "seconds": run.timings.get("total")})
    for o in stale:
        (project.folder / o["path"]).unlink(missing_ok=True)
