"""Layer registry vocabulary: levels, roles, and the record stored per layer.

Chinese words are data (labels stored in the project); identifiers stay English.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: Administrative level of the plan a layer comes from.
LEVELS: dict[str, str] = {
    "national": "国家级",
    "provincial": "省级",
    "city": "市级",
    "county": "县级",
}

#: Role of a layer in the plan. key -> (Chinese label, expected geometry family)
ROLES: dict[str, tuple[str, str]] = {
    "current_use": ("现状", "polygon"),
    "land_use_plan": ("土地利用规划", "polygon"),
    "urban_plan": ("城乡规划", "polygon"),
    "forest_plan": ("林地保护利用规划", "polygon"),
    "eco_redline": ("生态保护红线", "polygon"),
    "basic_farmland": ("永久基本农田", "polygon"),
    "urban_boundary": ("城镇开发边界", "polygon"),
    "main_function_zone": ("主体功能区", "polygon"),
    "planning_zone": ("规划分区", "polygon"),
    "spatial_plan": ("国土空间规划", "polygon"),
    "admin_boundary": ("行政区", "polygon"),
    "township": ("乡镇界", "polygon"),
    "water": ("水系", "any"),
    "assessment_factor": ("评价因子", "any"),
    "assessment_result": ("评价结果", "any"),
    "reference": ("参考", "any"),
}

#: Roles that are control lines (三区三线); later issues lock them for editing.
CONTROL_LINE_ROLES = ("eco_redline", "basic_farmland", "urban_boundary")


def role_key(value: str) -> str:
    """Accept an English key or its Chinese label; return the English key."""
    if value in ROLES:
        return value
    for k, (label, _) in ROLES.items():
        if value == label:
            return k
    raise KeyError(value)


def level_key(value: str) -> str:
    if value in LEVELS:
        return value
    for k, label in LEVELS.items():
        if value == label:
            return k
    raise KeyError(value)


@dataclass
class LayerRecord:
    """One row of the ``mp_layers`` registry."""

    name: str
    kind: str  # "vector" | "raster"
    level: str  # key of LEVELS
    role: str  # key of ROLES
    title: str = ""
    geometry_type: str | None = None
    feature_count: int | None = None
    source_path: str | None = None
    source_sha256: str | None = None
    source_crs: str | None = None
    crs_assumed: bool = False
    encoding: str | None = None
    scheme: str | None = None  # classification scheme id, e.g. "ydyh2023", "gbt21010_2017"
    scheme_version: str | None = None
    code_field: str | None = None
    name_field: str | None = None
    raster_path: str | None = None  # relative to the project folder, for rasters
    synthetic: bool = False
    imported_at: str | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def level_label(self) -> str:
        return LEVELS.get(self.level, self.level)

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, (self.role, ""))[0]

    def to_row(self) -> dict[str, Any]:
        d = asdict(self)
        d["crs_assumed"] = int(self.crs_assumed)
        d["synthetic"] = int(self.synthetic)
        d["report"] = json.dumps(self.report, ensure_ascii=False)
        return d

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LayerRecord:
        d = dict(row)
        d["crs_assumed"] = bool(d.get("crs_assumed"))
        d["synthetic"] = bool(d.get("synthetic"))
        d["report"] = json.loads(d.get("report") or "{}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})
