"""Undoable edit commands and the command stack (pure Python + shapely; never Qt).

An edit is a :class:`Command` with ``do``/``undo`` and a bilingual label ("移动顶点" /
"Move vertex"). The first ``do`` *computes* the edit against a :class:`FeatureStore` (the
per-layer edit buffer of :mod:`multiplan.core.editing`, or :class:`MemoryStore` in tests)
and records it as a list of :class:`Change` — for every touched fid the feature before and
after. ``undo`` puts the *before* features back and ``redo`` the *after* features, so undo of
everything returns the original features object-for-object and redo returns the edited ones
exactly; nothing is recomputed. The recorded changes are also what the journal of unsaved
edits stores (:func:`command_to_json` / :func:`command_from_json`), so a restored session
replays the very same edits, checking every *before* against the current state.

Commands: :class:`AddPolygon`, :class:`DeleteFeatures`, :class:`MoveFeatures`,
:class:`MoveVertex`, :class:`AddVertex`, :class:`DeleteVertex`, :class:`ReshapeBoundary`,
:class:`SplitByLine`, :class:`MergeFeatures`, :class:`ChangeAttributes` (one feature or a
batch), :class:`PasteFeatures`; :class:`CompoundCommand` makes several one undo step
(also :meth:`CommandStack.macro`). Topological editing (a shared vertex moves, is added or
deleted in every adjacent feature) is a store option; so is clipping new or reshaped
parcels against locked layers and neighbours ("avoid overlap").

No command creates an invalid geometry silently: with the store's ``invalid_policy``
``"refuse"`` (default) an edit that turns a valid geometry invalid is refused with the GEOS
reason; ``"warn"`` applies it and attaches a warning; ``"repair"`` repairs it with
``make_valid`` and says so. An edit of a geometry that was already invalid goes through
with a warning.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from .errors import Message, MultiplanError

# --------------------------------------------------------------------------- errors


class EditRefused(MultiplanError):
    """An edit was refused; the layer and the command stack are unchanged."""

    exit_code = 6


def _refuse(code: str, zh: str, en: str, feature: Any = None, **extra: Any) -> EditRefused:
    return EditRefused(code, zh, en, feature=feature, **extra)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- features


@dataclass(frozen=True, eq=False)
class Feature:
    """One feature: ``fid``, geometry (shapely, 2-D) and attribute values by column.

    Treat instances as immutable: an edit makes a new Feature (:meth:`evolve`).
    """

    fid: int
    geometry: BaseGeometry | None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def evolve(self, **kw: Any) -> Feature:
        return replace(self, **kw)

    def same_as(self, other: Feature | None) -> bool:
        """Exact equality: fid, geometry (WKB bytes) and attribute values."""
        if other is self:
            return True
        if other is None or other.fid != self.fid:
            return False
        return same_geometry(self.geometry, other.geometry) and same_attrs(self.attrs,
                                                                           other.attrs)


def same_geometry(a: BaseGeometry | None, b: BaseGeometry | None) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    return bool(shapely.to_wkb(a) == shapely.to_wkb(b))


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or (a is None and b is None)


def same_attrs(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a is b:
        return True
    return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)


@dataclass(frozen=True)
class Change:
    """One fid's state before and after a command (None = the feature does not exist)."""

    fid: int
    before: Feature | None
    after: Feature | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "deleted"
        return "changed"

    @property
    def geometry_changed(self) -> bool:
        b = self.before.geometry if self.before else None
        a = self.after.geometry if self.after else None
        return a is not b


class VertexRef(NamedTuple):
    """A vertex of a (multi)polygon: polygon part, ring (0 = exterior, 1… = holes), index
    in the ring without its closing coordinate (0 ≤ index < number of distinct vertices).
    For a segment it names the segment's first vertex."""

    part: int
    ring: int
    index: int


# --------------------------------------------------------------------------- store


@dataclass
class StoreOptions:
    """Editing options of a layer's store (set by the session / the GUI's settings)."""

    #: "refuse" | "warn" | "repair" — what an edit producing an invalid geometry does
    invalid_policy: str = "refuse"
    #: move / add / delete a shared vertex in every adjacent feature too
    topological: bool = False
    #: two vertices closer than this (map units) are the same vertex for topological edits
    topology_tolerance: float = 1e-6
    #: declared geometry type of the layer (MULTIPOLYGON, POLYGON, GEOMETRY, …)
    geometry_type: str = "MULTIPOLYGON"


class FeatureStore(Protocol):
    """What a command needs from the layer it edits."""

    options: StoreOptions

    def get(self, fid: int) -> Feature | None: ...
    def put(self, feature: Feature) -> None: ...
    def remove(self, fid: int) -> None: ...
    def new_fid(self) -> int: ...
    def candidates(self, bounds: tuple[float, float, float, float]) -> list[int]: ...
    def validate_attributes(self, values: Mapping[str, Any], feature: Feature | None, *,
                            trusted: bool = False) -> dict[str, Any]: ...
    def default_attributes(self) -> dict[str, Any]: ...
    def clip(self, geometry: BaseGeometry,
             exclude: Iterable[int]) -> tuple[BaseGeometry, list[Message]]: ...
    def check_editable(self) -> None: ...


class MemoryStore:
    """A plain in-memory feature store: for tests, scratch layers and the clipboard.

    ``columns`` (if given) limits attribute names; values are taken as given.
    """

    def __init__(self, features: Iterable[Feature] = (), *, columns: Sequence[str] | None = None,
                 options: StoreOptions | None = None) -> None:
        self.features: dict[int, Feature] = {f.fid: f for f in features}
        self.columns = list(columns) if columns is not None else None
        self.options = options or StoreOptions()
        self._next = max(self.features, default=0) + 1

    def get(self, fid: int) -> Feature | None:
        return self.features.get(fid)

    def put(self, feature: Feature) -> None:
        self.features[feature.fid] = feature
        self._next = max(self._next, feature.fid + 1)

    def remove(self, fid: int) -> None:
        self.features.pop(fid, None)

    def new_fid(self) -> int:
        fid = self._next
        self._next += 1
        return fid

    def fids(self) -> list[int]:
        return sorted(self.features)

    def candidates(self, bounds: tuple[float, float, float, float]) -> list[int]:
        x0, y0, x1, y1 = bounds
        out = []
        for fid, f in self.features.items():
            if f.geometry is None or f.geometry.is_empty:
                continue
            a, b, c, d = f.geometry.bounds
            if a <= x1 and c >= x0 and b <= y1 and d >= y0:
                out.append(fid)
        return sorted(out)

    def validate_attributes(self, values: Mapping[str, Any], feature: Feature | None, *,
                            trusted: bool = False) -> dict[str, Any]:
        if self.columns is not None:
            unknown = [k for k in values if k not in self.columns]
            if unknown:
                raise _refuse("attribute.unknown_field", f"图层没有字段 {', '.join(unknown)}",
                              f"the layer has no field {', '.join(unknown)}")
        return dict(values)

    def default_attributes(self) -> dict[str, Any]:
        return {c: None for c in self.columns} if self.columns is not None else {}

    def clip(self, geometry: BaseGeometry,
             exclude: Iterable[int]) -> tuple[BaseGeometry, list[Message]]:
        return geometry, []

    def check_editable(self) -> None:
        return None

    def snapshot(self) -> dict[int, tuple[bytes | None, tuple[tuple[str, Any], ...]]]:
        return {fid: _feature_key(f) for fid, f in sorted(self.features.items())}


def _feature_key(f: Feature) -> tuple[bytes | None, tuple[tuple[str, Any], ...]]:
    g = None if f.geometry is None else shapely.to_wkb(f.geometry)
    return g, tuple(sorted(f.attrs.items()))


# --------------------------------------------------------------------------- geometry helpers


def polygon_parts(geom: BaseGeometry | None) -> list[Polygon]:
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    if geom.geom_type == "GeometryCollection":
        return [p for g in geom.geoms for p in polygon_parts(g)]
    return []


def to_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    return MultiPolygon(polygon_parts(geom))


def _rings(geom: BaseGeometry) -> list[list[np.ndarray]]:
    """Parts → rings → closed (n, 2) coordinate arrays of a (multi)polygon."""
    return [[np.asarray(p.exterior.coords)[:, :2].copy()]
            + [np.asarray(r.coords)[:, :2].copy() for r in p.interiors]
            for p in polygon_parts(geom)]


def _from_rings(rings: list[list[np.ndarray]], like: BaseGeometry) -> BaseGeometry:
    polys = [Polygon(r[0], r[1:]) for r in rings]
    if isinstance(like, Polygon) and len(polys) == 1:
        return polys[0]
    return MultiPolygon(polys)


def _ring_at(rings: list[list[np.ndarray]], ref: VertexRef, fid: int) -> np.ndarray:
    try:
        ring = rings[ref.part][ref.ring]
    except IndexError:
        raise _refuse("vertex.not_found", f"要素 {fid} 没有顶点 {tuple(ref)}",
                      f"feature {fid} has no vertex {tuple(ref)}", feature=fid) from None
    if not 0 <= ref.index < len(ring) - 1:
        raise _refuse("vertex.not_found", f"要素 {fid} 没有顶点 {tuple(ref)}",
                      f"feature {fid} has no vertex {tuple(ref)}", feature=fid)
    return ring


def vertex_xy(geom: BaseGeometry, ref: VertexRef) -> tuple[float, float]:
    ring = _ring_at(_rings(geom), ref, -1)
    return float(ring[ref.index, 0]), float(ring[ref.index, 1])


def iter_vertices(geom: BaseGeometry) -> Iterator[tuple[VertexRef, float, float]]:
    for p, part in enumerate(_rings(geom)):
        for r, ring in enumerate(part):
            for i in range(len(ring) - 1):
                yield VertexRef(p, r, i), float(ring[i, 0]), float(ring[i, 1])


def find_vertices(geom: BaseGeometry, x: float, y: float, tol: float) -> list[VertexRef]:
    """Every vertex of ``geom`` within ``tol`` of (x, y)."""
    out = []
    for p, part in enumerate(_rings(geom)):
        for r, ring in enumerate(part):
            d = np.hypot(ring[:-1, 0] - x, ring[:-1, 1] - y)
            out.extend(VertexRef(p, r, int(i)) for i in np.flatnonzero(d <= tol))
    return out


def nearest_vertex(geom: BaseGeometry, x: float, y: float
                   ) -> tuple[VertexRef, float] | None:
    best: tuple[VertexRef, float] | None = None
    for p, part in enumerate(_rings(geom)):
        for r, ring in enumerate(part):
            d = np.hypot(ring[:-1, 0] - x, ring[:-1, 1] - y)
            if len(d):
                i = int(np.argmin(d))
                if best is None or d[i] < best[1]:
                    best = (VertexRef(p, r, i), float(d[i]))
    return best


def _segment_distances(ring: np.ndarray, x: float, y: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = ring[:-1], ring[1:]
    ab = b - a
    len2 = (ab ** 2).sum(axis=1)
    t = np.where(len2 > 0, ((x - a[:, 0]) * ab[:, 0] + (y - a[:, 1]) * ab[:, 1])
                 / np.where(len2 > 0, len2, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    px = a[:, 0] + t * ab[:, 0]
    py = a[:, 1] + t * ab[:, 1]
    return np.hypot(px - x, py - y), px, py


def nearest_segment(geom: BaseGeometry, x: float, y: float
                    ) -> tuple[VertexRef, tuple[float, float], float] | None:
    """The segment of ``geom`` nearest to (x, y): its first vertex, the nearest point on it
    and the distance."""
    best: tuple[VertexRef, tuple[float, float], float] | None = None
    for p, part in enumerate(_rings(geom)):
        for r, ring in enumerate(part):
            if len(ring) < 2:
                continue
            d, px, py = _segment_distances(ring, x, y)
            i = int(np.argmin(d))
            if best is None or d[i] < best[2]:
                best = (VertexRef(p, r, i), (float(px[i]), float(py[i])), float(d[i]))
    return best


def _set_vertex(ring: np.ndarray, i: int, x: float, y: float) -> None:
    ring[i] = (x, y)
    if i == 0:
        ring[-1] = (x, y)


def _delete_vertex(ring: np.ndarray, i: int) -> np.ndarray:
    body = np.delete(ring[:-1], i, axis=0)
    return np.vstack([body, body[:1]])


def _insert_vertex(ring: np.ndarray, i: int, x: float, y: float) -> np.ndarray:
    return np.insert(ring, i + 1, (x, y), axis=0)


def _bbox(x: float, y: float, tol: float) -> tuple[float, float, float, float]:
    return (x - tol, y - tol, x + tol, y + tol)


def reshape_polygon(poly: Polygon, line: LineString) -> BaseGeometry | None:
    """Reshape one polygon by a drawn line (None when the line does not change it).

    The line and the polygon boundary are noded and polygonized. Faces outside the polygon
    that the line bounds are added; when the line cuts through the interior only the
    largest inside face is kept (the cut-off side is removed) — the behaviour planners know
    from other GIS. Dangling line ends inside or outside are ignored.
    """
    boundary = poly.boundary
    crossing = line.intersection(boundary)
    n_points = len(shapely.get_coordinates(crossing)) if not crossing.is_empty else 0
    if n_points < 2:
        return None
    noded = shapely.union_all([boundary, line])
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    if not faces:
        return None
    inside, added = [], []
    for f in faces:
        rp = f.representative_point()
        if poly.covers(rp):
            inside.append(f)
        elif f.boundary.intersection(line).length > 0:
            added.append(f)
    # faces of the polygon itself: polygonize returns a polygon with holes and the holes
    # again as faces; keep the inside faces that are not holes of another inside face
    inside = [f for f in inside if f.area > 0]
    if len(inside) > 1:
        keep = [max(inside, key=lambda g: g.area)]
    else:
        keep = inside
    if not added and len(inside) <= 1:
        return None
    result = shapely.union_all(keep + added)
    return result if not result.is_empty else None


# --------------------------------------------------------------------------- commands


def _msg(code: str, zh: str, en: str, feature: Any = None, **extra: Any) -> Message:
    return Message(code, zh, en, None, feature, dict(extra))


class Command:
    """Base of every edit. Subclasses implement :meth:`compute` (and :meth:`params`)."""

    kind = "edit"
    label_zh = "编辑"
    label_en = "Edit"

    def __init__(self, *, reason: str | None = None) -> None:
        self.reason = reason
        self.changes: list[Change] | None = None
        self.warnings: list[Message] = []
        self.created = _now()

    # -- text
    @property
    def label(self) -> str:
        return self.label_zh

    def text(self, lang: str = "zh") -> str:
        return self.label_zh if lang.startswith("zh") else self.label_en

    def __repr__(self) -> str:
        n = len(self.changes) if self.changes is not None else "?"
        return f"<{type(self).__name__} {self.label_zh} / {self.label_en} ({n} changes)>"

    # -- effect
    def compute(self, store: FeatureStore) -> list[Change]:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {}

    def do(self, store: FeatureStore) -> None:
        if self.changes is None:
            store.check_editable()
            changes = self.compute(store)
            if not changes:
                raise _refuse("edit.no_change", f"{self.label_zh}：没有要素被改变",
                              f"{self.label_en}: no feature was changed")
            self.changes = _finish(store, changes, self.warnings)
        apply_changes(store, self.changes, forward=True)

    def undo(self, store: FeatureStore) -> None:
        assert self.changes is not None, "undo of a command that was never done"
        apply_changes(store, self.changes, forward=False)

    # -- summary
    def affected(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {"added": [], "changed": [], "deleted": []}
        for c in self.changes or []:
            out[c.kind].append(c.fid)
        return out


def apply_changes(store: FeatureStore, changes: Sequence[Change], *, forward: bool,
                  verify: bool = True) -> None:
    """Apply recorded changes (forward: before → after; backward: after → before).

    With ``verify`` each fid's current state must be the expected start state (identity
    first, then exact equality); otherwise nothing is applied and
    ``edit.state_mismatch`` is raised.
    """
    seq = list(changes) if forward else list(reversed(changes))
    if verify:
        # changes of one command touch each fid once, except compound commands, which
        # apply their children one by one (and so verify each child's start state)
        expect: dict[int, Feature | None] = {}
        for c in seq:
            start, end = (c.before, c.after) if forward else (c.after, c.before)
            cur = expect[c.fid] if c.fid in expect else store.get(c.fid)
            if not (cur is start or (cur is not None and cur.same_as(start))):
                raise _refuse("edit.state_mismatch",
                              f"要素 {c.fid} 的当前状态与记录的编辑不符，未应用",
                              f"feature {c.fid} is not in the state the recorded edit "
                              f"expects; nothing applied", feature=c.fid)
            expect[c.fid] = end
    for c in seq:
        end = c.after if forward else c.before
        if end is None:
            store.remove(c.fid)
        else:
            store.put(end)


def _geom_kind(geometry_type: str) -> str:
    t = geometry_type.upper()
    if "POLYGON" in t or "SURFACE" in t:
        return "polygon"
    if "LINE" in t or "CURVE" in t:
        return "line"
    if "POINT" in t:
        return "point"
    return "any"


def _normalise_geometry(store: FeatureStore, geom: BaseGeometry, fid: int) -> BaseGeometry:
    """2-D, and the layer's declared type (a Polygon is promoted to MultiPolygon)."""
    if shapely.get_coordinate_dimension(geom) > 2:
        geom = shapely.force_2d(geom)
    gtype = store.options.geometry_type.upper()
    if gtype == "MULTIPOLYGON":
        if isinstance(geom, Polygon):
            geom = MultiPolygon([geom])
        elif not isinstance(geom, MultiPolygon):
            parts = polygon_parts(geom)
            if not parts:
                raise _refuse("geometry.wrong_type",
                              f"要素 {fid} 的结果不是面（{geom.geom_type}）",
                              f"feature {fid}: the result is not a polygon ({geom.geom_type})",
                              feature=fid)
            geom = MultiPolygon(parts)
    elif gtype == "POLYGON":
        if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1:
            geom = geom.geoms[0]
        if not isinstance(geom, Polygon):
            raise _refuse("geometry.wrong_type",
                          f"图层为单部件面，要素 {fid} 的结果为 {geom.geom_type}",
                          f"the layer holds single polygons; feature {fid} would become a "
                          f"{geom.geom_type}", feature=fid)
    return geom


def _finish(store: FeatureStore, changes: list[Change], warnings: list[Message]
            ) -> list[Change]:
    """Normalise new geometries and apply the invalid-geometry policy."""
    policy = store.options.invalid_policy
    out = []
    for c in changes:
        after = c.after
        if after is not None and c.geometry_changed and after.geometry is not None:
            geom = after.geometry
            if geom.is_empty:
                raise _refuse("geometry.empty", f"要素 {c.fid} 的结果几何为空",
                              f"feature {c.fid}: the resulting geometry is empty",
                              feature=c.fid)
            geom = _normalise_geometry(store, geom, c.fid)
            if not shapely.is_valid(geom):
                why = shapely.is_valid_reason(geom)
                was_valid = (c.before is None or c.before.geometry is None
                             or shapely.is_valid(c.before.geometry))
                if policy == "repair":
                    fixed = shapely.make_valid(geom)
                    geom = _normalise_geometry(store, fixed, c.fid)
                    warnings.append(_msg("geometry.repaired",
                                         f"要素 {c.fid} 的几何无效（{why}），已自动修复",
                                         f"feature {c.fid}: the geometry was invalid ({why}) "
                                         f"and was repaired", c.fid))
                elif policy == "warn" or not was_valid:
                    warnings.append(_msg("geometry.invalid",
                                         f"要素 {c.fid} 的几何无效：{why}"
                                         + ("" if was_valid else "（编辑前已无效）"),
                                         f"feature {c.fid} has an invalid geometry: {why}"
                                         + ("" if was_valid else " (it was invalid before "
                                            "the edit)"), c.fid, reason=why))
                else:
                    raise _refuse("geometry.invalid",
                                  f"该编辑会使要素 {c.fid} 的几何无效（{why}），已拒绝",
                                  f"the edit would make feature {c.fid} invalid ({why}); "
                                  f"refused", feature=c.fid, reason=why)
            after = after.evolve(geometry=geom)
        out.append(Change(c.fid, c.before, after))
    return out


def _require(store: FeatureStore, fid: int) -> Feature:
    f = store.get(int(fid))
    if f is None:
        raise _refuse("feature.not_found", f"要素 {fid} 不存在", f"feature {fid} does not exist",
                      feature=fid)
    return f


def _require_polygon_layer(store: FeatureStore, label_zh: str, label_en: str) -> None:
    if _geom_kind(store.options.geometry_type) not in ("polygon", "any"):
        raise _refuse("layer.not_polygon", f"{label_zh}只适用于面图层",
                      f"{label_en} works on polygon layers only")


def _clip(store: FeatureStore, geom: BaseGeometry, exclude: Iterable[int],
          warnings: list[Message], fid: int) -> BaseGeometry:
    clipped, msgs = store.clip(geom, exclude)
    warnings.extend(msgs)
    if clipped is None or clipped.is_empty or not polygon_parts(clipped):
        raise _refuse("overlap.nothing_left",
                      f"避让重叠后要素 {fid} 没有剩余面积，已拒绝",
                      f"nothing of feature {fid} is left after avoiding overlaps; refused",
                      feature=fid)
    return clipped


class AddPolygon(Command):
    kind = "add_polygon"
    label_zh = "添加面"
    label_en = "Add polygon"

    def __init__(self, geometry: BaseGeometry, attrs: Mapping[str, Any] | None = None, *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.geometry = geometry
        self.attrs = dict(attrs or {})
        self.fid: int | None = None

    def compute(self, store: FeatureStore) -> list[Change]:
        _require_polygon_layer(store, self.label_zh, self.label_en)
        if not polygon_parts(self.geometry):
            raise _refuse("geometry.wrong_type", "新要素须为面", "the new feature must be a polygon")
        fid = store.new_fid()
        geom = _clip(store, self.geometry, (), self.warnings, fid)
        attrs = store.default_attributes()
        attrs.update(store.validate_attributes(self.attrs, None))
        self.fid = fid
        return [Change(fid, None, Feature(fid, geom, attrs))]

    def params(self) -> dict[str, Any]:
        return {"fid": self.fid, "attrs": self.attrs}


class DeleteFeatures(Command):
    kind = "delete_features"
    label_zh = "删除要素"
    label_en = "Delete features"

    def __init__(self, fids: Iterable[int], *, reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fids = sorted({int(f) for f in fids})

    def compute(self, store: FeatureStore) -> list[Change]:
        return [Change(fid, _require(store, fid), None) for fid in self.fids]

    def params(self) -> dict[str, Any]:
        return {"fids": self.fids}


class MoveFeatures(Command):
    kind = "move_features"
    label_zh = "移动要素"
    label_en = "Move features"

    def __init__(self, fids: Iterable[int], dx: float, dy: float, *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fids = sorted({int(f) for f in fids})
        self.dx, self.dy = float(dx), float(dy)

    def compute(self, store: FeatureStore) -> list[Change]:
        out = []
        for fid in self.fids:
            f = _require(store, fid)
            if f.geometry is None:
                continue
            g = shapely.transform(f.geometry, lambda c: c + (self.dx, self.dy))
            out.append(Change(fid, f, f.evolve(geometry=g)))
        return out

    def params(self) -> dict[str, Any]:
        return {"fids": self.fids, "dx": self.dx, "dy": self.dy}


class _VertexCommand(Command):
    """Shared machinery of the vertex edits (topological option included)."""

    def _topo(self, store: FeatureStore) -> bool:
        return bool(store.options.topological)

    def _neighbours(self, store: FeatureStore, fid: int, x: float, y: float) -> list[Feature]:
        tol = store.options.topology_tolerance
        out = []
        for other in store.candidates(_bbox(x, y, max(tol, 1e-12))):
            if other != fid:
                g = store.get(other)
                if g is not None and g.geometry is not None:
                    out.append(g)
        return out


class MoveVertex(_VertexCommand):
    kind = "move_vertex"
    label_zh = "移动顶点"
    label_en = "Move vertex"

    def __init__(self, fid: int, vertex: VertexRef | Sequence[int], to: Sequence[float], *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fid = int(fid)
        self.vertex = VertexRef(*map(int, vertex))
        self.to = (float(to[0]), float(to[1]))

    def compute(self, store: FeatureStore) -> list[Change]:
        f = _require(store, self.fid)
        rings = _rings(f.geometry)
        ring = _ring_at(rings, self.vertex, self.fid)
        x, y = float(ring[self.vertex.index, 0]), float(ring[self.vertex.index, 1])
        if self._topo(store):
            return self._move_all(store, f, x, y)
        _set_vertex(ring, self.vertex.index, *self.to)
        return [Change(f.fid, f, f.evolve(geometry=_from_rings(rings, f.geometry)))]

    def _move_all(self, store: FeatureStore, f: Feature, x: float, y: float) -> list[Change]:
        tol = store.options.topology_tolerance
        out = []
        for g in [f, *self._neighbours(store, f.fid, x, y)]:
            refs = find_vertices(g.geometry, x, y, tol)
            if g is f and self.vertex not in refs:
                refs.append(self.vertex)
            if not refs:
                continue
            rings = _rings(g.geometry)
            for ref in refs:
                _set_vertex(rings[ref.part][ref.ring], ref.index, *self.to)
            out.append(Change(g.fid, g, g.evolve(geometry=_from_rings(rings, g.geometry))))
        return out

    def params(self) -> dict[str, Any]:
        return {"fid": self.fid, "vertex": list(self.vertex), "to": list(self.to)}


class AddVertex(_VertexCommand):
    """Insert a vertex on segment ``segment`` (its first vertex) at ``at``."""

    kind = "add_vertex"
    label_zh = "添加顶点"
    label_en = "Add vertex"

    def __init__(self, fid: int, segment: VertexRef | Sequence[int], at: Sequence[float], *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fid = int(fid)
        self.segment = VertexRef(*map(int, segment))
        self.at = (float(at[0]), float(at[1]))

    def compute(self, store: FeatureStore) -> list[Change]:
        f = _require(store, self.fid)
        rings = _rings(f.geometry)
        ring = _ring_at(rings, self.segment, self.fid)
        s = self.segment
        rings[s.part][s.ring] = _insert_vertex(ring, s.index, *self.at)
        out = [Change(f.fid, f, f.evolve(geometry=_from_rings(rings, f.geometry)))]
        if self._topo(store):
            tol = store.options.topology_tolerance
            x, y = self.at
            for g in self._neighbours(store, f.fid, x, y):
                if find_vertices(g.geometry, x, y, tol):
                    continue  # the neighbour already has a vertex there
                grings = _rings(g.geometry)
                touched = False
                for part in grings:
                    for r, gring in enumerate(part):
                        d, _, _ = _segment_distances(gring, x, y)
                        i = int(np.argmin(d)) if len(d) else -1
                        if i >= 0 and d[i] <= tol:
                            part[r] = _insert_vertex(gring, i, x, y)
                            touched = True
                if touched:
                    out.append(Change(g.fid, g, g.evolve(
                        geometry=_from_rings(grings, g.geometry))))
        return out

    def params(self) -> dict[str, Any]:
        return {"fid": self.fid, "segment": list(self.segment), "at": list(self.at)}


class DeleteVertex(_VertexCommand):
    kind = "delete_vertex"
    label_zh = "删除顶点"
    label_en = "Delete vertex"

    def __init__(self, fid: int, vertex: VertexRef | Sequence[int], *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fid = int(fid)
        self.vertex = VertexRef(*map(int, vertex))

    def _drop(self, g: Feature, refs: list[VertexRef]) -> BaseGeometry:
        rings = _rings(g.geometry)
        # delete from the highest index down so earlier indexes stay valid
        for ref in sorted(refs, key=lambda r: r.index, reverse=True):
            ring = rings[ref.part][ref.ring]
            if len(ring) - 1 <= 3:
                raise _refuse("vertex.too_few",
                              f"要素 {g.fid} 的环只剩 3 个顶点，不能再删除",
                              f"a ring of feature {g.fid} has only 3 vertices left; a vertex "
                              f"cannot be deleted", feature=g.fid)
            rings[ref.part][ref.ring] = _delete_vertex(ring, ref.index)
        return _from_rings(rings, g.geometry)

    def compute(self, store: FeatureStore) -> list[Change]:
        f = _require(store, self.fid)
        rings = _rings(f.geometry)
        ring = _ring_at(rings, self.vertex, self.fid)
        x, y = float(ring[self.vertex.index, 0]), float(ring[self.vertex.index, 1])
        out = [Change(f.fid, f, f.evolve(geometry=self._drop(f, [self.vertex])))]
        if self._topo(store):
            tol = store.options.topology_tolerance
            for g in self._neighbours(store, f.fid, x, y):
                refs = find_vertices(g.geometry, x, y, tol)
                if refs:
                    out.append(Change(g.fid, g, g.evolve(geometry=self._drop(g, refs))))
        return out

    def params(self) -> dict[str, Any]:
        return {"fid": self.fid, "vertex": list(self.vertex)}


def _as_line(line: BaseGeometry | Sequence[Sequence[float]]) -> LineString:
    g = line if isinstance(line, BaseGeometry) else LineString(line)
    if not isinstance(g, LineString) or g.is_empty or len(g.coords) < 2:
        raise _refuse("geometry.line_required", "需要一条至少两个点的线",
                      "a line of at least two points is needed")
    return shapely.force_2d(g)


class ReshapeBoundary(Command):
    kind = "reshape"
    label_zh = "重塑边界"
    label_en = "Reshape boundary"

    def __init__(self, fid: int, line: BaseGeometry | Sequence[Sequence[float]], *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fid = int(fid)
        self.line = _as_line(line)

    def compute(self, store: FeatureStore) -> list[Change]:
        _require_polygon_layer(store, self.label_zh, self.label_en)
        f = _require(store, self.fid)
        parts = polygon_parts(f.geometry)
        new_parts: list[BaseGeometry] = []
        changed = False
        for part in parts:
            res = reshape_polygon(part, self.line) if self.line.intersects(part) else None
            if res is None:
                new_parts.append(part)
            else:
                new_parts.append(res)
                changed = True
        if not changed:
            raise _refuse("reshape.no_effect",
                          f"重塑线须与要素 {self.fid} 的边界相交两次以上，且改变其形状",
                          f"the reshape line must cross the boundary of feature {self.fid} at "
                          f"least twice and change its shape", feature=self.fid)
        geom = shapely.union_all(new_parts) if len(new_parts) > 1 else new_parts[0]
        geom = _clip(store, geom, (self.fid,), self.warnings, self.fid)
        return [Change(f.fid, f, f.evolve(geometry=geom))]

    def params(self) -> dict[str, Any]:
        return {"fid": self.fid, "line": self.line.wkt}


class SplitByLine(Command):
    """Split features by a drawn line. Each split feature keeps its fid for its largest
    piece (plus any part the line does not touch); the other pieces become new features
    with the same attributes."""

    kind = "split"
    label_zh = "分割要素"
    label_en = "Split features"

    def __init__(self, line: BaseGeometry | Sequence[Sequence[float]],
                 fids: Iterable[int] | None = None, *, reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.line = _as_line(line)
        self.fids = sorted({int(f) for f in fids}) if fids is not None else None
        self.new_fids: list[int] = []

    def compute(self, store: FeatureStore) -> list[Change]:
        from shapely.ops import split

        _require_polygon_layer(store, self.label_zh, self.label_en)
        targets = self.fids if self.fids is not None else store.candidates(self.line.bounds)
        out: list[Change] = []
        for fid in targets:
            f = _require(store, fid)
            if f.geometry is None or not self.line.intersects(f.geometry):
                continue
            kept: list[Polygon] = []
            pieces: list[Polygon] = []
            for part in polygon_parts(f.geometry):
                got = [g for g in split(part, self.line).geoms if isinstance(g, Polygon)]
                if len(got) > 1:
                    pieces.extend(got)
                else:
                    kept.append(part)
            if not pieces:
                continue
            pieces.sort(key=lambda g: g.area, reverse=True)
            out.append(Change(fid, f, f.evolve(geometry=MultiPolygon(kept + pieces[:1]))))
            for piece in pieces[1:]:
                nf = store.new_fid()
                self.new_fids.append(nf)
                out.append(Change(nf, None, Feature(nf, piece, dict(f.attrs))))
        if not out:
            raise _refuse("split.no_effect", "分割线没有完整穿过任何要素",
                          "the split line does not cross any feature completely")
        return out

    def params(self) -> dict[str, Any]:
        return {"line": self.line.wkt, "fids": self.fids, "new_fids": self.new_fids}


class MergeFeatures(Command):
    """Merge features into ``keep`` (whose attributes the user chose), optionally with
    ``attrs`` overriding some values; the others are deleted."""

    kind = "merge"
    label_zh = "合并要素"
    label_en = "Merge features"

    def __init__(self, fids: Iterable[int], keep: int, attrs: Mapping[str, Any] | None = None,
                 *, reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fids = sorted({int(f) for f in fids})
        self.keep = int(keep)
        self.attrs = dict(attrs or {})

    def compute(self, store: FeatureStore) -> list[Change]:
        _require_polygon_layer(store, self.label_zh, self.label_en)
        if len(self.fids) < 2:
            raise _refuse("merge.too_few", "合并至少需要选择两个要素",
                          "select at least two features to merge")
        if self.keep not in self.fids:
            raise _refuse("merge.keep_not_selected", f"保留属性的要素 {self.keep} 不在所选要素中",
                          f"feature {self.keep}, whose attributes are kept, is not selected",
                          feature=self.keep)
        feats = [_require(store, fid) for fid in self.fids]
        geom = shapely.union_all([f.geometry for f in feats if f.geometry is not None])
        parts = polygon_parts(geom)
        if len(parts) > 1:
            self.warnings.append(_msg("merge.multipart",
                                      f"合并结果由 {len(parts)} 个互不相连的部分组成",
                                      f"the merged feature has {len(parts)} separate parts",
                                      self.keep))
        keep = next(f for f in feats if f.fid == self.keep)
        attrs = dict(keep.attrs)
        if self.attrs:
            attrs.update(store.validate_attributes(self.attrs, keep))
        out = [Change(keep.fid, keep, keep.evolve(geometry=geom, attrs=attrs))]
        out += [Change(f.fid, f, None) for f in feats if f.fid != self.keep]
        return out

    def params(self) -> dict[str, Any]:
        return {"fids": self.fids, "keep": self.keep, "attrs": self.attrs}


class ChangeAttributes(Command):
    """Set ``values`` on one feature or on a batch (the same values on every fid)."""

    kind = "change_attributes"
    label_zh = "修改属性"
    label_en = "Change attributes"

    def __init__(self, fids: int | Iterable[int], values: Mapping[str, Any], *,
                 reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.fids = [int(fids)] if isinstance(fids, int | np.integer) else sorted(
            {int(f) for f in fids})
        self.values = dict(values)
        if len(self.fids) > 1:
            self.label_zh = "批量修改属性"
            self.label_en = "Batch change attributes"

    def compute(self, store: FeatureStore) -> list[Change]:
        if not self.values:
            raise _refuse("attribute.nothing", "没有要修改的属性", "no attribute to change")
        out = []
        # the checks depend on the values only: validate once for the whole batch
        valid = store.validate_attributes(self.values, None)
        for fid in self.fids:
            f = _require(store, fid)
            attrs = dict(f.attrs)
            attrs.update(valid)
            if not same_attrs(attrs, f.attrs):
                out.append(Change(fid, f, f.evolve(attrs=attrs)))
        return out

    def params(self) -> dict[str, Any]:
        return {"fids": self.fids, "values": self.values}


class PasteFeatures(Command):
    """Add copies of features (from this or another layer). Attribute columns the layer
    lacks are dropped with a warning; geometries are clipped when avoiding overlaps."""

    kind = "paste"
    label_zh = "粘贴要素"
    label_en = "Paste features"

    def __init__(self, features: Iterable[Feature], *, reason: str | None = None) -> None:
        super().__init__(reason=reason)
        self.features = list(features)
        self.new_fids: list[int] = []

    def compute(self, store: FeatureStore) -> list[Change]:
        _require_polygon_layer(store, self.label_zh, self.label_en)
        defaults = store.default_attributes()
        out = []
        dropped: set[str] = set()
        for src in self.features:
            if src.geometry is None or not polygon_parts(src.geometry):
                raise _refuse("geometry.wrong_type", f"粘贴的要素 {src.fid} 不是面",
                              f"pasted feature {src.fid} is not a polygon", feature=src.fid)
            fid = store.new_fid()
            geom = _clip(store, src.geometry, (), self.warnings, fid)
            values = {k: v for k, v in src.attrs.items() if not defaults or k in defaults}
            dropped |= set(src.attrs) - set(values)
            attrs = dict(defaults)
            # values copied from existing features: types are coerced, but codes and
            # derived columns are taken as they are (they were already in a layer)
            attrs.update(store.validate_attributes(values, None, trusted=True))
            self.new_fids.append(fid)
            out.append(Change(fid, None, Feature(fid, geom, attrs)))
        if dropped:
            names = ", ".join(sorted(dropped))
            self.warnings.append(_msg("paste.fields_dropped", f"本图层没有字段 {names}，已忽略",
                                      f"this layer has no field {names}; ignored"))
        return out

    def params(self) -> dict[str, Any]:
        return {"sources": [f.fid for f in self.features], "new_fids": self.new_fids}


class CompoundCommand(Command):
    """Several commands as one undo step. Children are done in order and undone in
    reverse; if one is refused the ones already done are undone and nothing changes."""

    kind = "compound"

    def __init__(self, label_zh: str, label_en: str, children: Iterable[Command] = (), *,
                 reason: str | None = None, done: bool = False) -> None:
        super().__init__(reason=reason)
        self.label_zh = label_zh
        self.label_en = label_en
        self.children = list(children)
        if done:
            self._collect()

    def _collect(self) -> None:
        self.changes = [c for ch in self.children for c in (ch.changes or [])]
        self.warnings = [w for ch in self.children for w in ch.warnings]

    def do(self, store: FeatureStore) -> None:
        done: list[Command] = []
        try:
            for ch in self.children:
                ch.do(store)
                done.append(ch)
        except BaseException:
            for ch in reversed(done):
                ch.undo(store)
            raise
        self._collect()

    def undo(self, store: FeatureStore) -> None:
        for ch in reversed(self.children):
            ch.undo(store)

    def params(self) -> dict[str, Any]:
        return {"children": [ch.kind for ch in self.children]}


class RecordedCommand(Command):
    """A command restored from the journal: it replays its recorded changes exactly."""

    def __init__(self, kind: str, label_zh: str, label_en: str, changes: list[Change],
                 params: dict[str, Any], *, reason: str | None, created: str,
                 warnings: list[Message]) -> None:
        super().__init__(reason=reason)
        self.kind = kind
        self.label_zh = label_zh
        self.label_en = label_en
        self.changes = changes
        self._params = params
        self.created = created
        self.warnings = warnings

    def params(self) -> dict[str, Any]:
        return self._params


# --------------------------------------------------------------------------- serialisation


def _enc_value(v: Any) -> Any:
    t = type(v)
    if t is str or t is int or v is None or (t is float and math.isfinite(v)):
        return v
    if isinstance(v, bytes):
        return {"$b": base64.b64encode(v).decode("ascii")}
    if isinstance(v, np.generic):
        return _enc_value(v.item())
    if isinstance(v, float):
        return {"$f": repr(v)}
    return v


def _dec_value(v: Any) -> Any:
    if isinstance(v, dict):
        if "$b" in v:
            return base64.b64decode(v["$b"])
        if "$f" in v:
            return float(v["$f"])
    return v


def _enc_geom(g: BaseGeometry | None) -> str | None:
    return None if g is None else base64.b64encode(shapely.to_wkb(g)).decode("ascii")


def _dec_geom(s: str | None) -> BaseGeometry | None:
    return None if s is None else shapely.from_wkb(base64.b64decode(s))


def _enc_feature(f: Feature | None, ref: Feature | None, geoms: Iterator[str | None]
                 ) -> dict[str, Any] | None:
    if f is None:
        return None
    out: dict[str, Any] = {}
    out["g"] = "=" if ref is not None and f.geometry is ref.geometry else next(geoms)
    out["a"] = ("=" if ref is not None and same_attrs(f.attrs, ref.attrs)
                else {k: _enc_value(v) for k, v in f.attrs.items()})
    return out


def _enc_geoms(changes: Sequence[Change]) -> Iterator[str | None]:
    """base64 WKB of every geometry the records of ``changes`` hold, in record order
    (one vectorised WKB call)."""
    geoms = []
    for c in changes:
        if c.before is not None:
            geoms.append(c.before.geometry)
        if c.after is not None and (c.before is None
                                    or c.after.geometry is not c.before.geometry):
            geoms.append(c.after.geometry)
    wkb = shapely.to_wkb(np.array(geoms, dtype=object)) if geoms else []
    return iter([None if w is None else base64.b64encode(w).decode("ascii") for w in wkb])


def _dec_feature(d: dict[str, Any] | None, fid: int, ref: Feature | None) -> Feature | None:
    if d is None:
        return None
    g = ref.geometry if d["g"] == "=" and ref is not None else _dec_geom(d["g"])
    a = dict(ref.attrs) if d["a"] == "=" and ref is not None else {
        k: _dec_value(v) for k, v in d["a"].items()}
    return Feature(fid, g, a)


def _enc_message(m: Message) -> dict[str, Any]:
    return m.to_dict()


def _dec_message(d: dict[str, Any]) -> Message:
    return Message(d["code"], d["zh"], d["en"], d.get("path"), d.get("feature"),
                   d.get("extra") or {})


def command_to_json(cmd: Command) -> dict[str, Any]:
    """A JSON-able record of a done command: kind, labels, reason, time, parameters,
    warnings and its changes (geometries as base64 WKB; unchanged parts written "=")."""
    d: dict[str, Any] = {
        "kind": cmd.kind, "label": cmd.label_zh, "label_en": cmd.label_en,
        "reason": cmd.reason, "created": cmd.created,
        "params": _jsonable(cmd.params()),
        "warnings": [_enc_message(m) for m in cmd.warnings],
    }
    if isinstance(cmd, CompoundCommand):
        d["children"] = [command_to_json(ch) for ch in cmd.children]
    else:
        changes = cmd.changes or []
        geoms = _enc_geoms(changes)
        d["changes"] = [{"fid": c.fid, "b": _enc_feature(c.before, None, geoms),
                         "a": _enc_feature(c.after, c.before, geoms)} for c in changes]
    return d


def command_from_json(d: dict[str, Any]) -> Command:
    warnings = [_dec_message(m) for m in d.get("warnings", [])]
    if "children" in d:
        comp = CompoundCommand(d["label"], d["label_en"],
                               [command_from_json(ch) for ch in d["children"]],
                               reason=d.get("reason"), done=True)
        comp.created = d.get("created", comp.created)
        comp.warnings = warnings
        return comp
    changes = []
    for c in d["changes"]:
        fid = int(c["fid"])
        before = _dec_feature(c["b"], fid, None)
        after = _dec_feature(c["a"], fid, before)
        changes.append(Change(fid, before, after))
    return RecordedCommand(d["kind"], d["label"], d["label_en"], changes, d.get("params", {}),
                           reason=d.get("reason"), created=d.get("created", _now()),
                           warnings=warnings)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, BaseGeometry):
        return v.wkt
    return _enc_value(v)


# --------------------------------------------------------------------------- stack

#: listener(event, command): event is "push", "undo", "redo", "clear" or "clean"
Listener = Callable[[str, Command | None], None]


class CommandStack:
    """The undo/redo stack of one layer's store.

    :meth:`push` does a command and puts it on the stack (dropping anything undone).
    Listeners hear every change; if a listener raises on push/undo/redo (e.g. the journal
    could not be written) the step is reverted and the error propagates, so what the
    listener recorded and what the store holds never diverge.
    """

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self._commands: list[Command] = []
        self._index = 0  # commands[:index] are done
        self._clean = 0
        self._listeners: list[Listener] = []
        self._macro: list[CompoundCommand] = []

    # -- state
    @property
    def index(self) -> int:
        return self._index

    def __len__(self) -> int:
        return len(self._commands)

    @property
    def commands(self) -> list[Command]:
        return list(self._commands)

    def done(self) -> list[Command]:
        """The commands currently applied, oldest first."""
        return self._commands[: self._index]

    @property
    def can_undo(self) -> bool:
        return self._index > 0 and not self._macro

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._commands) and not self._macro

    def undo_text(self, lang: str = "zh") -> str:
        verb = "撤销" if lang.startswith("zh") else "Undo"
        if not self.can_undo:
            return verb
        return f"{verb} {self._commands[self._index - 1].text(lang)}"

    def redo_text(self, lang: str = "zh") -> str:
        verb = "重做" if lang.startswith("zh") else "Redo"
        if not self.can_redo:
            return verb
        return f"{verb} {self._commands[self._index].text(lang)}"

    @property
    def is_clean(self) -> bool:
        return self._index == self._clean

    def set_clean(self) -> None:
        self._clean = self._index
        self._notify("clean", None)

    def add_listener(self, cb: Listener) -> None:
        self._listeners.append(cb)

    def remove_listener(self, cb: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(cb)

    def _notify(self, event: str, cmd: Command | None) -> None:
        for cb in list(self._listeners):
            cb(event, cmd)

    # -- operations
    def push(self, cmd: Command) -> Command:
        """Do ``cmd`` and record it. Raises :class:`EditRefused` (nothing changed)."""
        cmd.do(self.store)
        if self._macro:
            self._macro[-1].children.append(cmd)
            return cmd
        self._record(cmd)
        return cmd

    def _record(self, cmd: Command) -> None:
        dropped = self._commands[self._index:]
        old_clean = self._clean
        del self._commands[self._index:]
        self._commands.append(cmd)
        self._index += 1
        if self._clean > self._index - 1:
            self._clean = -1  # the clean state was undone and is now unreachable
        try:
            self._notify("push", cmd)
        except BaseException:
            self._commands.pop()
            self._index -= 1
            self._commands.extend(dropped)
            self._clean = old_clean
            cmd.undo(self.store)
            raise

    def undo(self) -> Command | None:
        if not self.can_undo:
            return None
        cmd = self._commands[self._index - 1]
        cmd.undo(self.store)
        self._index -= 1
        try:
            self._notify("undo", cmd)
        except BaseException:
            cmd.do(self.store)
            self._index += 1
            raise
        return cmd

    def redo(self) -> Command | None:
        if not self.can_redo:
            return None
        cmd = self._commands[self._index]
        cmd.do(self.store)
        self._index += 1
        try:
            self._notify("redo", cmd)
        except BaseException:
            cmd.undo(self.store)
            self._index -= 1
            raise
        return cmd

    def undo_all(self) -> None:
        while self.can_undo:
            self.undo()

    def redo_all(self) -> None:
        while self.can_redo:
            self.redo()

    def clear(self) -> None:
        self._commands.clear()
        self._index = 0
        self._clean = 0
        self._notify("clear", None)

    # -- macros
    def begin_macro(self, label_zh: str, label_en: str, *, reason: str | None = None) -> None:
        self._macro.append(CompoundCommand(label_zh, label_en, reason=reason))

    def end_macro(self) -> Command | None:
        comp = self._macro.pop()
        if not comp.children:
            return None
        comp._collect()
        if self._macro:
            self._macro[-1].children.append(comp)
        else:
            self._record(comp)
        return comp

    def abort_macro(self) -> None:
        comp = self._macro.pop()
        for ch in reversed(comp.children):
            ch.undo(self.store)

    @contextlib.contextmanager
    def macro(self, label_zh: str, label_en: str, *,
              reason: str | None = None) -> Iterator[None]:
        """Group the commands pushed inside into one undo step; if anything inside raises,
        everything done inside is undone."""
        self.begin_macro(label_zh, label_en, reason=reason)
        try:
            yield
        except BaseException:
            self.abort_macro()
            raise
        self.end_macro()
