"""Leave one family out: train without a whole family of images, then score that family; prints JSON.

    python -m bench.leave_family_out --out runs/lofo [--family bright] [--steps 5000] [--randomized 0.5]
    python -m bench.leave_family_out --out runs/lofo --evaluate-only      # score an existing runs/lofo/best.pt
    python -m bench.leave_family_out --out runs/lofo --evaluate-only --invert   # its held-out images inverted
    python -m bench.leave_family_out --out runs/lofo-flip --steps 2000 --train-invert 0.5   # polarity-flip training

The family held out is every image whose particles are brighter than their background
(``--family bright``: secondary-electron SEM and dark-field / HAADF STEM: all of BAM and
the EMPS images of that kind) or darker (``--family dark``: bright-field TEM). The
segmenter trains on the rest of the training split (by source paper, as everywhere),
with domain-randomised pairs (``--randomized``, which draw every style, the held-out one
included: that is what they are for), the recipe of the shipped generalist otherwise
(depth 5, 16 channels, at the model's scale, contact weight 5), validated on the
validation images of the families it trains on; its post-processing is the training
default (not tuned) and it estimates diameters at a coarse scale. It is then scored with
``diameter="auto"`` on the held-out family's validation and test images, beside a
reference model (``--reference``, default: the shipped ``default``) on the same images.
``--fit-size`` fits a size model on the run's training images (``nanogan fit-size``'s
method, shrunk copies included) and estimates the held-out diameters with it, as the
shipped models estimate; the estimate's error on the held-out images is reported.
``--truth-diameter`` segments each held-out image at its annotated median particle
diameter instead of the estimate: how much of the gap is the size estimate's.
``--invert`` scores both on the held-out images with their grey levels inverted (bright
particles made dark): does the held-out family fail for its polarity or for its look?
``--train-invert P`` trains with the polarity-flip augmentation (``nanogan train --invert``):
each patch's grey levels mirrored with chance P, so the images kept teach both polarities.
``--no-scale-check`` keeps the scale of each estimate (``segment(..., scale_check=False)``);
``--no-polarity-check`` each image's own grey levels (``segment(..., polarity_check=False)``).
``--randomized-sizes model`` draws the randomised pairs at the sizes of images resized for an
estimate (median diameters 8-26 px), ``train`` as ``nanogan train --randomized
--at-model-scale`` does (8-72 px), the default ``wide`` at 4-90 px.
``--train-style P`` draws patches in other imaging styles (``nanogan train --style``:
edge brightening or fringes, shading, uneven illumination, a grainy matrix) with chance P.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.config import SegmenterConfig, TrainConfig
from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import Segmenter, load_segmenter, segment
from napari_nanogan.training.data import at_model_scale, particle_contrast


def family_of(sample) -> str | None:
    """"bright" or "dark" particles (a contrast of at least 0.1 of the intensity range), else None."""
    c = particle_contrast(sample)
    if not np.isfinite(c) or abs(c) < 0.1:
        return None
    return "dark" if c > 0 else "bright"


def inverted(sample):
    """The sample with its grey levels mirrored within their range (particles change polarity)."""
    import dataclasses

    from bench.evaluate import inverted as mirrored

    return dataclasses.replace(sample, image=mirrored(sample.image))


def score(model, samples, diameter="auto", scale_check: bool = True, polarity_check: bool = True) -> dict:
    """Pooled scores of ``model`` on ``samples``; ``diameter="truth"``: each image's annotated median diameter."""
    from napari_nanogan.measure import median_diameter

    def annotated(s):  # an image without annotated particles: its own scale
        d = median_diameter(s.labels)
        return d if np.isfinite(d) else None

    pairs = [(s.labels, segment(s.image, model, info_bar=None,
                                diameter=annotated(s) if diameter == "truth" else diameter, scale_check=scale_check,
                                polarity_check=polarity_check).labels)
             for s in samples]
    out = summarize(pairs)
    out.pop("per_image")
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.leave_family_out")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", required=True, help="run folder (best.pt, last.pt); resumes")
    ap.add_argument("--family", default="bright", choices=["bright", "dark"])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--randomized", type=float, default=0.5)
    ap.add_argument("--reference", default="default", help="model scored beside it on the held-out family")
    ap.add_argument("--evaluate-only", action="store_true")
    ap.add_argument("--invert", action="store_true", help="score on the held-out images inverted")
    ap.add_argument("--no-scale-check", action="store_true",
                    help="segment(..., scale_check=False): keep the scale of each estimate")
    ap.add_argument("--no-polarity-check", action="store_true",
                    help="segment(..., polarity_check=False): keep each image's own grey levels")
    ap.add_argument("--fit-size", action="store_true",
                    help="estimate diameters with a size model fitted on the run's own training images (as `nanogan "
                         "fit-size` fits the shipped ones), not the coarse estimate")
    ap.add_argument("--truth-diameter", action="store_true",
                    help="segment each held-out image at its annotated median particle diameter, not the estimate")
    ap.add_argument("--train-invert", type=float, default=0.0, metavar="P",
                    help="mirror each training patch's grey levels with this chance (default 0)")
    ap.add_argument("--randomized-sizes", choices=("wide", "model", "train"), default="wide",
                    help="the randomised pairs' median particle diameters: 4-90 px (wide, the default, as the "
                         "earlier runs drew them), 8-26 px (model: those of images resized for an estimate) or "
                         "8-72 px (train: as `nanogan train --randomized --at-model-scale` draws them)")
    ap.add_argument("--train-style", type=float, default=0.0, metavar="P",
                    help="draw each training patch in another imaging style with this chance (default 0)")
    args = ap.parse_args()
    if not (0 <= args.train_invert <= 1 and 0 <= args.train_style <= 1):
        ap.error("--train-invert and --train-style are probabilities, within 0..1")

    from napari_nanogan.data.randomized import RandomizedSource
    from napari_nanogan.training.segmenter import train_segmenter

    splits = shared_splits(args.data_root)
    parts = {part: load_samples(splits["emps"][part], domain="emps") for part in ("train", "val", "test")}
    bam = {part: load_samples(splits["bam"][part], domain="bam") for part in ("train", "val", "test")}
    keep = {part: [s for s in parts[part] if family_of(s) not in (None, args.family)] for part in parts}
    held = {part: [s for s in parts[part] if family_of(s) == args.family] + (bam[part] if args.family == "bright" else [])
            for part in ("val", "test")}
    train = {"emps": [at_model_scale(s) for s in keep["train"]]}
    if args.family != "bright":
        train["bam"] = [at_model_scale(s) for s in bam["train"]]
    val = [at_model_scale(s) for s in keep["val"]] + ([at_model_scale(s) for s in bam["val"]] if "bam" in train else [])
    real = list(train)
    train["randomized"] = {"wide": RandomizedSource(), "model": RandomizedSource.at_model_scale(1.1),
                           "train": RandomizedSource.at_model_scale()}[args.randomized_sizes]
    weights = {k: (1 - args.randomized) / len(real) for k in real} | {"randomized": args.randomized}
    out = Path(args.out)
    if not args.evaluate_only:
        config = TrainConfig(steps=args.steps, val_every=500, lr=1e-3, contact_weight=5.0, scale_range=(0.6, 1.6),
                             invert_prob=args.train_invert, style_prob=args.train_style)
        for record in train_segmenter(train, val, out_dir=out, config=config,
                                      model_config=SegmenterConfig(base_channels=16, depth=5),
                                      domain_weights=weights,
                                      provenance={"held_out_family": args.family, "randomized_share": args.randomized,
                                                  "randomized_sizes": args.randomized_sizes,
                                                  "command": "python -m bench.leave_family_out"}):
            if record.validation:
                print(f"step {record.step}: validation score {record.validation['score']:.4f}", flush=True)
    model = Segmenter.from_checkpoint(out / "best.pt", name="leave-family-out")
    if args.fit_size:  # the shipped models' path: a size model of the images trained on, shrunk copies too
        from napari_nanogan.training.sizing import fit_size_model, sample_features, size_errors

        trained_on = keep["train"] + (bam["train"] if "bam" in train else [])
        x, d, domains, groups = sample_features(model, trained_on, shrunk=True)
        model.size_model = fit_size_model(x, d, domains, groups=groups)
    if not (model.size_model or model.coarse_sizing):  # the diameter as the generalist estimates it
        from napari_nanogan.segmentation.sizing import CoarseSizing

        model.coarse_sizing = CoarseSizing()
    reference = load_segmenter(args.reference)
    from napari_nanogan.models.checkpoint import load_checkpoint

    # what the run was, not this command's defaults (last.pt, else best.pt's own record)
    trained = load_checkpoint(out / "last.pt" if (out / "last.pt").is_file() else out / "best.pt")
    recipe = trained["provenance"].get("train_config", {})
    result = {"family_held_out": args.family, "trained_on": {k: len(v) for k, v in train.items() if k != "randomized"},
              "randomized_share": trained["provenance"].get("randomized_share", args.randomized), "steps": trained.get("training", {}).get("step", recipe.get("steps", args.steps)),
              "train_invert": recipe.get("invert_prob", 0.0), "train_style": recipe.get("style_prob", 0.0),
              "best_step": load_checkpoint(out / "best.pt")["provenance"].get("step")}
    if args.invert:
        held = {part: [inverted(s) for s in samples] for part, samples in held.items()}
        result["held_out_images"] = "inverted"
    for part, samples in held.items():
        diameter = "truth" if args.truth_diameter else "auto"
        checks = (not args.no_scale_check, not args.no_polarity_check)
        result[part] = {"images": len(samples), "held_out_model": score(model, samples, diameter, *checks),
                        f"reference ({args.reference})": score(reference, samples, diameter, *checks)}
    result["scale_check"], result["polarity_check"] = not args.no_scale_check, not args.no_polarity_check
    result["diameter"] = "annotated median" if args.truth_diameter else (
        "size model of the training images" if args.fit_size else "estimated coarsely")
    if args.fit_size:  # on the images scored (inverted with --invert)
        held_x, held_d, _, _ = sample_features(model, held["test"] + held["val"])
        result["size_model_error_on_held_out"] = size_errors(np.array([model.size_model.predict(f) for f in held_x]),
                                                              held_d)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
