"""Fine-tuning measured on a domain the shipped models never trained on; prints JSON.

    python -m bench.finetune_domain [--doi 10.1016.j.snb.2019.127107] [--train 2] [--preset quick] [--base auto]
    python -m bench.finetune_domain --bam --base runs/lofo/best.pt   # BAM fields, for a base that never saw them

A "domain" is one source paper of EMPS (``metadata.csv``: same DOI = same instrument,
material and imaging conditions); the default is the test-split paper with the most
images, so none of its images trained the shipped segmenters. The first ``--train``
images (sorted by name) are the user's annotations; ``nanogan finetune``'s code path
(``training.finetune``) runs from ``--base`` (what the user segments with); the *other*
images of that paper are segmented as ``nanogan segment`` does (the particle diameter
estimated) with the base model before and the fine-tuned model after. For a diagnosis,
both are also scored at the annotated diameter (``*_at_annotated_diameter``), and the
diameter estimates are compared with the annotations (``diameter_ratio``: estimate /
annotated median, per scored image).

``--bam`` takes the first ``--train`` BAM training fields as the annotations and scores
the BAM test fields instead: a new domain for a ``--base`` trained without BAM-like
images (``python -m bench.leave_family_out --family bright`` trains one).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import time
from pathlib import Path


from napari_nanogan.data.datasets import load_sample, load_samples, shared_splits
from napari_nanogan.measure import median_diameter
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.models.checkpoint import load_checkpoint
from napari_nanogan.segmentation import can_estimate_diameter, load_segmenter, segment
from napari_nanogan.segmentation.sizing import estimate_diameter
from napari_nanogan.training.finetune import finetune


def scores(model, samples, at_annotated: bool = False) -> dict:
    pairs = []
    for s in samples:
        diameter = median_diameter(s.labels) if at_annotated else ("auto" if can_estimate_diameter(model) else None)
        pairs.append((s.labels, segment(s.image, model, info_bar=None, diameter=diameter).labels))
    out = summarize(pairs)
    out["f1_per_image"] = [round(2 * p["tp"] / max(2 * p["tp"] + p["fp"] + p["fn"], 1), 4) for p in out.pop("per_image")]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def diameter_ratios(model, samples) -> list[float] | None:
    if not can_estimate_diameter(model):
        return None
    return [round(estimate_diameter(s.image, model) / median_diameter(s.labels), 3) for s in samples]


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.finetune_domain")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--doi", default="10.1016.j.snb.2019.127107")
    ap.add_argument("--train", type=int, default=2)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--base", default="auto", help="the model fine-tuning starts from (what the user segments with)")
    ap.add_argument("--bam", action="store_true", help="BAM training fields as annotations, BAM test fields scored")
    args = ap.parse_args()
    if args.bam:
        splits = shared_splits(args.data_root)
        train = load_samples(splits["bam"]["train"][: args.train], domain="user")
        held = load_samples(splits["bam"]["test"], domain="user")
        args.doi = None
    else:
        root = Path(args.data_root) / "emps"
        stems = sorted(r["filename"][:-4] for r in csv.DictReader(open(root / "metadata.csv")) if r["doi"] == args.doi)
        if len(stems) <= args.train:
            raise SystemExit(f"{args.doi}: {len(stems)} images, need more than --train {args.train}")
        samples = [load_sample(root / "images" / f"{s}.png", root / "masks" / f"{s}.png", domain="user",
                               crop_info_bar=False) for s in stems]
        train, held = samples[: args.train], samples[args.train :]
    base = load_segmenter(args.base)
    before = {"scores": scores(base, held), "at_annotated_diameter": scores(base, held, at_annotated=True),
              "diameter_ratio": diameter_ratios(base, held)}
    out_path = Path(tempfile.mkdtemp()) / "finetuned.pt"
    t0 = time.perf_counter()
    loop = finetune(train, out_path=out_path, preset=args.preset, base_segmenter=args.base)
    while True:
        try:
            next(loop)
        except StopIteration as done:
            result = done.value
            break
    wall = time.perf_counter() - t0
    tuned = load_segmenter(out_path)
    after = {"scores": scores(tuned, held), "at_annotated_diameter": scores(tuned, held, at_annotated=True),
             "diameter_ratio": diameter_ratios(tuned, held)}
    print(json.dumps({
        "doi": args.doi, "base": args.base, "train_images": [s.name for s in train],
        "scored_images": [s.name for s in held],
        "annotated_diameters_px": [round(float(median_diameter(s.labels)), 1) for s in train + held],
        "size_calibration": load_checkpoint(out_path)["card"].get("size_calibration"),
        "preset": args.preset, "steps": result.steps, "wall_seconds": round(wall, 1),
        "before": before, "after": after, "gain_f1": round(after["scores"]["f1"] - before["scores"]["f1"], 4),
        "held_out_rows_before": result.before, "held_out_rows_after": result.after, "better": result.better,
        "warnings": result.warnings,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}))


if __name__ == "__main__":
    main()
