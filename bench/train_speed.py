"""Seconds per training step of the segmenter, fp32 against bf16 autocast; prints JSON.

    python -m bench.train_speed [--model default] [--steps 30] [--batch-size 4] [--patch-size 256]

``nanogan train --pairs``'s recipe (batches of 4 x 256 px, contact-weighted loss, AdamW),
on pairs made by the package (no data needed), starting from ``--model``: each precision
trains ``--steps`` steps in a fresh run folder, and the median step time after the first
few (warm-up) is reported with the projected time of the default recipe's 1200 steps.
bf16 is reported where this CPU runs it natively; elsewhere autocast emulates it slowly
and ``auto`` picks fp32. The matmul yardstick of ``bench.bench_segment`` (74 GFLOP of fp32
matmul) is measured in the same run, so machines can be compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import tempfile
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    from napari_nanogan.config import ModelKind, SegmenterConfig
    from napari_nanogan.data.datasets import Sample
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.models.registry import resolve_model
    from napari_nanogan.models.runtime import bf16_supported, training_precision
    from napari_nanogan.training.loop import machine_description
    from napari_nanogan.training.pairs import PAIRS_RECIPE
    from napari_nanogan.training.segmenter import train_segmenter

    from bench.bench_segment import matmul_seconds

    ap = argparse.ArgumentParser(prog="python -m bench.train_speed")
    ap.add_argument("--model", default="default", help="the segmenter to start from (its network's shape)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=PAIRS_RECIPE.batch_size)
    ap.add_argument("--patch-size", type=int, default=PAIRS_RECIPE.patch_size)
    args = ap.parse_args(argv)
    path = resolve_model(args.model, kind=ModelKind.SEGMENTER)
    model_config = SegmenterConfig.from_dict(load_checkpoint(path, kind=ModelKind.SEGMENTER)["config"])
    samples = []
    for seed in range(4):
        labels = particle_labels((512, 512), n_particles=120, mean_diameter=24, seed=seed)
        image = render_sem(labels, seed=seed)
        samples.append(Sample(f"p{seed}", image, labels, float(np.percentile(image, 1)),
                              float(np.percentile(image, 99.8)), "pairs"))
    precisions = ["fp32", "bf16"] if bf16_supported() else ["fp32"]
    warmup = min(5, args.steps // 3)
    out = {"model": args.model, "batch": [args.batch_size, args.patch_size], "steps": args.steps,
           "bf16_native": bf16_supported(), "auto_picks": training_precision("cpu"), "seconds_per_step": {}}
    for precision in precisions:
        config = dataclasses.replace(PAIRS_RECIPE, steps=args.steps, batch_size=args.batch_size,
                                     patch_size=args.patch_size, checkpoint_every=10**9, precision=precision)
        with tempfile.TemporaryDirectory() as run:
            stamps = [time.perf_counter()]
            for _ in train_segmenter({"pairs": samples}, [], out_dir=run, config=config, model_config=model_config,
                                     init_from=path, device="cpu"):
                stamps.append(time.perf_counter())
        per_step = float(np.median(np.diff(stamps)[warmup:]))
        out["seconds_per_step"][precision] = round(per_step, 3)
        out[f"recipe_minutes_{precision}"] = round(per_step * PAIRS_RECIPE.steps / 60, 1)
        print(json.dumps({"precision": precision, "seconds_per_step": round(per_step, 3)}), flush=True)
    if "bf16" in out["seconds_per_step"]:
        out["speedup_bf16"] = round(out["seconds_per_step"]["fp32"] / out["seconds_per_step"]["bf16"], 2)
    out["matmul_74gflop_seconds"] = round(matmul_seconds(), 3)
    out["machine"] = machine_description()
    out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
