"""Overlay benchmark: multiplan's kernel against geopandas.overlay, on the same data, in one run.

    .venv/bin/python benchmarks/bench_overlay.py                 # 150k parcels × 5k zones
    .venv/bin/python benchmarks/bench_overlay.py --parcels 150000 600000 --zones 5000 20000
    .venv/bin/python benchmarks/bench_overlay.py --smoke         # tiny; the test suite runs it

Method (see benchmarks/README.md):
- The parent builds a synthetic county (benchmarks/synthetic.py) once per size and stores it
  as WKB in a temporary folder.
- Every timed run is a **fresh subprocess** (a cold run): it loads the WKB, builds its inputs
  (GeoDataFrames for geopandas, arrays for multiplan), then times one complete overlay that
  ends in a frame of pieces: ``geopandas.overlay(how="intersection", keep_geom_type=True)``
  versus ``overlay_intersection(...).to_frame(...)``. Runs alternate between the two tools.
- Peak RSS: the worker resets the kernel's high-water mark (``/proc/self/clear_refs``) after
  loading, so ``VmHWM`` afterwards is the process's peak resident memory *during* the overlay
  (interpreter, libraries and input data included). ``ru_maxrss`` is the fallback.
- Other load: the parent samples ``/proc/stat`` around each run and subtracts the worker's
  own CPU time, so a busy machine shows up as "other CPU" next to the numbers.
- Every run's pieces are compared: identical (a, b) pairs above ``--min-area`` m², each area
  equal within rel 1e-6, and equal totals. A mismatch fails the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

TOOLS = ("geopandas", "multiplan")


# ----------------------------------------------------------------------------- worker


def _rss_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _vm(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # MiB
    except OSError:
        pass
    return None


def _pack(geoms: np.ndarray) -> dict[str, np.ndarray]:
    import shapely

    wkb = shapely.to_wkb(geoms)
    return {"buf": np.frombuffer(b"".join(wkb), np.uint8),
            "ends": np.cumsum([len(w) for w in wkb])}


def _unpack(z: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    import shapely

    buf, ends = z[f"{name}_buf"].tobytes(), z[f"{name}_ends"]
    starts = np.r_[0, ends[:-1]]
    return shapely.from_wkb([buf[s:e] for s, e in zip(starts, ends, strict=True)])


def worker(tool: str, data: Path, layer: str, out: Path, threads: int) -> None:
    with np.load(data, allow_pickle=False) as z:
        a = _unpack(z, "parcels")
        b = _unpack(z, layer)
    a_ids = np.arange(len(a))
    b_ids = np.arange(len(b))
    import geopandas as gpd

    if tool == "geopandas":

        da = gpd.GeoDataFrame({"a_id": a_ids}, geometry=a, crs=4549)
        db = gpd.GeoDataFrame({"b_id": b_ids}, geometry=b, crs=4549)

        def run():
            return gpd.overlay(da, db, how="intersection", keep_geom_type=True)
    else:
        import pyproj  # geopandas and the CRS object exist before timing, as for geopandas

        from multiplan.core.overlay import overlay_intersection

        crs = pyproj.CRS.from_epsg(4549)

        def run():
            return overlay_intersection(a, b, threads=threads).to_frame(a_ids, b_ids, crs=crs)

    base = _vm("VmRSS")
    reset = _rss_reset()
    t0, c0 = time.perf_counter(), time.process_time()
    frame = run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _vm("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez(out, a=frame["a_id"].to_numpy(np.int64), b=frame["b_id"].to_numpy(np.int64),
             area=frame.geometry.area.to_numpy())
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak,
                      "base_rss_mib": base,
                      "peak_method": "VmHWM after clear_refs" if reset else "ru_maxrss",
                      "pieces": len(frame)}))


# ----------------------------------------------------------------------------- parent


def _cpu_jiffies() -> tuple[int, int]:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in fields[:8]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def wait_quiet(max_wait: float, limit: float = 0.25) -> float:
    """Wait (up to ``max_wait`` s) until other processes use under ``limit`` cores,
    sampled over 2 s; returns the last sample."""
    tick = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + max_wait
    while True:
        b0, _ = _cpu_jiffies()
        time.sleep(2.0)
        b1, _ = _cpu_jiffies()
        load = (b1 - b0) / tick / 2.0
        if load < limit or time.monotonic() > deadline:
            return load


def run_worker(tool: str, data: Path, layer: str, out: Path, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--data", str(data),
           "--layer", layer, "--out", str(out), "--threads", str(threads)]
    busy0, _ = _cpu_jiffies()
    wall0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - wall0
    busy1, _ = _cpu_jiffies()
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{tool} worker failed:\n{stderr}")
    rec = json.loads(stdout.strip().splitlines()[-1])
    tick = os.sysconf("SC_CLK_TCK")
    own = usage.ru_utime + usage.ru_stime
    # CPU-seconds used by everything else while the worker ran, per second of wall time
    rec["other_cpu"] = max(0.0, (busy1 - busy0) / tick - own) / wall
    return rec


def compare(ref: Path, got: Path, min_area: float) -> tuple[int, float]:
    with np.load(ref) as r, np.load(got) as g:
        def table(z):
            keep = z["area"] > min_area
            return dict(zip(zip(z["a"][keep].tolist(), z["b"][keep].tolist(), strict=True),
                            z["area"][keep].tolist(), strict=True)), float(z["area"].sum())
        tr, total_r = table(r)
        tg, total_g = table(g)
    if set(tr) != set(tg):
        only_r, only_g = set(tr) - set(tg), set(tg) - set(tr)
        raise SystemExit(f"piece sets differ: {len(only_r)} only in geopandas "
                         f"(e.g. {sorted(only_r)[:3]}), {len(only_g)} only in multiplan "
                         f"(e.g. {sorted(only_g)[:3]})")
    ka = np.array(list(tr.values()))
    kb = np.array([tg[k] for k in tr])
    bad = ~np.isclose(kb, ka, rtol=1e-6, atol=0.0)
    if bad.any():
        raise SystemExit(f"{bad.sum()} piece areas differ by more than rel 1e-6")
    if not np.isclose(total_g, total_r, rtol=1e-6, atol=0.0):
        raise SystemExit(f"total area differs: {total_r} vs {total_g}")
    return len(tr), total_r


def bench_size(n_parcels: int, n_zones: int, n_red: int, repeat: int, threads: int,
               min_area: float, tmp: Path, seed: int, layers: list[str],
               quiet: float = 0.0) -> dict:
    from synthetic import make_county

    t0 = time.perf_counter()
    county = make_county(n_parcels, n_zones, n_red, seed=seed)
    gen = time.perf_counter() - t0
    data = tmp / f"county_{n_parcels}.npz"
    np.savez(data, **{f"{name}_{k}": v for name in ("parcels", "zones", "redlines")
                      for k, v in _pack(getattr(county, name)).items()})
    print(f"\n== {len(county.parcels):,} parcels, {len(county.zones):,} zones, "
          f"{len(county.redlines):,} red-line polygons; {county.side / 1000:.1f} km square "
          f"(EPSG:{county.epsg}); generated in {gen:.1f} s", flush=True)
    report = {"parcels": len(county.parcels), "zones": len(county.zones),
              "redlines": len(county.redlines), "layers": {}}
    for layer in layers:
        runs: dict[str, list[dict]] = {t: [] for t in TOOLS}
        for rep in range(repeat):
            order = TOOLS if rep % 2 == 0 else TOOLS[::-1]
            for tool in order:
                out = tmp / f"{tool}_{layer}_{rep}.npz"
                if quiet > 0:
                    wait_quiet(quiet)
                rec = run_worker(tool, data, layer, out, threads)
                runs[tool].append(rec)
                print(f"   {layer:8s} run {rep + 1}/{repeat} {tool:9s} {rec['seconds']:7.2f} s "
                      f"(CPU {rec['cpu_seconds']:6.2f} s)  peak RSS {rec['peak_rss_mib']:6.0f} MiB"
                      f"  (other CPU {rec['other_cpu']:.2f} cores)", flush=True)
            n, total = compare(tmp / f"geopandas_{layer}_{rep}.npz",
                               tmp / f"multiplan_{layer}_{rep}.npz", min_area)
        med = {t: statistics.median(r["seconds"] for r in runs[t]) for t in TOOLS}
        cpu = {t: statistics.median(r["cpu_seconds"] for r in runs[t]) for t in TOOLS}
        rss = {t: max(r["peak_rss_mib"] for r in runs[t]) for t in TOOLS}
        ratio = med["geopandas"] / med["multiplan"]
        print(f"   parcels × {layer}: identical pieces ({n:,} pairs above {min_area:g} m², "
              f"total {total / 1e6:,.3f} km²)")
        for t in TOOLS:
            print(f"     {t:9s} median {med[t]:7.2f} s  (CPU {cpu[t]:6.2f} s)  "
                  f"peak RSS {rss[t]:6.0f} MiB ({runs[t][0]['peak_method']})")
        print(f"     speed ratio geopandas / multiplan: {ratio:.2f}×  "
              f"(CPU-time ratio {cpu['geopandas'] / cpu['multiplan']:.2f}×)", flush=True)
        report["layers"][layer] = {"median_s": med, "median_cpu_s": cpu,
                                   "peak_rss_mib": rss, "ratio": ratio,
                                   "pieces": n, "total_area_m2": total,
                                   "runs": runs}
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parcels", type=int, nargs="+", default=[150_000],
                    help="parcel counts; several values give a scaling run")
    ap.add_argument("--zones", type=int, nargs="+", default=None,
                    help="zone counts, one per parcel count (default parcels / 30)")
    ap.add_argument("--redlines", type=int, default=300)
    ap.add_argument("--layers", nargs="+", choices=("zones", "redlines"),
                    default=["zones", "redlines"], help="what to overlay the parcels with")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per tool (median)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-area", type=float, default=1e-6,
                    help="pieces below this area (m²) are not compared")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run (for tests)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="before each run wait up to this long for other processes to use "
                         "under 0.25 cores (shared machines)")
    ap.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--layer", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        worker(args.worker, args.data, args.layer, args.out, args.threads)
        return 0
    if args.smoke:
        args.parcels, args.zones, args.redlines, args.repeat = [3000], [100], 20, 1
        args.layers = ["zones"]
    zones = args.zones or [max(1, p // 30) for p in args.parcels]
    if len(zones) != len(args.parcels):
        ap.error("give one --zones value per --parcels value")

    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; multiplan threads="
          f"{args.threads}; {args.repeat} cold run(s) per tool, each in a fresh process")
    reports = []
    with tempfile.TemporaryDirectory(prefix="bench_overlay_") as tmp:
        for p, z in zip(args.parcels, zones, strict=True):
            reports.append(bench_size(p, z, args.redlines, args.repeat, args.threads,
                                      args.min_area, Path(tmp), args.seed, args.layers,
                                      args.wait_quiet))
    if len(reports) > 1 and "zones" in args.layers:
        first, last = reports[0], reports[-1]
        print("\n== scaling, parcels × zones")
        for t in TOOLS:
            t0 = first["layers"]["zones"]["median_s"][t]
            t1 = last["layers"]["zones"]["median_s"][t]
            print(f"   {t:9s} {last['parcels'] / first['parcels']:.2f}× parcels → "
                  f"{t1 / t0:.2f}× time ({t0:.2f} s → {t1:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
