"""The review items behind the review panel, and their filters. No Qt here.

Items come from :func:`multiplan.core.review.review_items` (conflicts plus 质检 / 三区三线 /
assessment findings, with their decision status). :func:`load_items` returns one frame with
the columns the panel uses
(:data:`COLUMNS`) plus the piece bounds and, for the register's rows, the register fid (the
canvas highlights the piece on the ``mp_conflicts`` layer by that fid).

:func:`filter_mask` is the panel's filter as a plain pandas expression over that frame: the
table model shows exactly the rows it keeps.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

#: Decision statuses (the core's :data:`multiplan.core.review.DECISION_STATUSES` when present).
STATUSES = ("待定", "按上位规划调整", "按现状保留", "认可例外", "已修改")
STATUS_EN = {"待定": "pending", "按上位规划调整": "adjust by precedence",
             "按现状保留": "keep as is", "认可例外": "accepted exception", "已修改": "modified"}
UNDECIDED = "待定"
#: Severities, most serious first: register pieces (冲突 …) and 质检 findings (错误 …).
SEVERITIES = ("冲突", "错误", "警告", "提示", "一致")
SEVERITY_EN = {"冲突": "conflict", "错误": "error", "警告": "warning", "提示": "notice",
               "一致": "consistent"}
#: What "needs review" keeps (the severity filter's first entry).
REVIEW_SEVERITIES = ("冲突", "错误", "警告", "提示")
KIND_EN = {"conflict": "conflict", "qa": "QA", "redline": "control lines",
           "assessment": "assessment"}

#: Columns of the normalised item frame.
COLUMNS = ("item_id", "kind", "type", "type_name", "severity", "area_ha", "township",
           "layer_a", "layer_b", "fid_a", "fid_b", "status", "reviewer", "comment",
           "decided_at", "proposed_code", "proposed_name", "winner_layer", "sliver",
           "message", "register_fid", "minx", "miny", "maxx", "maxy")

_ALIASES = {"item_id": ("item_id", "conflict_id", "id"),
            "type": ("type", "conflict_type"),
            "type_name": ("type_name", "name"),
            "decided_at": ("decided_at", "time", "decision_time"),
            "message": ("message", "zh", "pending_reason")}


def statuses() -> tuple[str, ...]:
    with contextlib.suppress(Exception):
        from multiplan.core import review

        return tuple(review.DECISION_STATUSES)
    return STATUSES


def is_undecided(status: Any) -> bool:
    return status is None or (isinstance(status, float) and math.isnan(status)) \
        or str(status) in ("", UNDECIDED)


def _column(df: pd.DataFrame, name: str) -> pd.Series | None:
    for alias in _ALIASES.get(name, (name,)):
        if alias in df.columns:
            return df[alias]
    return None


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """The item frame with :data:`COLUMNS` (missing ones filled), index 0..n-1."""
    n = len(df)
    out: dict[str, Any] = {}
    for name in COLUMNS:
        col = _column(df, name)
        out[name] = col.to_numpy() if col is not None else np.full(n, None, dtype=object)
    frame = pd.DataFrame(out)
    for name in ("item_id", "kind", "type", "type_name", "severity", "township", "layer_a",
                 "layer_b", "status", "reviewer", "comment", "decided_at", "proposed_code",
                 "proposed_name", "winner_layer", "message"):
        s = frame[name].astype(object)
        frame[name] = s.where(pd.notna(s), None)
    frame["kind"] = frame["kind"].fillna("conflict")
    status = frame["status"]
    blank = status.isna() | status.astype(str).isin(["", "nan", "None", UNDECIDED])
    frame["status"] = status.astype(str).where(~blank, UNDECIDED).astype(object)
    frame["area_ha"] = pd.to_numeric(frame["area_ha"], errors="coerce").astype(float)
    frame["sliver"] = pd.to_numeric(frame["sliver"], errors="coerce").fillna(0).astype(bool)
    for name in ("fid_a", "fid_b", "register_fid"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    for name in ("minx", "miny", "maxx", "maxy"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


@dataclass
class ReviewData:
    """The loaded items and their geometries (None where an item has none)."""

    items: pd.DataFrame
    geoms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    has_register: bool = False
    #: filter choices, computed with the items (in the loading thread)
    choices: dict[str, list[Any]] | None = None
    #: the public comments (公众意见), without geometry (x, y in the project CRS)
    comments: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.items)

    def row_of(self, item_id: str) -> int | None:
        hits = np.flatnonzero(self.items["item_id"].to_numpy() == item_id)
        return int(hits[0]) if len(hits) else None

    def bounds(self, row: int) -> tuple[float, float, float, float] | None:
        b = self.items.loc[row, ["minx", "miny", "maxx", "maxy"]].to_numpy(dtype=float)
        return tuple(float(v) for v in b) if np.isfinite(b).all() else None  # type: ignore


def register_exists(project: Any) -> bool:
    with contextlib.closing(sqlite3.connect(f"file:{project.gpkg}?mode=ro", uri=True)) as c:
        return c.execute("SELECT 1 FROM gpkg_contents WHERE table_name = 'mp_conflicts'"
                         ).fetchone() is not None


def _register_fids(project: Any) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{project.gpkg}?mode=ro", uri=True)) as c:
        return {r[1]: int(r[0]) for r in c.execute(
            'SELECT "fid", "conflict_id" FROM "mp_conflicts"')}


def load_items(project: Any, task: Any = None) -> ReviewData:
    """Read the review items of ``project`` (in a worker thread: a register of 100k pieces
    takes about a second)."""
    from multiplan.core import review
    from multiplan.core.conflicts import read_register

    has_register = register_exists(project)
    raw = review.review_items(project)
    if task is not None:
        task.check()
    items = normalise(pd.DataFrame(raw))
    geoms = np.full(len(items), None, dtype=object)
    if "geometry" in getattr(raw, "columns", ()):
        geoms = np.asarray(pd.Series(raw["geometry"]).to_numpy(), dtype=object)
    if has_register and len(items):
        fids = _register_fids(project)
        ids = items["item_id"].to_numpy()
        found = pd.array([fids.get(str(i)) for i in ids], dtype="Int64")
        items["register_fid"] = items["register_fid"].fillna(
            pd.Series(found, index=items.index))
        missing = np.array([g is None for g in geoms], dtype=bool) & np.asarray(pd.notna(found))
        if missing.any():  # the core's items came without geometry: take the register's
            reg = read_register(project)
            by_id = dict(zip(reg["conflict_id"], reg.geometry.to_numpy(), strict=True))
            for i in np.flatnonzero(missing):
                geoms[i] = by_id.get(str(ids[i]))
    has = np.array([g is not None and not shapely.is_empty(g) for g in geoms], dtype=bool)
    if has.any():
        b = shapely.bounds(np.asarray(geoms[has].tolist(), dtype=object))
        for j, name in enumerate(("minx", "miny", "maxx", "maxy")):
            col = items[name].to_numpy(dtype=float).copy()
            col[has] = b[:, j]
            items[name] = col
    return ReviewData(items, geoms, has_register, choices(items),
                      _read_comments(project))


def _read_comments(project: Any) -> pd.DataFrame | None:
    from multiplan.core import comments

    frame = comments.read_comments(project)
    return pd.DataFrame(frame.drop(columns=frame.geometry.name))


# --------------------------------------------------------------------------- filters

@dataclass
class Filters:
    """The panel's filters; None / empty means "any"."""

    kind: str | None = None
    type: str | None = None
    severity: str | None = None  # a severity, or "review" (REVIEW_SEVERITIES)
    pair: tuple[str, str] | None = None
    township: str | None = None
    min_area_ha: float = 0.0
    status: str | None = None  # a status, or "undecided" / "decided"
    slivers: bool = True


def filter_mask(items: pd.DataFrame, f: Filters) -> np.ndarray:
    """Boolean mask of the rows the filters keep."""
    m = np.ones(len(items), dtype=bool)
    if f.kind:
        m &= (items["kind"] == f.kind).to_numpy()
    if f.type:
        m &= (items["type"] == f.type).to_numpy()
    if f.severity == "review":
        m &= items["severity"].isin(REVIEW_SEVERITIES).to_numpy()
    elif f.severity:
        m &= (items["severity"] == f.severity).to_numpy()
    if f.pair:
        a, b = f.pair
        la, lb = items["layer_a"], items["layer_b"]
        m &= (((la == a) & (lb == b)) | ((la == b) & (lb == a))).to_numpy()
    if f.township:
        m &= (items["township"] == f.township).to_numpy()
    if f.min_area_ha > 0:
        m &= (items["area_ha"].fillna(0.0) >= f.min_area_ha).to_numpy()
    if f.status == "undecided":
        m &= (items["status"] == UNDECIDED).to_numpy()
    elif f.status == "decided":
        m &= (items["status"] != UNDECIDED).to_numpy()
    elif f.status:
        m &= (items["status"] == f.status).to_numpy()
    if not f.slivers:
        m &= ~items["sliver"].to_numpy(dtype=bool)
    return m


def choices(items: pd.DataFrame) -> dict[str, list[Any]]:
    """Values offered by the filter controls (vectorised: 150k items in ≈ 0.1 s)."""
    def uniq(col: str) -> list[str]:
        v = items[col].dropna().astype(str).unique()
        return sorted(x for x in v if x)

    t = items[["type", "type_name"]].dropna(subset=["type"]).drop_duplicates("type")
    types = sorted((str(a), "" if b is None or pd.isna(b) else str(b))
                   for a, b in t.itertuples(index=False))
    ab = items[["layer_a", "layer_b"]].dropna().drop_duplicates()
    pairs = sorted({tuple(sorted((str(a), str(b)))) for a, b in ab.itertuples(index=False)})
    present = set(uniq("severity"))
    sev = [s for s in SEVERITIES if s in present] + sorted(present - set(SEVERITIES))
    return {"kind": uniq("kind"), "type": types, "severity": sev, "pair": pairs,
            "township": uniq("township")}
