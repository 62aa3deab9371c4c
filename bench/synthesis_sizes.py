"""Do synthetic pairs keep the particle sizes of their masks? Prints JSON, optionally a figure.

    python -m bench.synthesis_sizes [--model default] [--segmenter auto] [--seeds 3] [--figure docs/images/synthesis_sizes.png]

For each held-out BAM mask (val + test split, info bar rows dropped), ``--seeds``
synthetic images are made with the generator (as a user gets them, with its
finishing and textures) and segmented with the segmenter. The equivalent-circle diameters of
whole particles (not cut by the border, at least 16 px, as the instance metrics count
them) in the masks are compared with those segmented from the synthetic images: D10,
D50, D90 and the two-sample Kolmogorov-Smirnov distance. The figure shows both
distributions; it holds only these size statistics, no image data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.data.datasets import shared_splits
from napari_nanogan.io.images import read_image
from napari_nanogan.io.infobar import detect_info_bar
from napari_nanogan.io.masks import instance_labels, read_mask
from napari_nanogan.measure import equivalent_diameters

MIN_AREA_PX = 16


def quantiles(values: np.ndarray) -> dict:
    return {"count": int(values.size), **{f"D{q}": round(float(np.percentile(values, q)), 1) for q in (10, 50, 90)}}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest gap between the two empirical cumulative distributions."""
    grid = np.sort(np.concatenate([a, b]))
    cdf = [np.searchsorted(np.sort(x), grid, side="right") / x.size for x in (a, b)]
    return float(np.max(np.abs(cdf[0] - cdf[1])))


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.synthesis_sizes")
    ap.add_argument("--model", default="default", help="generator")
    ap.add_argument("--segmenter", default="auto")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()

    from napari_nanogan.segmentation import load_segmenter, segment
    from napari_nanogan.synthesis import load_generator, synthesize

    gen = load_generator(args.model, device="cpu")
    seg = load_segmenter(args.segmenter, device="cpu")
    bam = shared_splits(args.data_root)["bam"]
    masks, synthetic, pixels, used = [], [], [], set()
    for i, (_, ip, mp) in enumerate(bam["val"] + bam["test"]):
        image, meta = read_image(ip)
        bar = detect_info_bar(image)
        rows = bar.specimen_rows if bar else slice(None)
        labels = instance_labels(read_mask(mp)[rows])
        pixel = meta["pixel_size_nm"] or 1.0
        pixels.append(pixel)
        masks.append(equivalent_diameters(labels, min_area=MIN_AREA_PX, whole_only=True) * pixel)
        for s in range(args.seeds):
            result = segment(synthesize(labels, gen, seed=1000 * i + s), seg, info_bar=None)
            used.add(result.model)
            synthetic.append(equivalent_diameters(result.labels, min_area=MIN_AREA_PX, whole_only=True) * pixel)
    m, s = np.concatenate(masks), np.concatenate(synthetic)
    unit = "nm" if all(p != 1.0 for p in pixels) else "px"
    out = {"masks": len(masks), "seeds": args.seeds, "generator": args.model, "segmenter": args.segmenter,
           "segmenters_used": sorted(used), "unit": unit, "masks_ecd": quantiles(m), "synthetic_ecd": quantiles(s),
           "d50_relative_error": round(float(np.median(s) / np.median(m) - 1), 4), "ks_distance": round(ks_distance(m, s), 4)}
    out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        bins = np.linspace(0, np.percentile(np.concatenate([m, s]), 99.5), 32)
        ax.hist(m, bins=bins, density=True, color="#bbbbbb", edgecolor="white",
                label=f"masks: n = {m.size}, D50 = {np.median(m):.0f} {unit}")
        ax.hist(s, bins=bins, density=True, histtype="step", linewidth=2, color="#4a90d9",
                label=f"segmented synthetic images ({args.seeds} per mask): n = {s.size}, D50 = {np.median(s):.0f} {unit}")
        for values, colour in ((m, "#777777"), (s, "#4a90d9")):
            ax.axvline(np.median(values), color=colour, linestyle="--", linewidth=1)
        ax.set_xlabel(f"equivalent-circle diameter ({unit})")
        ax.set_ylabel("density")
        ax.set_title(f"{len(masks)} held-out BAM masks -> generator {args.model} -> segmenter {args.segmenter} "
                     f"({', '.join(sorted(used))})\nwhole particles >= {MIN_AREA_PX} px; KS distance {out['ks_distance']:.3f}",
                     fontsize=9)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the bars
        ax.legend(fontsize=8, loc="upper right")
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
