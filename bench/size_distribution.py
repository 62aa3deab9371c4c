"""Particle size distribution of the segmenter's output vs the ground truth on BAM; prints JSON
and writes a side-by-side histogram figure.

    python -m bench.size_distribution [--model default] [--split test] [--figure docs/images/bam_size_distribution.png]

Both sides go through the same measurement (napari_nanogan.measure): ECD in nm from
the pixel size read from each file; particles cut by the image border or the info
bar excluded; annotation fragments under 16 px ignored on both sides (as in the
instance metrics).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.data.datasets import shared_splits
from napari_nanogan.io.images import read_image
from napari_nanogan.io.masks import instance_labels, read_mask
from napari_nanogan.measure import measure_particles

MIN_AREA_PX = 16


def whole_ecd(labels, pixel, bar_start):
    t = measure_particles(labels, pixel_size_nm=pixel, info_bar_start=bar_start)
    keep = t.included() & (t.columns["area_nm2"] >= MIN_AREA_PX * pixel**2)
    return t.columns["ecd_nm"][keep]


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.size_distribution")
    ap.add_argument("--model", default="default")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    from napari_nanogan.segmentation import load_segmenter, segment

    seg = load_segmenter(args.model)
    truth, pred, per_image = [], [], []
    for name, ip, mp in shared_splits(args.data_root)["bam"][args.split]:
        image, meta = read_image(ip)
        result = segment(image, seg)
        start = result.info_bar.start if result.info_bar else image.shape[0]
        gt = np.zeros(image.shape, np.int32)
        gt[:start] = instance_labels(read_mask(mp)[:start])
        truth.append(whole_ecd(gt, meta["pixel_size_nm"], start))
        pred.append(whole_ecd(result.labels, meta["pixel_size_nm"], start))
        per_image.append({"image": name, "count_truth": int(truth[-1].size), "count_segmented": int(pred[-1].size),
                          "D50_truth": float(np.median(truth[-1])), "D50_segmented": float(np.median(pred[-1])),
                          "d50_relative_error": float(np.median(pred[-1]) / np.median(truth[-1]) - 1)})
    t, p = np.concatenate(truth), np.concatenate(pred)
    out = {
        "split": args.split, "images": len(truth), "model": args.model,
        "truth": {"count": int(t.size), "D10": float(np.percentile(t, 10)), "D50": float(np.median(t)), "D90": float(np.percentile(t, 90))},
        "segmented": {"count": int(p.size), "D10": float(np.percentile(p, 10)), "D50": float(np.median(p)), "D90": float(np.percentile(p, 90))},
    }
    out["d50_relative_error"] = (out["segmented"]["D50"] - out["truth"]["D50"]) / out["truth"]["D50"]
    out["per_image"] = per_image  # one field's D50 errs more than the pooled one: its particles are fewer
    out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True, sharey=True)
        bins = np.linspace(0, np.percentile(np.concatenate([t, p]), 99.5), 30)
        for ax, values, title, colour in ((axes[0], t, "ground truth (manual masks)", "#888888"),
                                          (axes[1], p, f"napari-nanogan ({args.model})", "#4a90d9")):
            ax.hist(values, bins=bins, color=colour, edgecolor="white")
            ax.axvline(np.median(values), color="#d9534f", linewidth=1.5)
            ax.set_title(f"{title}\nn = {values.size}, D50 = {np.median(values):.0f} nm", fontsize=10)
            ax.set_xlabel("equivalent-circle diameter (nm)")
        axes[0].set_ylabel("particles")
        fig.suptitle(f"BAM TiO2 SEM, {args.split} split ({len(truth)} images), particles cut by border/info bar excluded", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
