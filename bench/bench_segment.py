"""Segmentation speed and memory benchmarks; prints one JSON object.

    python -m bench.bench_segment [--model default] [--repeats 5] [--skip-8k] [--image FILE]

- ``seconds_1024x768``: end-to-end `segment()` on a 1024 x 768 SEM-like image
  (normalisation, tiled network, post-processing), median of ``--repeats`` runs
  after one warm-up; model load measured separately. ``--image FILE`` times a real
  image instead (e.g. a BAM SEM field from ../shared/data; never committed).
  ``chosen_model`` says which network an ``auto`` model used for it.
- ``seconds_1024x768_auto_diameter``: the same with ``diameter="auto"`` (the diameter
  estimated first), for models that can estimate it.
- ``seconds_cli_1024x768``: what ``nanogan segment`` does per 1024 x 768 file with its
  defaults (read the TIFF, segment with ``diameter="auto"`` where the model can estimate,
  write the labels and their table), median of ``--repeats``; ``matmul_74gflop_seconds``:
  what this machine takes for 74 GFLOP of fp32 matrix products (2048 x 2048, the cost of a
  16-channel Attention U-Net on that image), measured in the same run, and
  ``cli_vs_matmul``: their ratio, the speed goal's measure (it must be at most 2.0).
- ``megapixels_per_second_4096``: the same on a 4096 x 4096 image.
- ``precision``: what ``segment()`` runs in here by default (bf16 autocast on CPUs with
  native bf16 kernels); ``seconds_1024x768_fp32`` / ``_bf16`` and ``bf16_vs_fp32_labels``
  time both on the same image and compare their labels (IoU, F1).
- ``peak_rss_mb_8192``: peak resident memory of a fresh process that loads the
  model and segments an 8192 x 8192 image (includes the Python + torch baseline,
  reported too: ``baseline_rss_mb`` is the peak after the model load,
  ``resident_before_image_mb`` what is resident then). On Linux the peak is the
  process's own high-water mark (``VmHWM``): ``ru_maxrss`` also counts the forking
  parent's memory, so it read the bench's own 1 GB whenever the child needed less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _image(h, w, seed=0):
    from napari_nanogan.data.procedural import particle_labels, render_sem

    tile = render_sem(particle_labels((512, 512), n_particles=60, mean_diameter=24, seed=seed), seed=seed)
    reps = (-(-h // 512), -(-w // 512))
    return np.tile(tile, reps)[:h, :w]


def _peak_rss_child(model: str, side: int) -> dict:
    code = f"""
import json, resource, time
from bench.bench_segment import _image
from napari_nanogan.segmentation import load_segmenter, segment

def status_mb(key):  # Linux: VmHWM is this process's own peak (ru_maxrss keeps the forking parent's)
    try:
        return int([l for l in open('/proc/self/status') if l.startswith(key + ':')][0].split()[1]) / 1024
    except (OSError, IndexError):
        return None

def peak_mb():
    hwm = status_mb('VmHWM')
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

seg = load_segmenter({model!r}, device='cpu')
base, now = peak_mb(), status_mb('VmRSS')
img = _image({side}, {side})
t = time.perf_counter(); res = segment(img, seg); dt = time.perf_counter() - t
print(json.dumps(dict(peak_rss_mb=peak_mb(), baseline_rss_mb=base, resident_before_image_mb=now, seconds=dt,
                      particles=int(res.labels.max()))))
"""
    # from the repository root, so that the child imports this module as ``bench.bench_segment``
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def matmul_seconds(repeats: int = 5) -> float:
    """Median seconds for 74 GFLOP of fp32 2048 x 2048 matrix products (the speed goal's yardstick)."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    per = 2 * 2048**3
    count = 74e9 / per
    whole = int(count)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(whole):
            a @ b
        times.append((time.perf_counter() - t) * count / whole)
    return float(np.median(times))


def cli_seconds(seg, image, repeats: int) -> float:
    """Median seconds of what ``nanogan segment`` does for one file with its defaults."""
    import tempfile

    import tifffile

    from napari_nanogan.io.images import read_image, write_labels
    from napari_nanogan.segmentation import can_estimate_diameter, segment

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "field.tif"
        tifffile.imwrite(path, image)
        times = []
        for _ in range(repeats + 1):
            t = time.perf_counter()
            grey, meta = read_image(path)
            result = segment(grey, seg, diameter="auto" if can_estimate_diameter(seg) else None)
            write_labels(Path(tmp) / "field_labels.tif", result.labels, pixel_size_nm=meta["pixel_size_nm"],
                         confidence=result.confidence)
            times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.bench_segment")
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-8k", action="store_true")
    ap.add_argument("--image", default=None, help="time this image instead of the procedural 1024 x 768 one")
    args = ap.parse_args()

    import torch

    from napari_nanogan.segmentation import AutoSegmenter, load_segmenter, segment

    t0 = time.perf_counter()
    seg = load_segmenter(args.model, device="cpu")
    load_s = time.perf_counter() - t0
    if args.image:
        from napari_nanogan.io.images import as_grey, read_image

        img = as_grey(read_image(args.image)[0])
    else:
        img = _image(768, 1024)
    chosen = segment(img, seg).model  # warm-up
    # what one network costs: the one auto chose (its first pass and any fall-back come on top)
    net = {s.name: s for s in (seg.general, seg.bright)}[chosen] if isinstance(seg, AutoSegmenter) else seg
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        segment(img, seg)
        times.append(time.perf_counter() - t)
    # split: network only vs post-processing, on the same image
    from napari_nanogan.segmentation.tiles import probability_steps

    t = time.perf_counter()
    gen = probability_steps(img, net)
    for _ in gen:
        pass
    net_s = time.perf_counter() - t
    auto = []
    from napari_nanogan.segmentation import can_estimate_diameter

    if can_estimate_diameter(seg):
        for _ in range(args.repeats):
            t = time.perf_counter()
            segment(img, seg, diameter="auto")
            auto.append(time.perf_counter() - t)
    matmul = matmul_seconds(args.repeats)
    cli = cli_seconds(seg, img, args.repeats)
    big = _image(4096, 4096, seed=1)
    t = time.perf_counter()
    segment(big, seg)
    big_s = time.perf_counter() - t
    result = {
        "benchmark": "segment",
        "model": args.model,
        "chosen_model": chosen,
        "image": args.image or "procedural 1024 x 768",
        "model_config": net.config.to_dict(),
        "model_load_seconds": round(load_s, 3),
        "seconds_1024x768": round(float(np.median(times)), 3),
        "seconds_1024x768_all": [round(x, 3) for x in times],
        "seconds_1024x768_network_only": round(net_s, 3),
        "seconds_1024x768_auto_diameter": round(float(np.median(auto)), 3) if auto else None,
        "seconds_cli_1024x768": round(cli, 3),
        "matmul_74gflop_seconds": round(matmul, 3),
        "cli_vs_matmul": round(cli / matmul, 2),
        "seconds_4096x4096": round(big_s, 2),
        "megapixels_per_second_4096": round(4096 * 4096 / 1e6 / big_s, 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.models.runtime import bf16_supported

    result["bf16_supported"] = bf16_supported()
    members = (seg.general, seg.bright) if isinstance(seg, AutoSegmenter) else (seg,)
    result["precision"] = net.precision  # what segment() runs in on this CPU by default
    if result["bf16_supported"]:  # both precisions, timed and compared on the same image
        labels, seconds = {}, {}
        for precision in ("fp32", "bf16"):
            for member in members:
                member.precision = precision
            segment(img, seg)
            runs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                labels[precision] = segment(img, seg).labels
                runs.append(time.perf_counter() - t)
            seconds[precision] = round(float(np.median(runs)), 3)
        for member in members:
            member.precision = result["precision"]
        agree = summarize([(labels["fp32"], labels["bf16"])])
        result["seconds_1024x768_fp32"] = seconds["fp32"]
        result["seconds_1024x768_bf16"] = seconds["bf16"]
        result["bf16_vs_fp32_labels"] = {"iou": round(agree["iou"], 4), "f1": round(agree["f1"], 4)}
    if not args.skip_8k:
        child = _peak_rss_child(args.model, 8192)
        now = child.get("resident_before_image_mb")
        result.update({"peak_rss_mb_8192": round(child["peak_rss_mb"]), "baseline_rss_mb": round(child["baseline_rss_mb"]),
                       "resident_before_image_mb": None if now is None else round(now),
                       "seconds_8192x8192": round(child["seconds"], 1)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result["commit"] = commit
    print(json.dumps(result))


if __name__ == "__main__":
    main()
