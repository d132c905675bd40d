"""The map canvas and its renderer on small synthetic layers.

Expected pixels are computed here from the geometry and the view (not by the canvas's own
transform), expected colours are the classes' colours.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from multiplan.gui.map_canvas.canvas import MapCanvas
from multiplan.gui.map_canvas.paths import path_from_parts
from multiplan.gui.map_canvas.render import LayerSpec, LayerStyle, View, render_layers
from multiplan.gui.map_canvas.vector import POLYGON, VectorData, band_of, lod_records

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 160, 20)
WHITE = QColor(255, 255, 255)


def grid_squares(n: int = 20, size: float = 100.0, gap: float = 20.0) -> np.ndarray:
    """n×n squares of ``size`` metres with ``gap`` between them, from (500000, 3400000)."""
    x0, y0 = 500_000.0, 3_400_000.0
    step = size + gap
    xs, ys = np.meshgrid(np.arange(n) * step + x0, np.arange(n) * step + y0)
    return shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + size, ys.ravel() + size)


def pixel(view: View, x: float, y: float) -> tuple[int, int]:
    """Map → image pixel, computed independently of View.world_to_pixel."""
    px = (x - (view.cx - view.width * view.upp / 2)) / view.upp
    py = ((view.cy + view.height * view.upp / 2) - y) / view.upp
    return int(px), int(py)


def colour_at(img: QImage, xy: tuple[int, int]) -> tuple[int, int, int]:
    c = img.pixelColor(*xy)
    return c.red(), c.green(), c.blue()


def test_path_from_numpy_buffer_matches_the_geometry() -> None:
    ring = np.array([[0, 0], [10, 0], [10, 5], [0, 5], [0, 0]], float)
    path = path_from_parts(ring, np.zeros(len(ring), dtype=int))
    assert path.elementCount() == 5
    assert path.boundingRect().width() == 10 and path.boundingRect().height() == 5
    assert path.contains(QPointF(5, 2.5)) and not path.contains(QPointF(11, 2))


def test_chunks_cover_every_feature_once_and_keep_classes_together() -> None:
    geoms = grid_squares(30)
    classes = np.arange(len(geoms)) % 3
    data = VectorData.build(geoms, np.arange(len(geoms)) + 100, classes, chunk_size=64)
    assert sorted(data.fids.tolist()) == list(range(100, 100 + len(geoms)))
    assert data.chunk_count == int(np.ceil(len(geoms) / 64))
    for c in range(data.chunk_count):
        a, b = data.chunk_offsets[c], data.chunk_offsets[c + 1]
        cls = data.classes[a:b]
        assert np.all(np.diff(cls) >= 0), "classes are contiguous inside a chunk"
        # chunk bounds contain its features
        fb = data.bounds[a:b]
        cb = data.chunk_bounds[c]
        assert fb[:, 0].min() >= cb[0] and fb[:, 2].max() <= cb[2]
    # the class of each fid survived the reordering
    assert np.array_equal(data.classes, (data.fids - 100) % 3)


def test_lod_snaps_to_the_pixel_grid_and_collapses_subpixel_polygons() -> None:
    big = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)],
                          [[(40, 40), (40.3, 40), (40.3, 40.3), (40, 40.3)]])  # tiny hole
    tiny = shapely.box(500, 500, 500.4, 500.3)
    data = VectorData.build(np.array([big, tiny]), chunk_size=8)
    ox, _oy = data.origin
    rec, rfeat, rstart, sq, sqfeat = lod_records(
        data.coords, data.ring_offsets, data.ring_exterior, data.ring_feature, 1.0, POLYGON)
    # the big exterior survives with its 5 vertices, snapped to whole metres; the hole goes
    assert len(rstart) == 1 and len(rec) == 5
    assert np.allclose(np.sort(rec["x"] + ox)[[0, -1]], [0, 100], atol=0.5)
    # the tiny parcel becomes one square of two pixels (never skipped, never big)
    assert len(sq) == 5
    assert (sq["x"].max() - sq["x"].min()) == pytest.approx(2.0)
    big_pos = int(np.flatnonzero(data.fids == 0)[0])
    assert rfeat.tolist() == [big_pos] and sqfeat.tolist() == [1 - big_pos]


def test_render_draws_class_colours_where_the_features_are() -> None:
    geoms = grid_squares(10)
    classes = np.arange(len(geoms)) % 3
    palette = [RED, BLUE, GREEN]
    data = VectorData.build(geoms, None, classes)
    b = data.total_bounds()
    view = View((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 2.0, 800, 700)
    img = render_layers([LayerSpec("x", data, LayerStyle(fill=(0, 0, 0)), palette)], view)
    for i in (0, 7, 23, 55, 99):
        c = shapely.centroid(geoms[i])
        assert colour_at(img, pixel(view, c.x, c.y)) == palette[i % 3]
    # a gap between squares stays white
    gx, gy = 500_000.0 + 110, 3_400_000.0 + 50
    assert colour_at(img, pixel(view, gx, gy)) == (255, 255, 255)


def test_subpixel_features_are_still_drawn_at_full_extent() -> None:
    # 1 m parcels 200 m apart, viewed at 50 m per pixel: each is 1/50 of a pixel
    geoms = grid_squares(12, size=1.0, gap=199.0)
    data = VectorData.build(geoms)
    b = data.total_bounds()
    view = View((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 50.0, 200, 200)
    img = render_layers([LayerSpec("x", data, LayerStyle(fill=RED), [RED])], view)
    inked = 0
    for g in geoms:
        c = shapely.centroid(g)
        px, py = pixel(view, c.x, c.y)
        window = [colour_at(img, (px + dx, py + dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
        inked += RED in window
    assert inked == len(geoms)


def test_only_chunks_meeting_the_view_are_drawn() -> None:
    geoms = grid_squares(40)
    data = VectorData.build(geoms, chunk_size=32)
    view = View(500_000 + 500, 3_400_000 + 500, 0.5, 400, 300)  # 200 m × 150 m
    chunks = data.visible_chunks(view.bounds())
    assert 0 < len(chunks) < data.chunk_count / 4
    render_layers([LayerSpec("x", data, LayerStyle(), [])], view)
    assert data.cached_bands() == {band_of(0.5)}


def test_query_finds_the_feature_under_a_point() -> None:
    geoms = grid_squares(15)
    data = VectorData.build(geoms, np.arange(len(geoms)) + 1, chunk_size=16)
    c = shapely.centroid(geoms[42])
    hits = data.query(shapely.Point(c.x, c.y))
    assert data.fids[hits].tolist() == [43]
    assert len(data.query(shapely.Point(500_000 + 110, 3_400_000 + 50))) == 0


def _layer_with_holes_and_specks() -> tuple[np.ndarray, np.ndarray]:
    """A 24×24 grid of 40 m parcels in 3 classes; every 5th has a 10 m hole, every 7th is
    replaced by a 0.3 m speck (collapses below a pixel at 1 m per pixel)."""
    geoms = grid_squares(24, size=40.0, gap=10.0)
    out = []
    for i, g in enumerate(geoms):
        x0, y0 = g.bounds[:2]
        if i % 7 == 3:
            out.append(shapely.box(x0 + 20, y0 + 20, x0 + 20.3, y0 + 20.3))
        elif i % 5 == 0:
            out.append(shapely.Polygon(g.exterior.coords, [[(x0 + 15, y0 + 15), (x0 + 25, y0 + 15),
                                                           (x0 + 25, y0 + 25), (x0 + 15, y0 + 25)]]))
        else:
            out.append(g)
    return np.array(out, dtype=object), np.arange(len(out)) % 3


def _elements(path) -> list[tuple[int, float, float]]:
    return [(int(path.elementAt(i).type.value), path.elementAt(i).x, path.elementAt(i).y)
            for i in range(path.elementCount())]


def test_paths_built_in_batches_equal_paths_built_one_chunk_at_a_time(monkeypatch) -> None:
    from multiplan.gui.map_canvas import vector

    monkeypatch.setattr(vector, "GROUP_FEATURES", 64)  # groups of 4 chunks
    geoms, classes = _layer_with_holes_and_specks()
    one = VectorData.build(geoms, None, classes, chunk_size=16)
    many = VectorData.build(geoms, None, classes, chunk_size=16)
    assert many.group == 4
    band = band_of(1.0)
    units = np.arange(one.chunk_count)
    single = [one.chunk_paths(int(c), band) for c in units]  # one chunk per build
    batched = [cp for _, cp in many.iter_paths(units, band, batch=200)]  # ~13 chunks a batch
    ngroups = len(many.group_offsets) - 1
    grouped = [cp for _, cp in many.iter_paths(np.arange(ngroups), band, grouped=True)]
    assert len(single) == len(batched) == one.chunk_count
    for a, b in zip(single, batched, strict=True):
        assert [c for c, _ in a.paths] == [c for c, _ in b.paths]
        assert a.elements == b.elements
        for (_, pa), (_, pb) in zip(a.paths, b.paths, strict=True):
            assert _elements(pa) == _elements(pb)
    # a group holds the elements of its chunks, per class
    g = many.group
    for gi, cp in enumerate(grouped):
        members = [single[c] for c in range(gi * g, min((gi + 1) * g, one.chunk_count))]
        assert cp.elements == sum(m.elements for m in members)
        for cls, path in cp.paths:
            assert path.elementCount() == sum(p.elementCount() for m in members
                                              for c, p in m.paths if c == cls)


def test_zoomed_render_matches_the_exact_geometry_away_from_edges() -> None:
    """Every pixel whose centre is more than a pixel from any outline has the colour of the
    polygon containing it (shapely), or white — holes included; specks are still inked."""
    geoms, classes = _layer_with_holes_and_specks()
    palette = [RED, BLUE, GREEN]
    data = VectorData.build(geoms, None, classes, chunk_size=16)
    upp = 1.3  # band 0: coordinates snapped to a 1 m grid
    view = View(500_000 + 610, 3_400_000 + 590, upp, 500, 400)
    img = render_layers([LayerSpec("x", data, LayerStyle(fill=(0, 0, 0), outline_min_px=1e9),
                                   palette)], view)
    x0, y1 = view.cx - view.width * upp / 2, view.cy + view.height * upp / 2
    px, py = np.meshgrid(np.arange(0, view.width, 3), np.arange(0, view.height, 3))
    pts = shapely.points(x0 + (px.ravel() + 0.5) * upp, y1 - (py.ravel() + 0.5) * upp)
    boundaries = shapely.union_all(shapely.boundary(geoms))
    far = shapely.distance(pts, boundaries) > upp
    tree = shapely.STRtree(geoms)
    hit_pt, hit_geom = tree.query(pts, predicate="within")
    owner = np.full(len(pts), -1)
    owner[hit_pt] = hit_geom
    checked = 0
    for k in np.flatnonzero(far):
        want = palette[classes[owner[k]]] if owner[k] >= 0 else (255, 255, 255)
        assert colour_at(img, (int(px.ravel()[k]), int(py.ravel()[k]))) == want, k
        checked += 1
    assert checked > 3000
    # specks: a pixel of their class colour at or next to their centre
    for i in np.flatnonzero(np.arange(len(geoms)) % 7 == 3):
        c = shapely.centroid(geoms[i])
        qx, qy = (c.x - x0) / upp, (y1 - c.y) / upp
        if 1 <= qx < view.width - 1 and 1 <= qy < view.height - 1:
            window = {colour_at(img, (int(qx) + dx, int(qy) + dy))
                      for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
            assert palette[classes[i]] in window


def test_lod_cache_stays_within_its_budget(monkeypatch) -> None:
    from multiplan.gui.map_canvas import vector

    geoms, classes = _layer_with_holes_and_specks()
    data = VectorData.build(geoms, None, classes, chunk_size=16)
    one_view = View(500_000 + 300, 3_400_000 + 300, 1.0, 300, 300)
    render_layers([LayerSpec("x", data, LayerStyle())], one_view)
    budget = data.cache_elements() * 2  # room for about two such views
    monkeypatch.setattr(vector, "CACHE_BUDGET", budget)
    data.clear_cache()
    for dx in range(0, 1200, 150):
        for dy in (0, 600):
            render_layers([LayerSpec("x", data, LayerStyle())],
                          View(500_000 + 100 + dx, 3_400_000 + 100 + dy, 1.0, 300, 300))
            assert 0 < data.cache_elements() <= budget
    # warming never fills the cache beyond WARM_FILL (+ one batch)
    data.clear_cache()
    box = one_view.bounds()
    steps = list(data.warm(box, (box[0] - 2000, box[1] - 2000, box[2] + 2000, box[3] + 2000),
                           band_of(1.0), batch=32))
    assert steps and data.cache_elements() <= budget
    # it stops once past WARM_FILL: at most one more batch (32 features of ≤ 10 vertices)
    assert data.cache_elements() <= vector.WARM_FILL * budget + 32 * 10
    assert len(data.visible_chunks((box[0] - 2000, box[1] - 2000, box[2] + 2000,
                                    box[3] + 2000))) > sum(steps)  # it did stop early


# ---------------------------------------------------------------------- the widget
@pytest.fixture
def canvas(qtbot) -> MapCanvas:
    c = MapCanvas()
    qtbot.addWidget(c)
    c.resize(600, 400)
    geoms = grid_squares(10)
    data = VectorData.build(geoms, np.arange(len(geoms)) + 1, np.arange(len(geoms)) % 2)
    c.add_layer("squares", data, LayerStyle(fill=(0, 0, 0)), [RED, BLUE])
    c.set_full_extent(data.total_bounds())
    c.show()
    qtbot.waitExposed(c)
    qtbot.waitUntil(c.is_current)
    yield c
    c.shutdown()


def _wheel(widget, pos: QPointF, notches: int) -> None:
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, notches * 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_wheel_zoom_scales_the_last_image_at_once_then_replaces_it(canvas: MapCanvas,
                                                                     qtbot) -> None:
    renders = canvas.render_count
    upp = canvas.units_per_pixel()
    anchor = QPointF(200, 150)
    before = canvas.pixel_to_world(anchor)
    _wheel(canvas, anchor, 2)
    assert canvas.units_per_pixel() == pytest.approx(upp * 0.8 ** 2)
    after = canvas.pixel_to_world(anchor)
    assert after == pytest.approx(before)
    # nothing rendered yet: the old image is shown scaled about the cursor
    assert canvas.render_count == renders and not canvas.is_current()
    rect = canvas._image_rect(canvas._map[0].view)
    assert rect.width() == pytest.approx(600 / 0.8 ** 2)
    qtbot.waitUntil(canvas.is_current)
    assert canvas.render_count == renders + 1


def test_middle_drag_and_space_drag_pan_without_rendering_until_release(canvas: MapCanvas,
                                                                         qtbot) -> None:
    cx, cy = canvas.center()
    upp = canvas.units_per_pixel()
    renders = canvas.render_count
    qtbot.mousePress(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(300, 200))
    qtbot.mouseMove(canvas, QPoint(400, 250))
    assert canvas.center() == pytest.approx((cx - 100 * upp, cy + 50 * upp))
    assert canvas.render_count == renders  # the old image moved; no render during the drag
    qtbot.mouseRelease(canvas, Qt.MouseButton.MiddleButton, pos=QPoint(400, 250))
    qtbot.waitUntil(canvas.is_current)
    assert canvas.render_count == renders + 1
    # space + left button pans even with another tool
    canvas.set_tool("select")
    cx, cy = canvas.center()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(300, 200))
    qtbot.mouseMove(canvas, QPoint(250, 200))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(250, 200))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.center() == pytest.approx((cx + 50 * upp, cy))


def test_selection_is_an_overlay_that_does_not_rerender_the_map(canvas: MapCanvas,
                                                                qtbot) -> None:
    renders = canvas.render_count
    canvas.set_tool("select")
    data = canvas.layer("squares").data
    target = shapely.centroid(data.geoms[np.flatnonzero(data.fids == 12)[0]])
    p = canvas.world_to_pixel(target.x, target.y).toPoint()
    with qtbot.waitSignal(canvas.selectionChanged):
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=p)
    assert canvas.selected_fids("squares").tolist() == [12]
    qtbot.waitUntil(canvas.is_current)
    assert canvas.render_count == renders  # layers were not drawn again
    img = canvas.grab().toImage()
    c = img.pixelColor(p)
    assert (c.red(), c.green(), c.blue()) != BLUE  # tinted by the selection overlay
    # drag a rectangle: everything in it, Ctrl adds
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    qtbot.mouseMove(canvas, QPoint(595, 395))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(595, 395))
    assert len(canvas.selected_fids("squares")) == 100
    canvas.clear_selection()
    assert len(canvas.selected_fids("squares")) == 0


def test_hidden_layer_is_not_drawn(canvas: MapCanvas, qtbot) -> None:
    canvas.set_layer_visible("squares", False)
    qtbot.waitUntil(canvas.is_current)
    assert canvas.drawn_layers == []
    img = canvas.grab().toImage()
    assert img.pixelColor(300, 200) == WHITE


def test_class_raster_drawn_in_its_class_colours(tmp_path) -> None:
    import rasterio
    from affine import Affine

    from multiplan.gui.map_canvas.raster import load_raster

    values = np.zeros((40, 60), dtype=np.uint8)
    values[:, :20] = 1
    values[:, 20:40] = 2  # right third stays 0: no class, transparent
    path = tmp_path / "classes.tif"
    with rasterio.open(path, "w", driver="GTiff", width=60, height=40, count=1, dtype="uint8",
                       crs="EPSG:4549", transform=Affine(1.0, 0.0, 500_000, 0.0, -1.0, 3_400_040),
                       nodata=0) as ds:
        ds.write(values, 1)
    data = load_raster(path, "classes", classes={1: ("适宜", RED), 2: ("不适宜", BLUE)})
    assert [label for label, _ in data.legend] == ["适宜", "不适宜"]
    view = View(500_030, 3_400_020, 0.25, 320, 200)
    img = render_layers([LayerSpec("r", data, LayerStyle(fill=None))], view)
    assert colour_at(img, pixel(view, 500_010, 3_400_020)) == RED
    assert colour_at(img, pixel(view, 500_030, 3_400_020)) == BLUE
    assert colour_at(img, pixel(view, 500_050, 3_400_020)) == (255, 255, 255)


def test_a_150k_row_attribute_table_opens_at_once(qtbot) -> None:
    import time

    import pandas as pd

    from multiplan.gui.attribute_table import AttributeTable

    n = 150_000
    rng = np.random.default_rng(1)
    attrs = pd.DataFrame({"YDYHFLDM": rng.choice(["0101", "0301", "0701", "1207"], n),
                          "TBMJ": rng.uniform(10, 1e5, n)},
                         index=pd.Index(np.arange(1, n + 1), name="fid"))
    table = AttributeTable()
    qtbot.addWidget(table)
    table.resize(800, 400)
    table.show()
    table.set_layers({"big": ("big", attrs)})
    t0 = time.perf_counter()
    table.show_layer("big")
    qtbot.waitExposed(table)
    opened = time.perf_counter() - t0
    model = table.model
    assert model.total() == n and model.rowCount() == model.BATCH  # the rest on demand
    assert opened < 1.0, f"{opened:.2f} s"  # generous: it is ~10 ms
    table.view.scrollToBottom()
    assert model.rowCount() > model.BATCH  # the view asked for more as it scrolled
    table.set_filter("TBMJ", "lt", "1000")
    assert model.shown() == int((attrs["TBMJ"] < 1000).sum())


def test_idle_canvas_warms_the_paths_around_the_view(qtbot) -> None:
    """After a render the idle render thread builds the chunks a pan would need (the view
    grown by half its size on each side) and a zoom in would need (one band finer), and not
    the far ones."""
    from multiplan.gui.map_canvas.render import WARM_MARGIN

    c = MapCanvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    geoms = grid_squares(60, size=40.0, gap=10.0)  # 3 km × 3 km, 3600 parcels
    data = VectorData.build(geoms, np.arange(len(geoms)), np.arange(len(geoms)) % 3,
                            chunk_size=32)
    c.add_layer("squares", data, LayerStyle(fill=(0, 0, 0)), [RED, BLUE, GREEN])
    c.show()
    qtbot.waitExposed(c)
    cx, cy = 500_000 + 1500, 3_400_000 + 1500
    c.set_center(cx, cy, 1.0)  # 400 m × 300 m in the middle
    qtbot.waitUntil(c.is_current)
    qtbot.waitUntil(lambda: not c._worker.busy(), timeout=10000)
    assert c._worker.warm_runs >= 1
    band = band_of(1.0 / c.devicePixelRatioF())
    w, h = c.width(), c.height()
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    mx, my = w * WARM_MARGIN, h * WARM_MARGIN
    # chunks holding a parcel that meets the grown view (found with shapely, not the canvas)
    near = shapely.intersects(data.geoms, shapely.box(x0 - mx, y0 - my, x1 + mx, y1 + my))
    chunk_of = np.searchsorted(data.chunk_offsets, np.arange(len(data)), "right") - 1
    for ch in np.unique(chunk_of[near]):
        assert data.cached(int(ch), band), ch
    # a zoom in would find the view's chunks built one band finer
    inside = shapely.intersects(data.geoms, shapely.box(x0, y0, x1, y1))
    assert all(data.cached(int(ch), band - 1) for ch in np.unique(chunk_of[inside]))
    far = ~shapely.intersects(data.geoms, shapely.box(x0 - 3 * mx, y0 - 3 * my,
                                                      x1 + 3 * mx, y1 + 3 * my))
    far_chunks = set(chunk_of[far].tolist()) - set(chunk_of[~far].tolist())
    assert far_chunks and not any(data.cached(ch, band) for ch in far_chunks)
    c.shutdown()


def test_a_new_request_interrupts_warming(monkeypatch, qtbot) -> None:
    import threading
    import time

    from multiplan.gui.map_canvas import render

    state = {"steps": 0, "closed": 0, "started": 0}

    def endless(layers, view):  # a warm-up that would never end by itself
        state["started"] += 1
        try:
            while True:
                time.sleep(0.005)
                state["steps"] += 1
                yield 1
        finally:
            state["closed"] += 1

    monkeypatch.setattr(render, "warm_steps", endless)
    done: list[float] = []
    got = threading.Event()
    worker = render.RenderWorker(lambda job, img: (done.append(time.perf_counter()), got.set()))
    data = VectorData.build(grid_squares(10))
    spec = [LayerSpec("x", data, LayerStyle())]
    try:
        worker.submit(render.RenderJob(spec, View(500_600, 3_400_600, 2.0, 200, 200), 1))
        assert got.wait(5)
        qtbot.waitUntil(lambda: state["steps"] > 3, timeout=5000)
        assert worker.busy() and worker.warming()
        got.clear()
        t0 = time.perf_counter()
        worker.submit(render.RenderJob(spec, View(500_700, 3_400_600, 2.0, 200, 200), 2))
        assert got.wait(5)
        assert done[-1] - t0 < 0.5  # served at once, not after the warming
        assert state["closed"] >= 1  # the first warm-up was ended, not merely paused
        qtbot.waitUntil(lambda: state["started"] == 2, timeout=5000)  # a new one, new view
    finally:
        worker.stop()


def test_adding_a_layer_takes_its_geometries_out_of_full_gc_passes(qtbot) -> None:
    """Shapely geometries are GC-tracked; a full collection over a county's parcels holds the
    GIL for >100 ms. Once added to the canvas they are frozen out of those passes."""
    import gc

    c = MapCanvas()
    qtbot.addWidget(c)
    geoms = grid_squares(30)
    assert gc.is_tracked(geoms[0])
    data = VectorData.build(geoms)
    before = gc.get_freeze_count()
    try:
        c.add_layer("squares", data, LayerStyle())
        assert gc.get_freeze_count() >= before + len(geoms)
        probe = data.geoms[0]
        assert not any(o is probe for o in gc.get_objects())  # not walked by collections
        c.clear()  # e.g. the project closes: the collector sees everything again
        assert gc.get_freeze_count() == 0
        assert any(o is probe for o in gc.get_objects())
    finally:
        gc.unfreeze()
        c.shutdown()
