"""Dask throughput and memory: images per second on 1 and 2 workers, a 16k x 16k zarr image block by block.

    python -m bench.distributed [--model default] [--images 8] [--workers 1,2] [--big 16384] [--block 2048]
    python -m bench.distributed --quick      # the smallest mode: a smoke run in about a minute

Prints one JSON object (progress on stderr). No data needed: procedural SEM images
(``render_sem``) of the BAM fields' size, 1024 x 768, written as TIFFs.

- ``batch``: for each worker count W, a local cluster of W single-threaded worker
  processes (torch 1 thread each, so that one worker is one core) segments the same
  ``--images`` files with ``--model`` (diameter estimated, as ``nanogan segment``
  does) through :func:`napari_nanogan.distributed.batch.segment_files`; the model is
  loaded before the clock starts. ``images_per_second``, ``seconds``, and
  ``scaling_efficiency`` = rate(W) / (W * rate(1)).
- ``big``: a ``--big`` x ``--big`` OME-Zarr image (one procedural 2048 x 2048 field,
  tiled) segmented block by block on the largest cluster (``--block``, default margin),
  at the image's own scale (``diameter`` 0: no estimate). ``peak_rss_mb_per_worker``
  is each worker process's resident high-water mark (``ru_maxrss``) at the end, with the
  model loaded (``rss_mb_after_model_load``) and the whole job behind it.
- ``projection``: the time for 10,000 such images on 16 workers, by the model written
  in ``projection.model``: each worker a core of its own, the per-image time of one
  worker divided by the measured efficiency of the largest cluster measured here.
  Startup (cluster, model load) is measured and added; scheduler overhead (about 1 ms
  per task in Dask's documentation) is added per task.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCHEDULER_SECONDS_PER_TASK = 0.001  # Dask's documented overhead per task, order of magnitude


def _say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _rss(dask_worker=None) -> dict:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    with open("/proc/self/status") as f:
        now = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:")), None)
    return {"peak_mb": round(peak, 1), "now_mb": None if now is None else round(now, 1)}


def _images(folder: Path, n: int, shape=(768, 1024)) -> list[Path]:
    import tifffile

    from napari_nanogan.data.procedural import particle_labels, render_sem

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        labels = particle_labels(shape, n_particles=int(shape[0] * shape[1] / 4000), mean_diameter=24, seed=k)
        path = folder / f"field{k:03d}.tif"
        tifffile.imwrite(path, render_sem(labels, seed=100 + k, info_bar_rows=0))
        out.append(path)
    return out


def _big_zarr(path: Path, side: int, tile: int = 2048) -> Path:
    """A side x side OME-Zarr of one procedural field tiled (rolled per tile), written chunk by chunk."""
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.io.omezarr import create_ome_zarr

    tile = min(tile, side)
    field = render_sem(particle_labels((tile, tile), n_particles=int(tile * tile / 4000), mean_diameter=24, seed=7),
                       seed=8, info_bar_rows=0)
    writer = create_ome_zarr(path, (side, side), field.dtype, chunk=tile, overwrite=True, levels=1)
    for y in range(0, side, tile):
        for x in range(0, side, tile):
            part = np.roll(field, (y // tile * 97, x // tile * 131), axis=(0, 1))
            writer[y : y + tile, x : x + tile] = part[: min(tile, side - y), : min(tile, side - x)]
    return path


def _batch(paths, workers: int, model: str, out: Path) -> dict:
    from distributed import Client, LocalCluster

    from napari_nanogan.distributed.batch import segment_files
    from napari_nanogan.distributed.cluster import ModelPlugin, register

    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        register(client, ModelPlugin("segmenter", model, torch_threads=1))  # every worker loads it, off the clock
        startup = time.perf_counter() - t0
        t = time.perf_counter()
        outcomes = segment_files(client, paths, out, model=model, diameter="auto", torch_threads=1)
        seconds = time.perf_counter() - t
    failed = [o.line for o in outcomes if o.status != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} images failed: {failed[:2]}")
    return {"workers": workers, "images": len(paths), "seconds": round(seconds, 2),
            "images_per_second": round(len(paths) / seconds, 4), "startup_seconds": round(startup, 2)}


def _big(path: Path, workers: int, model: str, block: int, out: Path) -> dict:
    from distributed import Client, LocalCluster

    from napari_nanogan.distributed.blocks import segment_zarr
    from napari_nanogan.distributed.cluster import ModelPlugin, register
    from napari_nanogan.io.omezarr import open_zarr_image

    plane, _ = open_zarr_image(path)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        register(client, ModelPlugin("segmenter", model, torch_threads=1))
        loaded = client.run(_rss)
        t = time.perf_counter()
        last = [0.0]

        def progress(done, total):
            if time.perf_counter() - last[0] > 30 or done == total:
                last[0] = time.perf_counter()
                _say(f"  block {done}/{total}, {time.perf_counter() - t:.0f} s")

        result = segment_zarr(client, plane, out, model=model, diameter=None, block=block, torch_threads=1,
                              progress=progress)
        seconds = time.perf_counter() - t
        peaks = client.run(_rss)
    return {"shape": list(plane.shape), "workers": workers, "block": block, "margin": result.plan.margin,
            "blocks": result.plan.grid[0] * result.plan.grid[1], "particles": result.count,
            "seconds": round(seconds, 1), "megapixels_per_second": round(plane.shape[0] * plane.shape[1] / 1e6 / seconds, 3),
            "rss_mb_after_model_load": [v["peak_mb"] for v in loaded.values()],
            "peak_rss_mb_per_worker": [v["peak_mb"] for v in peaks.values()],
            "goal_mb_per_worker": 1536}


def project(rate_one: float, efficiency: float, *, images: int = 10_000, workers: int = 16,
            startup_seconds: float = 0.0) -> dict:
    """Seconds for ``images`` on ``workers``: ``images / (workers * rate_one * efficiency)`` plus startup and scheduling."""
    rate = workers * rate_one * efficiency
    seconds = images / rate + startup_seconds + images * SCHEDULER_SECONDS_PER_TASK / max(workers, 1)
    return {"images": images, "workers": workers, "images_per_second": round(rate, 3), "seconds": round(seconds, 1),
            "hours": round(seconds / 3600, 2),
            "model": "T = N / (W * r1 * e) + startup + N * 1 ms / W: r1 = one single-threaded worker's images/s "
                     "measured here, e = the scaling efficiency of the largest cluster measured here (kept for 16 "
                     "workers, each on a core of its own: no shared-core contention beyond what was measured), startup "
                     "= the measured cluster start and model load, 1 ms = Dask's per-task scheduling overhead"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--images", type=int, default=8, help="images per batch run (default 8)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    parser.add_argument("--big", type=int, default=16384, help="side of the large zarr image (0: skip; default 16384)")
    parser.add_argument("--block", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="smallest mode: 4 images of 256 x 320, a 1024 zarr image")
    parser.add_argument("--tmp", default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    shape = (256, 320) if args.quick else (768, 1024)
    n_images = 4 if args.quick else args.images
    big = 1024 if args.quick else args.big
    block = 512 if args.quick else args.block
    counts = [int(v) for v in args.workers.split(",")]
    work = Path(args.tmp or tempfile.mkdtemp(prefix="nanogan-bench-"))
    _say(f"working in {work}")
    paths = _images(work / "images", n_images, shape)
    batch = []
    for w in counts:
        _say(f"batch: {n_images} images of {shape[1]} x {shape[0]} on {w} workers ...")
        batch.append(_batch(paths, w, args.model, work / f"labels_{w}"))
        _say(f"  {batch[-1]}")
    rate_one = next(b["images_per_second"] for b in batch if b["workers"] == 1) if 1 in counts else None
    for b in batch:
        b["scaling_efficiency"] = None if rate_one is None else round(b["images_per_second"] / (b["workers"] * rate_one), 3)
    result = {"benchmark": "distributed", "model": args.model, "image_shape": list(shape), "batch": batch}
    largest = max(batch, key=lambda b: b["workers"])
    if rate_one is not None:
        result["projection"] = project(rate_one, largest["scaling_efficiency"],
                                       startup_seconds=max(b["startup_seconds"] for b in batch))
    if big:
        _say(f"big: a {big} x {big} zarr image block by block on {max(counts)} workers ...")
        zpath = _big_zarr(work / "big.zarr", big)
        result["big"] = _big(zpath, max(counts), args.model, block, work / "big_labels.zarr")
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "load_average_at_end": [round(v, 2) for v in os.getloadavg()]}
    try:
        result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                          cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
