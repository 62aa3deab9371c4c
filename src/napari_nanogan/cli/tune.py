"""``nanogan tune``, ``tune-generator`` and ``fit-size``: tuning trained models, never their weights."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from ..config import GENERATOR_DATASETS
from .common import command_line, progress_bar
from .values import count_value


def postprocess_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` for ``nanogan tune --set``: a post-processing field and a value of its type."""
    import dataclasses

    from ..config import PostprocessConfig

    key, sep, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(PostprocessConfig)}
    if not sep or key not in fields:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY one of {', '.join(fields)}, not {text!r}")
    kind = type(getattr(PostprocessConfig(), key))
    try:
        parsed = value if kind not in (int, float) else kind(value)
        PostprocessConfig(**{key: parsed})
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a valid value ({exc})") from None
    if kind in (int, float) and not (math.isfinite(parsed) and parsed >= 0):
        raise argparse.ArgumentTypeError(f"{key}: expected a finite number >= 0, not {value!r}")
    if key in ("fg_threshold", "seed_threshold", "merge_depth", "merge_interior", "min_confidence") and parsed > 1:
        raise argparse.ArgumentTypeError(f"{key}: a probability level, within 0..1, not {value!r}")
    return key, parsed


def cmd_tune(args) -> int:
    """Pick post-processing parameters on the validation split and store them in a copy of the checkpoint."""
    from ..data.datasets import load_samples, shared_splits
    from ..segmentation import Segmenter
    from ..training import tuning
    from ..training.amend import with_postprocess
    from ..training.data import at_model_scale

    splits = shared_splits(args.data_root)
    samples = []
    for key in [d for d in args.datasets.split(",") if d]:
        samples += load_samples(splits[key]["val"], domain=key)
    if args.at_model_scale:
        samples = [at_model_scale(v) for v in samples]
    segmenter = Segmenter.from_checkpoint(args.model)
    bar = None

    def progress(done: int, total: int) -> None:  # network passes, then one tick per candidate
        nonlocal bar
        bar = bar or progress_bar(total, "tune (network passes, then post-processing candidates)")
        bar.update(done - bar.n)

    config, info = tuning.tune_postprocess(segmenter, samples, size_weight=args.size_weight,
                                           size_quantiles=args.size_quantiles, progress=progress, workers=args.workers,
                                           # (min_confidence belongs to the confidence model: fit-confidence sets it)
                                           fixed={"min_confidence": float(segmenter.postprocess.min_confidence),
                                                  **dict(args.set or [])})
    if bar is not None:
        bar.close()
    with_postprocess(args.model, args.out, config, dict(info, split="val", at_model_scale=bool(args.at_model_scale),
                                                        command=command_line()))
    print(json.dumps({"postprocess": config.to_dict(), **info}))
    return 0



def cmd_tune_generator(args) -> int:
    """Measure the real images' noise level (and grey levels) and store them as the generator's finishing."""
    from ..config import ModelKind
    from ..io.images import ImageReadError, list_images, read_image
    from ..io.infobar import detect_info_bar
    from ..models.registry import resolve_model
    from ..synthesis import Generator
    from ..training.amend import fit_finishing, with_finishing
    from ..synthesis.finishing import noise_level
    from ..training.data import generator_samples

    fail = lambda message: print(f"nanogan tune-generator: {message}", file=sys.stderr) or 2  # noqa: E731
    if args.texture_margin is not None and args.texture_margin < 0:  # before any slow calibration
        return fail("--texture-margin must be >= 0")
    if not args.blur >= 0:
        return fail("--blur must be a non-negative number of pixels")
    if args.particle_spread is not None and not (math.isfinite(args.particle_spread) and args.particle_spread >= 0):
        return fail("--particle-spread must be a finite number >= 0")
    _, folder, description = GENERATOR_DATASETS[args.dataset]
    if args.images:
        real = []
        for path in list_images([args.images]):
            try:
                image, _ = read_image(path)
            except (ImageReadError, ValueError, OSError) as exc:
                print(f"nanogan tune-generator: skipping {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
                continue
            if image.ndim != 2:
                print(f"nanogan tune-generator: skipping {path}: not a 2D grey image", file=sys.stderr)
                continue
            bar = detect_info_bar(image)
            real.append(image[bar.specimen_rows] if bar else image)
        source = f"images in {args.images}"
    else:
        samples = generator_samples(args.data_root, args.dataset)
        if samples is None:
            return fail(f"no {folder}/ under {args.data_root}; give --images")
        real = [s.image for s in samples]
        source = description
    if not real:
        return fail("no readable images")
    path = resolve_model(args.model, kind=ModelKind.GENERATOR)
    pairs, calibrated_on, generator, bar = None, None, None, None
    if args.calibrate:
        samples = generator_samples(args.data_root, args.dataset)
        if samples is None:
            return fail(f"--calibrate needs annotated images: no {folder}/ under {args.data_root}")
        generator = Generator.from_checkpoint(path)
        pairs = [(s.image, s.labels) for s in samples]
        calibrated_on = f"{description}: {len(samples)} images vs their masks synthesized (seeds 100000+)"
        bar = progress_bar(len(pairs), "calibration (synthesizing the training masks)")
    spread, held_finishing = args.particle_spread, None
    if not args.calibrate:  # nothing annotated to fit on: the checkpoint's grey levels and spread stay
        import dataclasses

        from ..config import Finishing
        from ..models.checkpoint import load_checkpoint

        held = load_checkpoint(path, kind=ModelKind.GENERATOR)
        held_finishing = Finishing.from_dict(held.get("postprocess") or {})
        spread = held_finishing.particle_spread if spread is None else spread
        before = (held.get("provenance") or {}).get("postprocess_tuning") or {}
        if before.get("calibration"):  # where the kept gain and offset were fitted
            calibrated_on = f"kept from the checkpoint: {before['calibration']}"
        if args.blur != held_finishing.blur_sigma and (held_finishing.gain, held_finishing.offset) != (1.0, 0.0):
            print(f"nanogan tune-generator: the kept gain and offset were fitted with a blur of "
                  f"{held_finishing.blur_sigma:g} px, not {args.blur:g}: add --calibrate to fit them again",
                  file=sys.stderr)
    finishing = fit_finishing(real, blur=args.blur, generator=generator, pairs=pairs, particle_spread=spread,
                              progress=(lambda d, t: bar.update(d - bar.n)) if bar else None)
    if held_finishing is not None:
        finishing = dataclasses.replace(finishing, gain=held_finishing.gain, offset=held_finishing.offset)
    if bar is not None:
        bar.close()
    levels = [noise_level(im) for im in real]
    try:
        held = with_finishing(path, args.out, finishing, texture=args.texture, particle_texture=args.particle_texture,
                              texture_margin=args.texture_margin,
                              tuning={"source": source, "images": len(real), "noise_levels": [round(v, 3) for v in levels],
                                      "calibration": calibrated_on, "command": command_line()})
    except ValueError as exc:
        return fail(str(exc))
    print(json.dumps({**held, "images": len(real)}))
    return 0

def cmd_fit_size(args) -> int:
    """Fit the size model behind ``--diameter auto`` and store it in a copy of the checkpoint."""
    import numpy as np

    from ..data.datasets import load_samples, shared_splits
    from ..models.registry import resolve_model
    from ..segmentation import Segmenter
    from ..training.amend import with_size_model
    from ..training.sizing import fit_size_model, sample_features, size_errors

    splits = shared_splits(args.data_root)
    wanted = [d for d in args.datasets.split(",") if d]
    missing = [d for d in wanted if d not in splits]
    if missing or not wanted:
        print(f"nanogan fit-size: data set(s) {', '.join(missing) or '(none)'} not found under {args.data_root}",
              file=sys.stderr)
        return 2
    path = resolve_model(args.model)
    segmenter = Segmenter.from_checkpoint(path)
    if args.method == "coarse":
        return _fit_coarse(args, path, segmenter, splits, wanted)
    parts = {}
    for part, seed in (("train", 0), ("val", 1)):
        samples = [s for key in wanted for s in load_samples(splits[key][part], domain=key)]
        bar = progress_bar(len(samples), f"size features ({part})")

        def advance(done, total, bar=bar):
            bar.total = total
            bar.update(done - bar.n)
        parts[part] = sample_features(segmenter, samples, progress=advance, shrunk=not args.no_shrunk, seed=seed)
        bar.close()
    x, d, domains, groups = parts["train"]
    model = fit_size_model(x, d, domains, groups=groups)
    x, d, domains, _ = parts["val"]
    predicted = np.array([model.predict(f) for f in x])
    domains = np.asarray(domains)
    model.metrics["val"] = {k: size_errors(predicted[domains == k], d[domains == k])
                            for k in np.unique(domains).tolist()}
    with_size_model(path, args.out, model, {"data": {k: "train split (fit), val split (metrics)" for k in wanted},
                                            "command": command_line(), "metrics": model.metrics})
    print(json.dumps(model.metrics))
    return 0


def _fit_coarse(args, path, segmenter, splits, wanted) -> int:
    """``fit-size --method coarse``: the network's own coarse-scale estimate, checked on the validation split."""
    import dataclasses

    import numpy as np

    from ..config import ModelKind
    from ..data.datasets import load_samples
    from ..measure import median_diameter
    from ..segmentation.sizing import CoarseSizing, coarse_diameter
    from ..training.amend import SIZER_KEYS, amend_checkpoint
    from ..training.sizing import size_errors

    sizing = CoarseSizing(shrink_above=args.shrink_above)
    metrics = {}
    for key in wanted:
        samples = load_samples(splits[key]["val"], domain=key)
        bar = progress_bar(len(samples), f"coarse estimates ({key} val)")
        pairs = []
        for s in samples:
            truth = median_diameter(s.labels)
            if np.isfinite(truth):
                pairs.append((coarse_diameter(s.image, segmenter, sizing=sizing), truth))
            bar.update(1)
        bar.close()
        found = [(e, t) for e, t in pairs if e is not None]
        metrics[key] = {"images": len(pairs), "estimated": len(found),
                        "none_median_truth_px": round(float(np.median([t for e, t in pairs if e is None])), 2)
                        if len(found) < len(pairs) else None,
                        **({"estimates": size_errors(*np.array(found).T)} if found else {})}
    amend_checkpoint(path, args.out, kind=ModelKind.SEGMENTER, remove=("size_model", *SIZER_KEYS),
                     changes={"coarse_sizing": sizing.to_dict()},
                     provenance={"size_model": {"method": "coarse", **dataclasses.asdict(sizing),
                                                "val": metrics, "command": command_line()}})
    print(json.dumps(metrics))
    return 0


def cmd_fit_confidence(args) -> int:
    """Fit the per-particle confidence on the validation split and store it in a copy of the checkpoint."""
    from ..data.datasets import load_samples, shared_splits
    from ..models.registry import resolve_model
    from ..segmentation import Segmenter, can_estimate_diameter
    import dataclasses

    import numpy as np

    from ..segmentation.confidence import FEATURES, FIT_FEATURES
    from ..training import confidence
    from ..training.amend import with_confidence_model

    splits = shared_splits(args.data_root)
    wanted = [d for d in args.datasets.split(",") if d]
    missing = [d for d in wanted if d not in splits]
    if missing or not wanted:
        print(f"nanogan fit-confidence: data set(s) {', '.join(missing) or '(none)'} not found under {args.data_root}",
              file=sys.stderr)
        return 2
    path = resolve_model(args.model)
    segmenter = Segmenter.from_checkpoint(path)
    samples = [s for key in wanted for s in load_samples(splits[key]["val"], domain=key)]
    diameter = "auto" if can_estimate_diameter(segmenter) else None
    bar = progress_bar(len(samples), "segmenting the validation images")
    x, y, images, annotated = confidence.sample_examples(segmenter, samples, diameter=diameter,
                                                         progress=lambda d, t: bar.update(d - bar.n))
    bar.close()
    # --shape: the final particles' model learns from every particle of the pass, and is scored and thresholded
    # on those the passes' confidence keeps (the ones it will judge), beside the maps alone fitted the same way
    kept = confidence.kept_by(segmenter, x) if args.shape else np.ones(len(y), bool)
    try:
        model, held = confidence.fit_confidence(x, y, images, names=FEATURES if args.shape else FIT_FEATURES,
                                                scored=kept)
        if args.shape:
            maps_only = confidence.fit_confidence(x, y, images, names=FIT_FEATURES, scored=kept)[0]
            model.metrics["maps_only_cross_validated"] = maps_only.metrics["cross_validated"]
    except ValueError as exc:
        print(f"nanogan fit-confidence: {exc}", file=sys.stderr)
        return 2
    threshold, f1 = confidence.choose_min_confidence(held[kept], y[kept], np.exp(x[kept, 4]), annotated)
    model.metrics.update(fitted_particles=int(len(y)), min_confidence=threshold, f1_by_min_confidence=f1)
    fitting = {"data": {k: "val split" for k in wanted}, "diameter": diameter, "command": command_line(),
               "metrics": model.metrics}
    if args.shape:
        with_confidence_model(path, args.out, model, fitting, final=True)
    else:
        if segmenter.final_confidence_model is not None:
            print("note: the final particles' confidence model was fitted on the particles the old passes' model "
                  "kept, so it is left out; fit it again with `nanogan fit-confidence --shape`", file=sys.stderr)
        with_confidence_model(path, args.out, model, fitting,
                              postprocess=dataclasses.replace(segmenter.postprocess, min_confidence=threshold))
    print(json.dumps(model.metrics))
    return 0


def size_quantiles(text: str) -> tuple[int, ...]:
    """``--size-quantiles``: comma-separated whole percentiles in 1-99."""
    import argparse

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(1 <= v <= 99 for v in values):
        raise argparse.ArgumentTypeError(f"expected whole percentiles in 1-99 separated by commas (e.g. 10,50,90), "
                                         f"not {text!r}")
    return values


def add_commands(sub) -> None:
    p = sub.add_parser("tune", help="choose post-processing parameters on the validation split")
    p.add_argument("--model", required=True, help="segmenter checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, tuned post-processing)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding the shared data sets (bam_tio2_sem/, emps/)")
    p.add_argument("--datasets", default="bam,emps", help="comma-separated: bam, emps")
    p.add_argument("--size-weight", type=float, default=0.0,
                   help="also penalise the relative size errors of whole particles, with this weight "
                        "(score: (IoU + F1) / 2 - weight x mean |D_q error| over --size-quantiles; default 0)")
    p.add_argument("--size-quantiles", type=size_quantiles, default=(50,), metavar="Q[,Q...]",
                   help="the diameter percentiles --size-weight penalises (default 50: D50; 10,50,90 for the "
                        "distribution users publish)")
    p.add_argument("--at-model-scale", action="store_true",
                   help="tune on the validation images shrunk to the model's particle diameter (24 px), as the "
                        "network was trained with `nanogan train --at-model-scale`")
    p.add_argument("--set", action="append", type=postprocess_setting, metavar="KEY=VALUE",
                   help="a post-processing value to keep as given, not search (repeatable), e.g. merge_interior=0.5: "
                        "for what the validation images cannot judge (they hold no rods)")
    p.add_argument("--workers", type=count_value, default=max(1, min(4, os.cpu_count() or 1)),
                   help="processes that score the post-processing candidates (default: the CPU cores, at most 4)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("tune-generator", help="post-processing of synthetic images: mild blur, then noise as in real images")
    p.add_argument("--model", required=True, help="generator name or checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, with the noise level)")
    p.add_argument("--images", default=None, help="folder of real images (default: the --dataset training split)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding the shared data sets (bam_tio2_sem/, emps/)")
    p.add_argument("--dataset", default="bam", choices=list(GENERATOR_DATASETS),
                   help="the generator's training data under --data-root, for the noise level and the "
                        "calibration: BAM TiO2 SEM (default) or EMPS bright-field TEM (as in train-gan)")
    p.add_argument("--blur", type=float, default=0.7, metavar="SIGMA",
                   help="Gaussian blur (px) before the noise (default 0.7, the best of 0.5-1.4 by BAM FID)")
    p.add_argument("--calibrate", action="store_true",
                   help="also fit a grey-level gain and offset that give synthetic images of the training masks the "
                        "real training images' mean and spread, and the particle-to-particle contrast spread "
                        "(needs the --dataset training split under --data-root; without it the checkpoint's gain, "
                        "offset and spread stay)")
    p.add_argument("--particle-spread", type=float, default=None, metavar="LOG_SD",
                   help="log-SD of each particle's contrast factor (real SEM particles of one field differ in "
                        "brightness); default: fitted with --calibrate (BAM: 0.40), else the checkpoint's; "
                        "0 varies nothing")
    p.add_argument("--texture", default=None, metavar="TEXTURE_PT",
                   help="a substrate texture from `nanogan train-texture` to lay over the synthetic substrate "
                        "('none' removes one; default: keep what the checkpoint has)")
    p.add_argument("--particle-texture", default=None, metavar="TEXTURE_PT",
                   help="a particle texture from `nanogan train-texture --region particles` to lay over the synthetic "
                        "particles ('none' removes one; default: keep what the checkpoint has)")
    p.add_argument("--texture-margin", type=int, default=None, metavar="PX",
                   help="lay the texture up to this many pixels from the particles (default: the texture's own, "
                        "3 as trained; the shipped generator uses 1: measured with its substrate texture alone, BAM FID "
                        "77.5 at 3, 71.4 at 1, 68.1 at 0, where the segmented synthetic particles shrink by 10 %%)")
    p.set_defaults(func=cmd_tune_generator)

    p = sub.add_parser("fit-size", help="fit the size model behind --diameter auto on the training split")
    p.add_argument("--model", required=True, help="segmenter name or checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, with the size model)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding the shared data sets (bam_tio2_sem/, emps/)")
    p.add_argument("--datasets", default="bam,emps", help="comma-separated: bam, emps")
    p.add_argument("--method", default="knn", choices=["knn", "coarse"],
                   help="knn: a nearest-neighbour model on the network's outputs at four scales, fitted on the "
                        "training split (default); coarse: the network's own estimate at a quarter of the size, "
                        "checked on the validation split")
    p.add_argument("--no-shrunk", action="store_true",
                   help="knn: leave out the shrunk copies of the annotated images (size references for particles of "
                        "4-11 px, which few annotated images show) from the fit and the val metrics")
    p.add_argument("--shrink-above", type=float, default=48.0, metavar="PX",
                   help="coarse: images whose estimate is at least this (px) are made smaller for the network")
    p.set_defaults(func=cmd_fit_size)

    p = sub.add_parser("fit-confidence", help="fit the per-particle confidence (probability that a particle is real)")
    p.add_argument("--model", required=True, help="segmenter name or checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, with the confidence model)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding the shared data sets (bam_tio2_sem/, emps/)")
    p.add_argument("--datasets", default="bam,emps", help="comma-separated: bam, emps")
    p.add_argument("--shape", action="store_true",
                   help="fit a second model, on the network's maps and each particle's solidity (area over its "
                        "convex hull's: low for shards, crescents and merged pairs), that gives the final particles "
                        "the confidence reported; it drops particles only under a threshold that lifts val F1 by "
                        "0.005 or more; the passes' model, and the scale and polarity checks, stay as they are")
    p.set_defaults(func=cmd_fit_confidence)
