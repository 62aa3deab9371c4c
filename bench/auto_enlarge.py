"""Should an *estimated* diameter under 12 px enlarge the image? Measured on real images made small; prints JSON.

    python -m bench.auto_enlarge [--model default] [--splits val,test] [--below 10,12] [--keep-below 15,inf]
                                 [--seed 0] [--copies 3]

Few annotated images show particles under 12 px (two EMPS test images, none in val), so
this bench makes them: each val / test image of BAM and EMPS whose annotated median
diameter is 16-200 px is shrunk ``--copies`` times (``training.sizing.noisy_shrunk_copy``:
anti-aliased, with the pixel noise added back; its labels shrunk with it) to particles of a
drawn 5-11 px, keeping at least 128 px a side. The images and their copies are segmented as ``nanogan segment``
does (``diameter="auto"``), once per threshold of ``--below``
(``config.AUTO_ENLARGE_BELOW``: an estimate under it enlarges the image, by at most
``config.MAX_ENLARGE``) and check of ``--keep-below`` (``config.AUTO_ENLARGE_KEEP_BELOW``:
the enlargement is undone when the particles found have a median diameter of that many px
or more), never enlarged for an estimate (``never``), and with the annotated median
diameter typed (``typed``), for reference.

Reported per split and group (``copies``: the shrunk copies; ``originals``: the images as
they are, of which only those estimated under a threshold can change): instance precision,
recall and F1 at IoU 0.5 pooled over the images (instances under 16 px² ignored, as
everywhere), and how many images were enlarged. The estimate's median |relative error| on
the copies is printed too. The originals are what an enlargement can harm; the copies are
what it is for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np

from napari_nanogan import config
from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.measure import median_diameter
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment
from napari_nanogan.training.loop import machine_description
from napari_nanogan.training.sizing import noisy_shrunk_copy

#: Originals whose annotated median diameter (px) lies here get a shrunk copy.
COPY_FROM = (16.0, 200.0)
#: The copies' median diameter (px) is drawn log-uniformly from this range.
COPY_DIAMETERS = (5.0, 11.0)
#: A copy keeps at least this many pixels a side.
COPY_MIN_SIDE = 128


def copies_of(samples, seed: int, copies: int = 1):
    """Shrunk copies (with labels) of the samples of particles in ``COPY_FROM``: ``copies`` draws per sample, by ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for sample in samples:
        diameter = median_diameter(sample.labels)
        for _ in range(copies):
            factor = float(np.exp(rng.uniform(*np.log(COPY_DIAMETERS)))) / diameter
            if COPY_FROM[0] <= diameter <= COPY_FROM[1] and min(sample.image.shape) * factor >= COPY_MIN_SIDE:
                out.append(noisy_shrunk_copy(sample, factor, rng))
    return out


def pooled(pairs, enlarged: int) -> dict:
    s = summarize(pairs)
    return {"images": len(pairs), "enlarged": enlarged, "tp": sum(r["tp"] for r in s["per_image"]),
            "fp": sum(r["fp"] for r in s["per_image"]), "fn": sum(r["fn"] for r in s["per_image"]),
            **{k: round(s[k], 4) for k in ("precision", "recall", "f1", "dice")}}


def run_group(model, samples, thresholds, keeps) -> dict:
    """Each sample segmented with the estimate under every threshold and check, and with its annotated diameter typed."""
    kept = config.AUTO_ENLARGE_BELOW, config.AUTO_ENLARGE_KEEP_BELOW
    arms = [(0.0, np.inf)] + [(t, k) for t in thresholds if t > 0 for k in keeps]
    name = {arm: "never" if arm[0] == 0 else f"below_{arm[0]:g}_keep_below_{arm[1]:g}" for arm in arms}
    pairs = {name[arm]: [] for arm in arms}
    enlarged = dict.fromkeys(pairs, 0)
    pairs["typed"], errors = [], []
    try:
        for sample in samples:
            truth = sample.labels
            config.AUTO_ENLARGE_BELOW = 0.0
            base = segment(sample.image, model, diameter="auto", info_bar=None)
            estimate = base.diameter_px
            if estimate is not None:
                errors.append(abs(estimate / median_diameter(truth) - 1))
            for arm in arms:
                if arm[0] > 0 and estimate is not None and estimate < min(arm[0], config.MODEL_DIAMETER_PX / config.ENLARGE_BELOW):
                    config.AUTO_ENLARGE_BELOW, config.AUTO_ENLARGE_KEEP_BELOW = arm
                    result = segment(sample.image, model, diameter="auto", info_bar=None)
                    enlarged[name[arm]] += result.scale > 1
                    pairs[name[arm]].append((truth, result.labels))
                else:
                    pairs[name[arm]].append((truth, base.labels))
            config.AUTO_ENLARGE_BELOW = 0.0
            typed = segment(sample.image, model, diameter=median_diameter(truth), info_bar=None)
            pairs["typed"].append((truth, typed.labels))
    finally:
        config.AUTO_ENLARGE_BELOW, config.AUTO_ENLARGE_KEEP_BELOW = kept
    out = {arm: pooled(p, enlarged.get(arm, 0)) for arm, p in pairs.items()}
    out["estimate_median_abs_error"] = round(float(np.median(errors)), 4) if errors else None
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.auto_enlarge", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--splits", default="val,test")
    ap.add_argument("--below", default="10,12", help="thresholds (px) of config.AUTO_ENLARGE_BELOW to compare")
    ap.add_argument("--keep-below", default="15,inf",
                    help="values (px) of config.AUTO_ENLARGE_KEEP_BELOW to compare (inf: an enlargement is not undone for its particles' size)")
    ap.add_argument("--seed", type=int, default=0, help="draws the copies' sizes and noise")
    ap.add_argument("--copies", type=int, default=3, help="shrunk copies drawn per image (those too small are not made)")
    args = ap.parse_args(argv)
    thresholds = [float(v) for v in args.below.split(",")]
    keeps = [float(v) for v in args.keep_below.split(",")]
    splits = shared_splits(args.data_root)
    model = load_segmenter(args.model, device="cpu")
    result = {"model": args.model, "seed": args.seed, "copies_per_image": args.copies, "copy_diameters_px": COPY_DIAMETERS,
              "max_enlarge": config.MAX_ENLARGE, "machine": machine_description()}
    for part in args.splits.split(","):
        originals = [s for key in ("bam", "emps") for s in load_samples(splits[key][part], domain=key)
                     if np.isfinite(median_diameter(s.labels))]
        copies = copies_of(originals, args.seed, args.copies)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result[part] = {"copies": run_group(model, copies, thresholds, keeps),
                            "originals": run_group(model, originals, thresholds, keeps)}
        print(json.dumps({part: result[part]}))
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
