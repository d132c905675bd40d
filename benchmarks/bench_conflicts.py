"""Conflict detection at county scale: the full run beside ``geopandas.overlay`` on the same
layer pair, then the incremental re-check after a planner edits 100 parcels.

    .venv/bin/python benchmarks/bench_conflicts.py                      # 150k-parcel county
    .venv/bin/python benchmarks/bench_conflicts.py --parcels 150000 --repeat 3 \\
        --pairs 现状用地:永久基本农田 现状用地:土地利用规划 --edits 100
    .venv/bin/python benchmarks/bench_conflicts.py --smoke              # tiny, in-process

The county project is built once with ``sample_data/build_sample.py --parcels N`` and cached
under ``/tmp/multiplan-bench/county<N>`` (pass ``--project`` to use another); every timed
write goes to a scratch copy, never to the cache.

Each tool runs in its own subprocess so its peak RSS is its own (``ru_maxrss``; the RSS after
reading the layers is printed beside it). Timed, per pair, median of ``--repeat`` runs:

* ``geopandas.overlay(how="intersection", keep_geom_type=True)`` on the two layers (geometry
  plus the unified class code, as read by pyogrio with arrow);
* multiplan ``overlay_intersection`` alone (the kernel) and ``compute_conflicts`` (kernel +
  rule matching + stable ids + township + sliver flags + register rows), from the same
  in-memory layers: this is the figure set beside geopandas;
* ``detect_conflicts`` end to end (read layers from the GeoPackage + compute + write the
  register in one transaction), with the write shown separately.

Then the incremental re-check: ``--edits`` parcels of the first layer are edited (vertices
moved, geometry replaced, code changed, a few deleted and added) and saved through
``Project.write_vector_layer`` (not timed), and ``recheck`` is timed — the re-check
computation (read the edited features by fid, R-tree candidates in the other layer, kernel on
just those pairs, register rows) and, separately, the register write-back. Finally the
incremental register is compared with a full rerun on the edited data (same ids, types and
areas within 1e-6 m²).
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

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("MULTIPLAN_BENCH_CACHE", "/tmp/multiplan-bench"))
DEFAULT_PAIRS = ["现状用地:永久基本农田", "现状用地:土地利用规划"]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _med(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


# --------------------------------------------------------------------------- workers

def worker_geopandas(project_dir: Path, a: str, b: str, repeat: int) -> dict:
    import geopandas as gpd
    import pyogrio

    gpkg = project_dir / "plan.gpkg"

    def read(name: str) -> gpd.GeoDataFrame:
        cols = [c for c in ("mp_code",) if c in pyogrio.read_info(gpkg, layer=name)["fields"]]
        return pyogrio.read_dataframe(gpkg, layer=name, columns=cols, use_arrow=True)

    t = time.perf_counter()
    ga, gb = read(a), read(b)
    read_s = time.perf_counter() - t
    base = _rss_mib()
    times, res = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = gpd.overlay(ga, gb, how="intersection", keep_geom_type=True)
        times.append(time.perf_counter() - t)
    area = res.geometry.area.to_numpy()
    return {"tool": "geopandas.overlay", "seconds": times, "read_s": read_s,
            "pieces": int((area > 0).sum()), "pieces_over_0.01m2": int((area > 0.01).sum()),
            "area_m2": float(area.sum()), "rss_after_read_mib": base, "peak_rss_mib": _rss_mib()}


def worker_multiplan(project_dir: Path, a: str, b: str, repeat: int) -> dict:
    from multiplan.core import conflicts as cf
    from multiplan.core.overlay import overlay_intersection
    from multiplan.core.project import Project

    project = Project.open(project_dir)
    t = time.perf_counter()
    la, lb = cf.load_layer_data(project, a), cf.load_layer_data(project, b)
    read_s = time.perf_counter() - t
    cf.load_rules()
    townships = cf.load_townships(project)
    base = _rss_mib()
    kernel, compute, run, res = [], [], None, None
    for _ in range(repeat):
        t = time.perf_counter()
        res = overlay_intersection(la.geometry, lb.geometry, threads=2)
        kernel.append(time.perf_counter() - t)
        t = time.perf_counter()
        run = cf.compute_conflicts(project, la, lb, townships=townships, threads=2)
        compute.append(time.perf_counter() - t)
    reg = run.register
    return {"tool": "multiplan", "kernel_s": kernel, "seconds": compute, "read_s": read_s,
            "pieces": len(reg), "pieces_over_0.01m2": int((reg["area_m2"] > 0.01).sum()),
            "area_m2": float(reg["area_m2"].sum()), "kernel_pieces": len(res),
            "failures": len(run.failures), "summary": run.summary(),
            "rss_after_read_mib": base, "peak_rss_mib": _rss_mib()}


def _edit(project, layer: str, n: int, rng: np.random.Generator):
    """Edit ``n`` features of ``layer`` as a planner would and save them (fids kept):
    40 % vertices moved, 20 % geometry replaced, 30 % code changed, 5 % deleted, 5 % added."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from multiplan.core.classification import load_scheme, unify

    rec = project.layer(layer)
    g = project.read_layer(layer)
    fids = g.index.to_numpy()
    n_move, n_repl, n_code = int(n * 0.4), int(n * 0.2), int(n * 0.3)
    n_del = max(1, int(n * 0.05))
    n_add = n - n_move - n_repl - n_code - n_del
    pick = rng.choice(fids, n_move + n_repl + n_code + n_del, replace=False)
    move = pick[:n_move]
    repl = pick[n_move:n_move + n_repl]
    code = pick[n_move + n_repl:n_move + n_repl + n_code]
    dele = pick[n_move + n_repl + n_code:]
    geo = g.geometry.to_numpy().copy()
    pos = {int(f): i for i, f in enumerate(fids)}
    for f in move:
        poly = shapely.get_parts(geo[pos[int(f)]])[0]
        ring = shapely.get_coordinates(shapely.get_exterior_ring(poly))
        ring[:-1] += rng.normal(0, 2.0, (len(ring) - 1, 2))
        ring[-1] = ring[0]
        geo[pos[int(f)]] = shapely.make_valid(shapely.polygons(ring))
    for f in repl:
        c = shapely.centroid(geo[pos[int(f)]])
        w = float(np.sqrt(shapely.area(geo[pos[int(f)]])))
        geo[pos[int(f)]] = shapely.box(c.x - w, c.y - w / 3, c.x + w, c.y + w / 3)
    g = g.set_geometry(gpd.GeoSeries(geo, index=g.index, crs=g.crs))
    if rec.code_field:
        choices = [c for c in ("0101", "0103", "0301", "0701", "1001", "1207", "0404")
                   if load_scheme(rec.scheme or "ydyh2023").is_valid(c)]
        g.loc[code, rec.code_field] = rng.choice(choices, len(code))
    g = g.drop(index=dele)
    src = rng.choice(g.index.to_numpy(), n_add, replace=False)
    new = g.loc[src].copy()
    new["geometry"] = [shapely.box(c.x - 25, c.y - 10, c.x + 35, c.y + 15)
                       for c in new.geometry.centroid]
    new.index = np.arange(fids.max() + 1, fids.max() + 1 + n_add)
    g = pd.concat([g, new])
    if rec.code_field and rec.scheme:
        u = unify(g[rec.code_field], rec.scheme)
        for c in u.columns:
            g[c] = u[c]
    g["fid"] = g.index
    g = g.reset_index(drop=True).set_crs(project.epsg, allow_override=True)
    project.write_vector_layer(g, project.layer(layer), replace=True)
    return np.concatenate([move, repl, code]), new.index.to_numpy(), dele


def worker_recheck(project_dir: Path, a: str, b: str, repeat: int, edits: int,
                   scratch: Path) -> dict:
    import pandas as pd

    from multiplan.core import conflicts as cf
    from multiplan.core.project import Project

    work = scratch / "recheck"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(project_dir, work)
    project = Project.open(work)
    e2e, e2e_write = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        run = cf.detect_conflicts(project, a, b)
        e2e.append(time.perf_counter() - t)
        e2e_write.append(run.seconds_write)
    rng = np.random.default_rng(20261129)
    rounds = []
    for _ in range(repeat):
        changed, added, deleted = _edit(project, a, edits, rng)
        t = time.perf_counter()
        runs = cf.recheck(project, a, changed=changed, added=added, deleted=deleted)
        total = time.perf_counter() - t
        r = runs[0]
        rounds.append({"compute_s": r.seconds_compute, "write_s": r.seconds_write,
                       "total_s": total, "new_rows": len(r.register),
                       "rows_replaced": r.removed,
                       "edited": int(len(changed) + len(added) + len(deleted))})
    inc = cf.read_register(project, a, b)
    cf.detect_conflicts(project, a, b)
    full = cf.read_register(project, a, b)
    x = inc.set_index("conflict_id").sort_index()
    y = full.set_index("conflict_id").sort_index()
    same_ids = list(x.index) == list(y.index)
    same = same_ids and all(
        (x[c].astype(object).fillna("").astype(str)
         == y[c].astype(object).fillna("").astype(str)).all()
        for c in ("conflict_type", "severity", "sliver", "township", "code_a", "code_b"))
    max_da = float(np.abs(x["area_m2"] - y["area_m2"]).max()) if same_ids and len(x) else None
    shutil.rmtree(work, ignore_errors=True)
    return {"tool": "recheck", "detect_e2e_s": e2e, "detect_write_s": e2e_write,
            "rounds": rounds, "identical_to_full_rerun": bool(same and max_da is not None
                                                              and max_da <= 1e-6),
            "max_area_diff_m2": max_da, "register_rows": len(y),
            "peak_rss_mib": _rss_mib(), "pandas": pd.__version__}


# --------------------------------------------------------------------------- driver

def run_worker(kind: str, project: Path, a: str, b: str, repeat: int, edits: int,
               scratch: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--project", str(project), "--a", a,
           "--b", b, "--repeat", str(repeat), "--edits", str(edits), "--scratch", str(scratch)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False,
                       env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    if r.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def ensure_project(parcels: int) -> Path:
    out = CACHE / f"county{parcels}"
    if (out / "plan.gpkg").is_file() and (out / "seeded_conflicts.json").is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"building the {parcels:,}-parcel county in {out} (once; cached) …", flush=True)
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "build_sample.py"), "--parcels",
                    str(parcels), "--out", str(out), "--scratch",
                    str(CACHE / f"scratch{parcels}")], check=True)
    return out


def bench(project: Path, pairs: list[tuple[str, str]], repeat: int, edits: int) -> dict:
    from multiplan.core.project import Project

    p = Project.open(project)
    counts = {r.name: r.feature_count for r in p.layers()}
    report = {"project": str(project), "repeat": repeat, "edits": edits, "cpus": os.cpu_count(),
              "loadavg_start": os.getloadavg(), "pairs": []}
    with tempfile.TemporaryDirectory(prefix="bench-conflicts-") as tmp:
        for a, b in pairs:
            print(f"\n== {a} ({counts.get(a, 0):,}) × {b} ({counts.get(b, 0):,}) ==", flush=True)
            gp = run_worker("geopandas", project, a, b, repeat, edits, Path(tmp))
            print(f"   geopandas.overlay   {_fmt(gp['seconds'])}", flush=True)
            mp = run_worker("multiplan", project, a, b, repeat, edits, Path(tmp))
            print(f"   multiplan kernel    {_fmt(mp['kernel_s'])}", flush=True)
            print(f"   multiplan compute   {_fmt(mp['seconds'])}", flush=True)
            rc = run_worker("recheck", project, a, b, repeat, edits, Path(tmp))
            print(f"   detect end to end   {_fmt(rc['detect_e2e_s'])}  (write "
                  f"{_fmt(rc['detect_write_s'])})", flush=True)
            rel = abs(gp["area_m2"] - mp["area_m2"]) / max(gp["area_m2"], 1.0)
            entry = {
                "a": a, "b": b, "features_a": counts.get(a), "features_b": counts.get(b),
                "geopandas": gp, "multiplan": mp, "recheck": rc,
                "median_geopandas_s": _med(gp["seconds"]),
                "median_kernel_s": _med(mp["kernel_s"]),
                "median_compute_s": _med(mp["seconds"]),
                "median_detect_e2e_s": _med(rc["detect_e2e_s"]),
                "median_detect_write_s": _med(rc["detect_write_s"]),
                "ratio_geopandas_over_compute": _med(gp["seconds"]) / _med(mp["seconds"]),
                "ratio_geopandas_over_kernel": _med(gp["seconds"]) / _med(mp["kernel_s"]),
                "area_rel_diff": rel,
                "median_recheck_compute_s": _med([r["compute_s"] for r in rc["rounds"]]),
                "median_recheck_write_s": _med([r["write_s"] for r in rc["rounds"]]),
            }
            report["pairs"].append(entry)
    report["loadavg_end"] = os.getloadavg()
    return report


def _fmt(xs: list[float]) -> str:
    return f"median {_med(xs):7.3f} s  (runs: {', '.join(f'{x:.3f}' for x in xs)})"


def print_report(rep: dict) -> None:
    print("\n" + "=" * 100)
    print(f"conflict detection benchmark — {rep['project']}  ({rep['cpus']} CPUs, 2 threads; "
          f"load average at start {rep['loadavg_start'][0]:.2f}, end "
          f"{rep['loadavg_end'][0]:.2f}); medians of {rep['repeat']}")
    for e in rep["pairs"]:
        gp, mp, rc = e["geopandas"], e["multiplan"], e["recheck"]
        print(f"\n{e['a']} ({e['features_a']:,}) × {e['b']} ({e['features_b']:,})")
        print(f"  geopandas.overlay            {e['median_geopandas_s']:8.3f} s   peak RSS "
              f"{gp['peak_rss_mib']:7.0f} MiB (after read {gp['rss_after_read_mib']:.0f})   "
              f"pieces {gp['pieces']:,}")
        print(f"  multiplan kernel only        {e['median_kernel_s']:8.3f} s   ×"
              f"{e['ratio_geopandas_over_kernel']:.2f} vs geopandas")
        print(f"  multiplan compute_conflicts  {e['median_compute_s']:8.3f} s   ×"
              f"{e['ratio_geopandas_over_compute']:.2f} vs geopandas   peak RSS "
              f"{mp['peak_rss_mib']:7.0f} MiB (after read {mp['rss_after_read_mib']:.0f})   "
              f"register rows {mp['pieces']:,}")
        print(f"  detect_conflicts end to end  {e['median_detect_e2e_s']:8.3f} s   (read + "
              f"compute + register write {e['median_detect_write_s']:.3f} s)")
        print(f"  same total area as geopandas: rel. diff {e['area_rel_diff']:.2e}; pieces "
              f"> 0.01 m²: geopandas {gp['pieces_over_0.01m2']:,}, multiplan "
              f"{mp['pieces_over_0.01m2']:,}")
        rounds = rc["rounds"]
        print(f"  re-check after editing {rounds[0]['edited']} parcels: computation "
              f"{e['median_recheck_compute_s']:.3f} s, register write-back "
              f"{e['median_recheck_write_s']:.3f} s  (rounds: " + "; ".join(
                  f"{r['compute_s']:.3f} + {r['write_s']:.3f}" for r in rounds) + ")")
        print(f"  incremental register == full rerun: {rc['identical_to_full_rerun']} "
              f"(max area diff {rc['max_area_diff_m2']}; {rc['register_rows']:,} rows)")


def smoke() -> int:
    """A tiny in-process run of every step (for the test suite)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from multiplan.core.classification import unify
    from multiplan.core.layers import LayerRecord
    from multiplan.core.project import Project

    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory(prefix="bench-conflicts-smoke-") as tmp:
        p = Project.create(Path(tmp) / "p", county="测试县", crs=4549)
        x0, y0 = 500_000.0, 3_430_000.0
        parcels = [shapely.box(x0 + 40 * i, y0 + 40 * j, x0 + 40 * i + 40, y0 + 40 * j + 40)
                   for i in range(30) for j in range(30)]
        zones = [shapely.box(x0 + 130 * i + 15, y0 + 130 * j + 15, x0 + 130 * i + 145,
                             y0 + 130 * j + 145) for i in range(9) for j in range(9)]
        for name, role, geoms, codes in (
                ("现状用地", "current_use", parcels,
                 rng.choice(["0101", "0301", "0701"], len(parcels))),
                ("永久基本农田", "basic_farmland", zones, ["0101"] * len(zones))):
            u = unify(pd.Series(codes), "ydyh2023")
            gdf = gpd.GeoDataFrame({"DLBM": codes, **{c: u[c].to_numpy() for c in u.columns}},
                                   geometry=geoms, crs=4549)
            p.write_vector_layer(gdf, LayerRecord(name=name, kind="vector", level="county",
                                                  role=role, geometry_type="MultiPolygon",
                                                  scheme="ydyh2023", code_field="DLBM"))
        gp = worker_geopandas(p.folder, "现状用地", "永久基本农田", 1)
        mp = worker_multiplan(p.folder, "现状用地", "永久基本农田", 1)
        rc = worker_recheck(p.folder, "现状用地", "永久基本农田", 1, 20, Path(tmp))
    ok = (abs(gp["area_m2"] - mp["area_m2"]) <= 1e-6 * gp["area_m2"]
          and rc["identical_to_full_rerun"])
    print(json.dumps({"smoke": ok, "pieces": mp["pieces"],
                      "recheck": rc["rounds"][0]}, ensure_ascii=False))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parcels", type=int, default=150_000)
    ap.add_argument("--project", type=Path, help="use this project instead of the cached one")
    ap.add_argument("--pairs", nargs="+", default=DEFAULT_PAIRS, help="LAYER_A:LAYER_B ...")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--json-out", type=Path, help="also write the report as JSON")
    ap.add_argument("--smoke", action="store_true", help="tiny in-process run")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--a", help=argparse.SUPPRESS)
    ap.add_argument("--b", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.smoke:
        return smoke()
    if args.worker:
        fn = {"geopandas": lambda: worker_geopandas(args.project, args.a, args.b, args.repeat),
              "multiplan": lambda: worker_multiplan(args.project, args.a, args.b, args.repeat),
              "recheck": lambda: worker_recheck(args.project, args.a, args.b, args.repeat,
                                                args.edits, args.scratch)}[args.worker]
        print(json.dumps(fn(), ensure_ascii=False, default=float))
        return 0
    project = args.project or ensure_project(args.parcels)
    pairs = [tuple(p.split(":", 1)) for p in args.pairs]
    rep = bench(project, pairs, args.repeat, args.edits)
    print_report(rep)
    if args.json_out:
        args.json_out.write_text(json.dumps(rep, ensure_ascii=False, indent=1, default=float),
                                 encoding="utf-8")
    bad = [e for e in rep["pairs"] if not e["recheck"]["identical_to_full_rerun"]
           or e["area_rel_diff"] > 1e-6]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
