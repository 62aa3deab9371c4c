"""Small particles: what enlarging the image for a given diameter does; prints JSON.

    python -m bench.small_particles [--model default] [--below 16] [--enlarge 1,2,3,4] [--enlarge-below 12]

The EMPS images (every split) whose annotated median equivalent-circle diameter is under
``--below`` px are segmented with ``--model`` at that annotated diameter (what a user who
types the diameter gets), with the images of particles under ``--enlarge-below`` px
enlarged by at most each ``--enlarge`` factor (1: never enlarged), and with ``diameter="auto"`` for reference (an estimated diameter
under ``config.AUTO_ENLARGE_BELOW`` enlarges too since 4a69663; ``bench/results/small_particles*.json`` predate that). Instance precision, recall and F1 at IoU 0.5 (instances under 16 px
ignored), pooled per split and per image. The training split's images trained the shipped
models; val and test did not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import warnings
from pathlib import Path

from napari_nanogan import config
from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.measure import median_diameter
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment
from napari_nanogan.training.loop import machine_description


def pooled(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    return {"images": len(rows), "tp": tp, "fp": fp, "fn": fn, "precision": round(tp / max(tp + fp, 1), 4),
            "recall": round(tp / max(tp + fn, 1), 4), "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.small_particles", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--below", type=float, default=16.0, help="annotated median diameter (px) under which an image counts")
    ap.add_argument("--enlarge", default="1,2,3,4", help="largest enlargements to compare")
    ap.add_argument("--enlarge-below", type=float, default=config.MODEL_DIAMETER_PX / config.ENLARGE_BELOW,
                    help="diameter (px) under which an image is enlarged (default: the package's)")
    args = ap.parse_args(argv)
    splits = shared_splits(args.data_root)["emps"]
    samples = {part: [s for s in load_samples(splits[part], domain="emps") if median_diameter(s.labels) < args.below]
               for part in ("train", "val", "test")}
    model = load_segmenter(args.model, device="cpu")
    settings = [("auto", None)] + [(f"enlarge_{v}", float(v)) for v in args.enlarge.split(",")]
    kept = config.MAX_ENLARGE, config.ENLARGE_BELOW
    results = {}
    try:
        for name, most in settings:
            config.MAX_ENLARGE = kept[0] if most is None else most
            config.ENLARGE_BELOW = kept[1] if most is None else config.MODEL_DIAMETER_PX / args.enlarge_below
            per_split = {}
            for part, rows in samples.items():
                per_image = []
                for s in rows:
                    truth = median_diameter(s.labels)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        result = segment(s.image, model, info_bar=None, diameter="auto" if most is None else truth)
                    p = summarize([(s.labels, result.labels)])["per_image"][0]
                    per_image.append({"image": s.name, "annotated_px": round(float(truth), 1),
                                      "diameter_px": None if result.diameter_px is None else round(result.diameter_px, 1),
                                      **{k: p[k] for k in ("tp", "fp", "fn")}})
                per_split[part] = {"pooled": pooled(per_image), "per_image": per_image}
            results[name] = per_split
    finally:
        config.MAX_ENLARGE, config.ENLARGE_BELOW = kept
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"model": args.model, "below_px": args.below, "enlarge_below_px": args.enlarge_below, "results": results, "machine": machine_description(),
           "commit": commit}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
