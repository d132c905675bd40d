"""Reading project layers for display, in a worker thread, in short steps.

Vector layers stream from the GeoPackage as Arrow batches of :data:`BATCH` features
(pyogrio ``open_arrow``; reading a whole 150k-parcel layer in one call holds the GIL for
≈0.9 s, in batches for ≈50 ms at most), then are prepared for the canvas
(:class:`~multiplan.gui.map_canvas.vector.VectorData`), classified for the legend and kept
with their attributes for the attribute table and identify. Rasters are read decimated
(:func:`~multiplan.gui.map_canvas.raster.load_raster`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely

from multiplan.core.layers import LayerRecord
from multiplan.core.tasks import Task

from .map_canvas.raster import RasterData, load_raster
from .map_canvas.render import LayerStyle
from .map_canvas.vector import VectorData
from .styles import CONFLICTS_LAYER, Classes, classify, style_for

BATCH = 2000


@dataclass
class LoadedLayer:
    record: LayerRecord
    data: VectorData | RasterData
    style: LayerStyle
    classes: Classes | None = None
    #: attributes in the canvas's draw order (index: the GeoPackage fid); None for rasters
    attributes: pd.DataFrame | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def name(self) -> str:
        return self.record.name


def read_vector(gpkg: str | Path, layer: str, task: Task | None = None
                ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(geometries, fids, attributes) of a GeoPackage layer, read in batches."""
    import pyarrow as pa

    geoms: list[np.ndarray] = []
    tables = []
    with pyogrio.open_arrow(gpkg, layer=layer, batch_size=BATCH, return_fids=True,
                            use_pyarrow=True) as (meta, reader):
        gname = meta["geometry_name"] or "wkb_geometry"
        fid_col = meta.get("fid_column") or "OGC_FID"
        for batch in reader:
            if task is not None:
                task.check()
            wkb = batch.column(gname).to_numpy(zero_copy_only=False)
            geoms.append(shapely.from_wkb(wkb))
            tables.append(pa.Table.from_batches([batch.drop_columns([gname])]))
    if tables:
        table = pa.concat_tables(tables)
        attrs = table.to_pandas()
    else:
        attrs = pd.DataFrame({fid_col: pd.Series([], dtype="int64")})
    fids = attrs.pop(fid_col).to_numpy(dtype=np.int64) if fid_col in attrs.columns \
        else np.arange(len(attrs), dtype=np.int64)
    attrs.index = pd.Index(fids, name="fid")
    g = np.concatenate(geoms) if geoms else np.empty(0, dtype=object)
    return g, fids, attrs


def raster_kind(rec: LayerRecord) -> str:
    if rec.role == "assessment_result":
        return "continuous" if rec.report.get("legend") == "continuous" else "classes"
    text = f"{rec.name} {rec.title}".lower()
    if any(k in text for k in ("高程", "dem", "elevation", "地形")):
        return "dem"
    return "continuous"


def raster_classes(rec: LayerRecord) -> dict[int, tuple[str, tuple[int, ...]]]:
    """Class value → (label, colour) of an assessment result raster."""
    from multiplan.core.assessment.run import colours

    kind = rec.report.get("legend", "grade")
    labels = {int(k): v for k, v in (rec.report.get("classes") or {}).items()}
    cols = colours(kind)
    out = {}
    for value in sorted(set(labels) | set(cols)):
        out[value] = (labels.get(value, str(value)), cols.get(value, (160, 160, 160, 255)))
    return out


def load_layer(folder: str | Path, rec: LayerRecord, task: Task | None = None) -> LoadedLayer:
    """Read and prepare one layer of the project in ``folder``."""
    t0 = time.perf_counter()
    folder = Path(folder)
    check = task.check if task is not None else None
    if rec.kind == "raster":
        kind = raster_kind(rec)
        data = load_raster(folder / (rec.raster_path or ""), kind,
                           classes=raster_classes(rec) if kind == "classes" else None,
                           check=check)
        return LoadedLayer(rec, data, LayerStyle(fill=None), None, None,
                           time.perf_counter() - t0)
    geoms, fids, attrs = read_vector(folder / "plan.gpkg", rec.name, task)
    classes = classify(rec, attrs)
    data = VectorData.build(geoms, fids, classes.index, check=check)
    # attributes follow the canvas's draw order, so row i of both is the same feature
    attrs = attrs.loc[data.fids]
    return LoadedLayer(rec, data, style_for(rec, classes), classes, attrs,
                       time.perf_counter() - t0)


def conflicts_record() -> LayerRecord:
    """The registry-like record of the conflict register pseudo-layer."""
    return LayerRecord(name=CONFLICTS_LAYER, kind="vector", level="county", role="reference",
                       title="差异图斑", geometry_type="MultiPolygon", name_field="type_name",
                       code_field="conflict_type")


def has_conflict_register(folder: str | Path) -> bool:
    try:
        layers = pyogrio.list_layers(Path(folder) / "plan.gpkg")
    except Exception:  # noqa: BLE001
        return False
    return CONFLICTS_LAYER in {str(r[0]) for r in layers}
