"""Fine-tuning measured on a domain the shipped model handles badly; prints JSON.

    python -m bench.finetune_domain [--doi 10.1016.j.apsusc.2020.145360] [--train 2] [--preset quick] [--own-scale]

A "domain" is one source paper of EMPS (``metadata.csv``: same DOI = same instrument,
material and imaging conditions). The first ``--train`` images (sorted by name) are
the user's annotations; ``nanogan finetune``'s code path (``training.finetune``) runs
with the preset's time budget; segmentation of the *other* images of that paper is
scored with the shipped model before and with the fine-tuned model after, with the
particle diameter estimated (``diameter="auto"``, what the CLI and the Segment panel do),
or at the images' own scale with ``--own-scale``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_nanogan.data.datasets import load_sample
from napari_nanogan.io.images import read_image
from napari_nanogan.io.masks import read_mask
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment
from napari_nanogan.training.finetune import finetune


def scores(model, items, diameter="auto"):
    pairs = []
    for img_path, mask_path in items:
        image, _ = read_image(img_path)
        pairs.append((read_mask(mask_path).astype(np.int64), segment(image, model, diameter=diameter).labels))
    out = summarize(pairs)
    out.pop("per_image")
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.finetune_domain")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--doi", default="10.1016.j.apsusc.2020.145360")
    ap.add_argument("--train", type=int, default=2)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--own-scale", action="store_true", help="score without a particle diameter (the library's default)")
    args = ap.parse_args()
    root = Path(args.data_root) / "emps"
    stems = sorted(r["filename"][:-4] for r in csv.DictReader(open(root / "metadata.csv")) if r["doi"] == args.doi)
    items = [(root / "images" / f"{s}.png", root / "masks" / f"{s}.png") for s in stems]
    train, held = items[: args.train], items[args.train :]
    pairs = [load_sample(i, m, domain="user", crop_info_bar=False) for i, m in train]
    diameter = None if args.own_scale else "auto"
    before = scores(load_segmenter("default"), held, diameter)
    out_path = Path(tempfile.mkdtemp()) / "finetuned.pt"
    t0 = time.perf_counter()
    loop = finetune(pairs, out_path=out_path, preset=args.preset)
    while True:
        try:
            next(loop)
        except StopIteration as done:
            result = done.value
            break
    wall = time.perf_counter() - t0
    after = scores(load_segmenter(out_path), held, diameter)
    print(json.dumps({"doi": args.doi, "train_images": [p.stem for p, _ in train], "scored_images": [p.stem for p, _ in held],
                      "preset": args.preset, "diameter": diameter, "steps": result.steps, "wall_seconds": round(wall, 1),
                      "before": before, "after": after, "held_out_rows_before": result.before, "held_out_rows_after": result.after,
                      "warnings": result.warnings,
                      "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}))


if __name__ == "__main__":
    main()
