"""Things that are not particles: text, scale bars, arrows, frames and info bars drawn onto real images; prints JSON.

    python -m bench.not_particles [--model default] [--split val] [--per-image 2]

Each image of the split (BAM and EMPS) gets ``--per-image`` versions with distractors
(``data.distractors``: words, panel letters, scale bars with their length, arrows, frames,
an info bar) drawn at random places. Reported: how many segmented particles lie mostly
(>= half their pixels) on drawn pixels over annotated background (``false_particles``, per
image and in all), the share of images with none, and the instance F1 on the same images
without and with the distractors (drawn pixels count as background in the truth).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.data.distractors import draw_distractors
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment


def on_ink(labels: np.ndarray, ink: np.ndarray) -> int:
    """Particles with at least half their pixels on ``ink``."""
    n = int(labels.max())
    if n == 0:
        return 0
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    covered = np.bincount(labels.ravel(), ink.ravel(), minlength=n + 1)[1:]
    return int(((covered >= 0.5 * area) & (area > 0)).sum())


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.not_particles")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--split", default="val", choices=["val", "test"])
    ap.add_argument("--per-image", type=int, default=2)
    args = ap.parse_args()
    model = load_segmenter(args.model)
    splits = shared_splits(args.data_root)
    samples = [s for key in ("bam", "emps") for s in load_samples(splits[key][args.split], domain=key)]
    rng = np.random.default_rng(0)
    false, clean_pairs, dirty_pairs, kinds = [], [], [], {}
    for s in samples:
        image = np.asarray(s.image)
        if image.dtype != np.uint8:
            lo, hi = np.percentile(image, [0.5, 99.5])
            image = np.clip((image - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        clean = segment(image, model, diameter="auto", info_bar=None).labels
        for _ in range(args.per_image):
            drawn, labels, what = draw_distractors(image, s.labels, rng)
            ink = drawn != image
            truth = np.where(ink, 0, s.labels)
            result = segment(drawn, model, diameter="auto", info_bar=None).labels
            false.append(on_ink(result, ink & (s.labels == 0)))
            clean_pairs.append((truth, np.where(ink, 0, clean)))
            dirty_pairs.append((truth, result))
            for kind in what:
                kinds.setdefault(kind, []).append(false[-1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"model": args.model, "split": args.split, "images": len(false),
                      "false_particles": int(np.sum(false)), "false_particles_per_image": round(float(np.mean(false)), 3),
                      "images_without_false_particles": round(float(np.mean(np.array(false) == 0)), 3),
                      "by_kind_mean_false": {k: round(float(np.mean(v)), 3) for k, v in sorted(kinds.items())},
                      "f1_without": round(summarize(clean_pairs)["f1"], 4), "f1_with": round(summarize(dirty_pairs)["f1"], 4),
                      "commit": commit}))


if __name__ == "__main__":
    main()
