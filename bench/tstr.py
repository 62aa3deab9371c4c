"""Train on synthetic, test on real: what the generator's pairs teach a segmenter; prints JSON.

    python -m bench.tstr --out runs/tstr [--model default] [--n 3] [--seeds 0,1] [--init default|none]
                         [--steps 1200] [--arms real,synthetic,both]

The BAM training masks are drawn ``--n`` times each by the generator (``nanogan export``'s
code path); segmenters are trained with ``nanogan train --pairs``'s recipe on the real
training pairs (``real``), on the synthetic pairs (``synthetic``), and on both folders
(``both``: each folder half of the patches), one per seed, and scored on the BAM test
fields with the product's path (``diameter="auto"``): foreground Dice, instance F1 at IoU
0.5, panoptic quality, the whole-particle D50 error. Ratios to ``real`` and the mean and
spread over seeds are reported. Standard FID/KID of the same synthetic images against the
real test fields sit beside them when the Inception weights are installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.io.pairs import Pair, export_pairs
from napari_nanogan.measure import equivalent_diameters
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import Segmenter, segment
from napari_nanogan.synthesis import load_generator, synthetic_pairs
from napari_nanogan.training.pairs import PAIRS_RECIPE, train_on_pairs


def panoptic_quality(pairs) -> float:
    """PQ = (sum of matched IoUs) / (TP + FP / 2 + FN / 2), pooled over images (instances of 16 px or more)."""
    s = summarize(pairs)
    tp = sum(p["tp"] for p in s["per_image"])
    fp = sum(p["fp"] for p in s["per_image"])
    fn = sum(p["fn"] for p in s["per_image"])
    return float(s["matched_iou"] * tp / max(tp + 0.5 * fp + 0.5 * fn, 1))


def score(model_path, test) -> dict:
    model = Segmenter.from_checkpoint(model_path)
    if not (model.size_model or model.coarse_sizing):
        from napari_nanogan.segmentation.sizing import CoarseSizing

        model.coarse_sizing = CoarseSizing()
    pairs = [(s.labels, segment(s.image, model, diameter="auto", info_bar=None).labels) for s in test]
    s = summarize(pairs)
    truth = np.concatenate([equivalent_diameters(t, min_area=16, whole_only=True) for t, _ in pairs])
    pred = np.concatenate([equivalent_diameters(p, min_area=16, whole_only=True) for _, p in pairs])
    return {"dice": round(s["dice"], 4), "f1": round(s["f1"], 4), "pq": round(panoptic_quality(pairs), 4),
            "d50_error": round(float(np.median(pred) / np.median(truth) - 1), 4),
            "precision": round(s["precision"], 4), "recall": round(s["recall"], 4)}


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.tstr")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default", help="the generator")
    ap.add_argument("--n", type=int, default=3, help="synthetic images per mask")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--init", default="default", help="the segmenter the recipe starts from, or none")
    ap.add_argument("--steps", type=int, default=PAIRS_RECIPE.steps)
    ap.add_argument("--arms", default="real,synthetic,both")
    args = ap.parse_args()
    out = Path(args.out)
    splits = shared_splits(args.data_root)
    train = load_samples(splits["bam"]["train"], domain="bam")
    test = load_samples(splits["bam"]["test"], domain="bam")
    real_dir, syn_dir = out / "real", out / "synthetic"
    if not (real_dir / "manifest.json").is_file():
        export_pairs([Pair(s.name, np.asarray(s.image), s.labels, source="BAM training field") for s in train],
                     real_dir, overwrite=True)
    if not (syn_dir / "manifest.json").is_file():
        generator = load_generator(args.model)
        masks = [(s.name, s.labels, None, "BAM training mask") for s in train]
        export_pairs(list(synthetic_pairs(masks, generator, n=args.n, seed=0, model=args.model)), syn_dir,
                     overwrite=True)
    folders = {"real": [real_dir], "synthetic": [syn_dir], "both": [real_dir, syn_dir]}
    init = None if args.init.lower() == "none" else args.init
    runs = {}
    for arm in args.arms.split(","):
        for seed in (int(v) for v in args.seeds.split(",")):
            model = out / f"{arm}-seed{seed}.pt"
            if not model.is_file():
                config = dataclasses.replace(PAIRS_RECIPE, steps=args.steps, seed=seed)
                for _ in train_on_pairs(folders[arm], model, config=config, init=init):
                    pass
            runs.setdefault(arm, []).append(score(model, test))
            print(json.dumps({"arm": arm, "seed": seed, **runs[arm][-1]}), flush=True)
    summary = {}
    for arm, scores in runs.items():
        summary[arm] = {k: {"mean": round(float(np.mean([s[k] for s in scores])), 4),
                            "sd": round(float(np.std([s[k] for s in scores])), 4)} for k in scores[0]}
    if "real" in summary:
        for arm in summary:
            summary[arm]["ratio_to_real"] = {k: round(summary[arm][k]["mean"] / summary["real"][k]["mean"], 4)
                                             for k in ("dice", "f1", "pq")}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"generator": args.model, "n": args.n, "init": args.init, "steps": args.steps,
                      "seeds": args.seeds, "test": "BAM test fields", "arms": summary, "commit": commit}))


if __name__ == "__main__":
    main()
