#!/usr/bin/env python
"""双评价 pipeline benchmark: time and peak memory at 30 m.

    python benchmarks/bench_assessment.py [--sample DIR] [--work DIR] [--repeat N]

Cases, each run in its own process (peak RSS = that process's ``VmHWM`` from
/proc/self/status, which includes the interpreter and the imported libraries; not
``ru_maxrss``, which Linux carries over from the parent across exec):

* ``county``: the 长兴县 sample (all factors, plan layers, 承载规模), 30 m, a temporary copy;
  also with one worker, to show what the second core buys, and with 256-cell blocks.
* ``x4``: a synthetic extent with 4× the cells: every vector layer of the sample scaled by
  2 about the county's south-west corner (same feature counts, 4× the area), every raster
  tiled 2 × 2 with mirror images (continuous terrain across the seams) — so only the
  raster extent grows, and peak memory shows whether it follows the extent or the block.

Targets (issue 5): county ≤ 10 s; x4 peak ≤ 1.3 × county peak at the same block size.
Timings are wall-clock medians of ``--repeat`` runs; CPU time is summed over threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "changxing"


def vm_hwm_mb() -> float:
    """Peak resident set of this process (Linux)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(folder: Path, block: int, workers: int) -> dict:
    """In this process: one assessment run; print JSON."""
    from multiplan.core.assessment import run_assessment
    from multiplan.core.project import Project

    project = Project.open(folder)
    rss0 = vm_hwm_mb()
    t, c = time.perf_counter(), time.process_time()
    run = run_assessment(project, block_size=block, workers=workers)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(vm_hwm_mb(), 1), "rss_before_mb": round(rss0, 1), "cells": run.grid.width * run.grid.height,
            "grid": f"{run.grid.width}×{run.grid.height}", "timings": run.timings,
            "patches": run.patches, "findings": len(run.findings)}


def make_x4(sample: Path, dst: Path) -> Path:
    """The sample with 4× the extent (vectors scaled by 2, rasters tiled 2 × 2, mirrored)."""
    import numpy as np
    import rasterio
    import shapely
    from affine import Affine

    from multiplan.core.layers import LayerRecord
    from multiplan.core.project import Project

    src = Project.open(sample)
    out = Project.create(dst, county=src.county + "（4 倍范围合成）", crs=src.epsg,
                         overwrite=True)
    minx, miny = src.read_layer("行政区").total_bounds[:2]
    origin = np.array([minx, miny])

    def double(c: np.ndarray) -> np.ndarray:
        return (c - origin) * 2 + origin

    over = src.setting("assessment_params")
    if over:
        out.set_settings(assessment_params=over)
    for rec in src.layers():
        if rec.role == "assessment_result":
            continue
        if rec.kind == "vector":
            g = src.read_layer(rec.name)
            g = g.set_geometry(shapely.transform(g.geometry.values, double), crs=g.crs)
            g.index.name = None
            new = LayerRecord(**{**rec.__dict__, "synthetic": True})
            new.feature_count = None
            out.write_vector_layer(g.reset_index(drop=True), new)
        else:
            with rasterio.open(src.raster_path(rec.name)) as ds:
                a = ds.read()
                t = ds.transform
                prof = ds.profile
            # keep the south-west corner; grow north and east with mirror images
            top = np.concatenate([a[:, ::-1, :], a[:, ::-1, ::-1]], axis=2)
            bottom = np.concatenate([a, a[:, :, ::-1]], axis=2)
            tiled = np.concatenate([top, bottom], axis=1)
            y_south = t.f + t.e * a.shape[1]
            nt = Affine(t.a, 0, t.c, 0, t.e, y_south - t.e * tiled.shape[1])
            prof.update(width=tiled.shape[2], height=tiled.shape[1], transform=nt,
                        tiled=True, blockxsize=256, blockysize=256, compress="deflate")
            path = out.folder / rec.raster_path
            path.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(path, "w", **prof) as w:
                w.write(tiled)
            out.register_raster(LayerRecord(**{**rec.__dict__, "synthetic": True}))
    return dst


def child(folder: Path, block: int, workers: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), "--block", str(block),
           "--workers", str(workers)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=Path, default=SAMPLE)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--block", type=int, default=512, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(run_case(a.child, a.block, a.workers), ensure_ascii=False))
        return 0
    work = Path(a.work or tempfile.mkdtemp(prefix="mp-bench-assess-"))
    work.mkdir(parents=True, exist_ok=True)
    county = work / "county"
    if county.exists():
        shutil.rmtree(county)
    shutil.copytree(a.sample, county, ignore=shutil.ignore_patterns("exports"))
    t = time.perf_counter()
    x4 = make_x4(a.sample, work / "x4")
    print(f"x4 extent built in {time.perf_counter() - t:.1f} s: {x4}")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    cases = [("county", county, 512, 2), ("county 1 worker", county, 512, 1),
             ("county block 256", county, 256, 2), ("x4", x4, 512, 2),
             ("x4 block 256", x4, 256, 2)]
    rows = []
    for name, folder, block, workers in cases:
        res = [child(folder, block, workers) for _ in range(a.repeat)]
        med = {"name": name, "block": block, "workers": workers, "grid": res[0]["grid"],
               "cells": res[0]["cells"],
               "wall_s": statistics.median(r["wall_s"] for r in res),
               "cpu_s": statistics.median(r["cpu_s"] for r in res),
               "peak_rss_mb": max(r["peak_rss_mb"] for r in res),
               "rss_before_mb": res[0]["rss_before_mb"], "timings": res[len(res) // 2]["timings"]}
        rows.append(med)
        print(f"{name:18s} grid {med['grid']:>11s}  block {block:4d}  workers {workers}  "
              f"wall {med['wall_s']:6.2f} s  cpu {med['cpu_s']:6.2f} s  peak RSS "
              f"{med['peak_rss_mb']:7.1f} MB (after imports {med['rss_before_mb']:.0f} MB)")
    by = {r["name"]: r for r in rows}
    ratio = by["x4"]["peak_rss_mb"] / by["county"]["peak_rss_mb"]
    ratio256 = by["x4 block 256"]["peak_rss_mb"] / by["county block 256"]["peak_rss_mb"]
    print()
    print(f"county at 30 m: {by['county']['wall_s']:.2f} s (target ≤ 10 s) — "
          f"{'met' if by['county']['wall_s'] <= 10 else 'NOT met'}")
    print(f"4× cells: peak memory × {ratio:.2f} at block 512, × {ratio256:.2f} at block 256 "
          f"(target ≤ 1.3) — {'met' if max(ratio, ratio256) <= 1.3 else 'NOT met'}")
    print("stage timings, county (s):", json.dumps(by["county"]["timings"]))
    print("stage timings, x4 (s):    ", json.dumps(by["x4"]["timings"]))
    (work / "bench_assessment.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
