"""All checks of ``multiplan check`` (质检, 三区三线, indicators, 耕地占补平衡, 三生) on the
county-scale sample: wall and CPU time per check, total, peak RSS, progress and cancel.

    .venv/bin/python benchmarks/bench_checks.py                        # 150k-parcel county
    .venv/bin/python benchmarks/bench_checks.py --repeat 3 --report /tmp/check.html
    .venv/bin/python benchmarks/bench_checks.py --compare               # + geopandas routes
    .venv/bin/python benchmarks/bench_checks.py --smoke                 # the 20k sample, once

The county project is built once with ``sample_data/build_sample.py --parcels N`` and cached
under ``/tmp/multiplan-bench/county<N>`` (``--project`` uses another); every run works on a
scratch copy, because the checks write their results into the project.

Each run is a fresh subprocess (``run_checks(project)`` with a progress callback, then the
report), so its peak RSS (``ru_maxrss``) is its own. Around each run the parent reads
``/proc/stat`` and subtracts the worker's CPU time: "other CPU" is what other processes used
meanwhile, in cores. These machines are shared; above ≈0.2 cores the run competed for the two
cores and its wall time says more about the neighbours than about multiplan. The CPU seconds
per check do not depend on that load (they are the whole process's CPU time: a check that
runs on two threads shows up to twice its wall time).

``--cancel-after S`` also measures cancellation: a run in a thread is cancelled after S
seconds and the time until ``Cancelled`` reaches the caller is printed (the project is left
unchanged: nothing is written before the last step).

``--compare`` times, in the same process and on the same in-memory layer (现状), what a user
would otherwise write with geopandas for the two topology checks: overlaps within the layer
(``sjoin(predicate="overlaps")`` and ``overlay`` of the joined pairs) and gaps against the
county (``county.difference(layer.union_all())``); the second takes minutes at 150k parcels.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("MULTIPLAN_BENCH_CACHE", "/tmp/multiplan-bench"))
SAMPLE = ROOT / "sample_data" / "changxing"


def _cpu_ticks() -> float:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [float(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0.0)
    return (sum(vals) - idle) / os.sysconf("SC_CLK_TCK")


def _project(args: argparse.Namespace) -> Path:
    if args.smoke:
        return SAMPLE
    if args.project:
        return Path(args.project)
    path = CACHE / f"county{args.parcels}"
    if not (path / "plan.gpkg").is_file():
        print(f"building the {args.parcels}-parcel county in {path} (≈1 min) …", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "sample_data" / "build_sample.py"),
                        "--parcels", str(args.parcels), "--out", str(path)], check=True)
    return path


# --------------------------------------------------------------------------- worker

def worker(project_dir: str, threads: int, report: str | None, cancel_after: float | None
           ) -> dict:
    from multiplan.core.project import Project
    from multiplan.core.qa import run_checks
    from multiplan.core.tasks import Cancelled, CancelToken, Task

    project = Project.open(project_dir)
    out: dict = {}
    if cancel_after is not None:
        token = CancelToken()
        state = project.snapshot_state()
        result: dict = {}

        def go() -> None:
            try:
                run_checks(project, task=Task(None, token), threads=threads)
                result["finished"] = True
            except Cancelled:
                result["cancelled_at"] = time.perf_counter()

        th = threading.Thread(target=go)
        th.start()
        time.sleep(cancel_after)
        t = time.perf_counter()
        token.cancel()
        th.join()
        out["cancel"] = {"after_s": cancel_after,
                         "latency_s": round(result["cancelled_at"] - t, 3)
                         if "cancelled_at" in result else None,
                         "finished_before_cancel": result.get("finished", False),
                         "project_unchanged": project.snapshot_state() == state}
        return out
    progress: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    run = run_checks(project, threads=threads,
                     task=Task(lambda f, m: progress.append((time.perf_counter() - t0, f))))
    wall = time.perf_counter() - t0
    rep = None
    t_rep = 0.0
    if report:
        from multiplan.core.report import write_report
        t = time.perf_counter()
        rep = str(write_report(run, report))
        t_rep = time.perf_counter() - t
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(progress)]
    out.update({
        "wall_s": round(wall, 3), "cpu_s": round(run.cpu_seconds, 3),
        "read_s": round(run.seconds_read, 3), "write_s": round(run.seconds_write, 3),
        "report_s": round(t_rep, 3), "report": rep, "passed": run.passed,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "progress_calls": len(progress), "longest_progress_gap_s": round(max(gaps), 3)
        if gaps else None,
        "checks": [{"id": r.id, "status": r.status, "errors": r.errors,
                    "warnings": r.warnings, "infos": r.infos, "wall_s": round(r.seconds, 3),
                    "cpu_s": round(r.cpu_seconds, 3)} for r in run.results]})
    return out


def compare(project_dir: str) -> dict:
    """geopandas routes for the two topology checks on 现状 (same process, same data)."""
    import geopandas as gpd

    from multiplan.core.project import Project
    from multiplan.core.qa import CheckContext, coverage_gaps, layer_overlaps

    p = Project.open(project_dir)
    name = next(r.name for r in p.layers() if r.role == "current_use")
    gdf = p.read_layer(name, columns=[])
    county = p.read_layer(next(r.name for r in p.layers() if r.role == "admin_boundary"),
                          columns=[]).geometry.union_all()
    out: dict = {"layer": name, "features": len(gdf)}
    ctx = CheckContext(p)
    lay = ctx.layer(name)
    t = time.perf_counter()
    ov = layer_overlaps(lay.geoms, threads=2)
    out["multiplan_overlaps_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    gp = coverage_gaps(lay.geoms, lay.area, ctx.tiles, extra=[ov.geometry])
    out["multiplan_gaps_s"] = round(time.perf_counter() - t, 3)
    g = gdf.reset_index(drop=True)
    t = time.perf_counter()
    j = gpd.sjoin(g, g, predicate="overlaps")
    j = j[j.index < j["index_right"]]
    pieces = g.geometry.values[j.index.to_numpy()].intersection(
        g.geometry.values[j["index_right"].to_numpy()])
    out["geopandas_overlaps_s"] = round(time.perf_counter() - t, 3)
    out["geopandas_overlap_pairs"] = len(j)
    out["multiplan_overlap_pieces"] = len(ov.area)
    out["geopandas_overlap_area_m2"] = float(pieces.area.sum())
    t = time.perf_counter()
    gaps = gpd.GeoSeries([county], crs=g.crs).difference(g.geometry.union_all())
    out["geopandas_gaps_s"] = round(time.perf_counter() - t, 3)
    out["geopandas_gap_area_m2"] = float(gaps.area.sum())
    out["multiplan_gap_area_m2"] = float(gp.area.sum())
    return out


# --------------------------------------------------------------------------- parent

def _spawn(kind: str, src: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        dst = Path(tmp) / "project"
        shutil.copytree(src, dst)
        before = _cpu_ticks()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, f"--{kind}", str(dst), "--threads",
                               str(args.threads), *extra], capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        other = max(_cpu_ticks() - before - own, 0.0) / wall
    if proc.returncode:
        raise SystemExit(proc.stderr)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["other_cpu_cores"] = round(other, 2)
    out["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parcels", type=int, default=150_000)
    ap.add_argument("--project", help="use this project (a copy is checked)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report", help="write the check report of the last run here")
    ap.add_argument("--cancel-after", type=float, help="also measure cancel after S seconds")
    ap.add_argument("--compare", action="store_true", help="time the geopandas routes too")
    ap.add_argument("--smoke", action="store_true", help="the 20k sample, one run")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-report", help=argparse.SUPPRESS)
    ap.add_argument("--worker-cancel", help=argparse.SUPPRESS)
    ap.add_argument("--worker-compare", help=argparse.SUPPRESS)
    ap.add_argument("--cancel", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.report, None)))
        return
    if args.worker_cancel:
        print(json.dumps(worker(args.worker_cancel, args.threads, None, args.cancel)))
        return
    if args.worker_compare:
        print(json.dumps(compare(args.worker_compare)))
        return
    src = _project(args)
    runs = []
    for k in range(1 if args.smoke else args.repeat):
        extra = ["--report", args.report] if args.report and k == args.repeat - 1 else []
        r = _spawn("worker", src, args, extra)
        runs.append(r)
        print(f"run {k + 1}: wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s, read "
              f"{r['read_s']:.2f} s, write {r['write_s']:.2f} s, peak RSS "
              f"{r['peak_rss_mib']:.0f} MiB, other CPU {r['other_cpu_cores']:.2f} cores, "
              f"load {r['load_avg_1min_after']:.1f}", flush=True)
    ids = [c["id"] for c in runs[0]["checks"]]
    print()
    print(f"{'check':26s} {'status':6s} {'err':>5s} {'warn':>5s} {'info':>5s} "
          f"{'wall s (median)':>16s} {'CPU s (median)':>15s}")
    for i, cid in enumerate(ids):
        c = runs[0]["checks"][i]
        w = statistics.median(r["checks"][i]["wall_s"] for r in runs)
        cpu = statistics.median(r["checks"][i]["cpu_s"] for r in runs)
        print(f"{cid:26s} {c['status']:6s} {c['errors']:5d} {c['warnings']:5d} "
              f"{c['infos']:5d} {w:16.2f} {cpu:15.2f}")
    print(f"{'total':26s} {'':6s} {'':5s} {'':5s} {'':5s} "
          f"{statistics.median(r['wall_s'] for r in runs):16.2f} "
          f"{statistics.median(r['cpu_s'] for r in runs):15.2f}")
    print(f"progress callbacks per run: {runs[0]['progress_calls']}, longest silence "
          f"{runs[0]['longest_progress_gap_s']} s")
    result: dict = {"project": str(src), "runs": runs}
    if args.cancel_after is not None:
        c = _spawn("worker-cancel", src, args, ["--cancel", str(args.cancel_after)])
        result["cancel"] = c["cancel"]
        print(f"cancel after {args.cancel_after:g} s: Cancelled reached the caller "
              f"{c['cancel']['latency_s']} s later; project unchanged: "
              f"{c['cancel']['project_unchanged']}")
    if args.compare:
        c = _spawn("worker-compare", src, args, [])
        result["compare"] = c
        print(json.dumps(c, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2),
                                   encoding="utf-8")


if __name__ == "__main__":
    main()
