"""The ``nanogan`` command line: segment, demo, train, ...

Every subcommand drives the same library functions the napari widgets use. Progress
goes to stderr; results go to files; a failing input gets a one-line reason and a
non-zero exit while the other inputs are still processed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("napari_nanogan")


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------- segment
def cmd_segment(args) -> int:
    from .inference import segment
    from .io.images import ImageReadError, list_images, read_image, write_labels
    from .models.pretrained import load_segmenter
    from .sizing import can_estimate_diameter

    segmenter = load_segmenter(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    paths = list_images(args.inputs)
    if not paths:
        print("nanogan segment: no input images found", file=sys.stderr)
        return 2
    can_estimate = can_estimate_diameter(segmenter)
    estimate = args.diameter == "auto" or (args.diameter is None and args.diameter_nm is None and can_estimate)
    if args.diameter is None and args.diameter_nm is None and not can_estimate:
        print(f"note: model {args.model} has no size model: images are segmented at their own scale "
              "(give --diameter or --diameter-nm for particles much larger than about 24 px)", file=sys.stderr)
    for i, path in enumerate(paths, 1):
        try:
            image, meta = read_image(path)
            diameter = "auto" if estimate else (args.diameter or None)  # 0: the image's own scale
            if args.diameter_nm is not None:
                if not meta["pixel_size_nm"]:
                    raise ValueError(f"{path}: --diameter-nm needs the pixel size, and this file does not give it; "
                                     "use --diameter in pixels")
                diameter = args.diameter_nm / meta["pixel_size_nm"]
            bar = _progress_bar(1, f"[{i}/{len(paths)}] {path.name}")
            result = segment(image, segmenter, tile=args.tile, diameter=diameter,
                             progress=lambda d, t: (setattr(bar, "total", t), bar.update(d - bar.n)))
            bar.close()
            target = write_labels(out / f"{path.stem}_labels.tif", result.labels, pixel_size_nm=meta["pixel_size_nm"])
            n = int(result.labels.max())
            unit = f", pixel size {meta['pixel_size_nm']:g} nm" if meta["pixel_size_nm"] else ""
            if diameter == "auto" and result.diameter_px is not None:
                unit += f", estimated particle diameter {result.diameter_px:.0f} px"
            bar_note = f", info bar rows {result.info_bar.start}-{result.info_bar.stop - 1} excluded" if result.info_bar else ""
            chosen = f", model {result.model}" if result.model != segmenter.name else ""
            print(f"{path}: {n} particles{unit}{bar_note}{chosen} -> {target}", file=sys.stderr)
        except (ImageReadError, ValueError, OSError) as exc:
            failures += 1
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if str(path) not in reason:
                reason = f"{path}: {reason}"
            print(f"error: {reason}", file=sys.stderr)
    return 1 if failures else 0


# ---------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    """The main job on shipped defaults, offline: segment the package's own sample image, and
    synthesize an SEM image from a designed mask and segment it back (when a generator is shipped)."""
    import time

    from .models.pretrained import available_models

    if args.generator is None and "default" in available_models("generator"):
        args.generator = "default"

    import numpy as np
    import tifffile
    from PIL import Image

    from ._atomic import atomic_path
    from .data.procedural import SAMPLE_PIXEL_SIZE_NM, sample_image
    from .inference import segment
    from .io.images import write_labels
    from .metrics.segmentation import summarize
    from .models.pretrained import load_segmenter
    from .sizing import can_estimate_diameter
    from .overlay import overlay

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image, truth = sample_image()
    with atomic_path(out / "sample.tif") as tmp:
        per_cm = 1e7 / SAMPLE_PIXEL_SIZE_NM
        tifffile.imwrite(tmp, image, resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")
    t0 = time.perf_counter()
    segmenter = load_segmenter(args.model)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    # as `nanogan segment` does by default: the particle diameter estimated where the model can
    result = segment(image, segmenter, diameter="auto" if can_estimate_diameter(segmenter) else None)
    t_seg = time.perf_counter() - t0
    labels = result.labels
    write_labels(out / "sample_labels.tif", labels, pixel_size_nm=SAMPLE_PIXEL_SIZE_NM)
    with atomic_path(out / "sample_overlay.png") as tmp:
        Image.fromarray(overlay(image, labels)).save(tmp, format="PNG")
    rows = result.info_bar.specimen_rows if result.info_bar else slice(0, truth.shape[0])
    scores = summarize([(truth, labels[rows])])
    areas = np.bincount(labels.ravel())[1:]
    ecd = np.sqrt(4 * areas[areas > 0] / np.pi) * SAMPLE_PIXEL_SIZE_NM
    summary = {
        "image": "sample.tif (procedural TiO2-like SEM, made by napari-nanogan)",
        "model": segmenter.name if result.model == segmenter.name else f"{segmenter.name}: {result.model}",
        "particles": int(labels.max()),
        "true_particles": int(truth.max()),
        "pixel_size_nm": SAMPLE_PIXEL_SIZE_NM,
        "info_bar_rows": [result.info_bar.start, result.info_bar.stop - 1] if result.info_bar else None,
        "estimated_particle_diameter_px": None if result.diameter_px is None else round(result.diameter_px, 1),
        "ecd_nm_d50": float(np.median(ecd)) if ecd.size else None,
        "scores_vs_truth": {k: round(v, 4) for k, v in scores.items() if k in ("dice", "iou", "precision", "recall", "f1")},
        "seconds_model_load": round(t_load, 3),
        "seconds_segment": round(t_seg, 3),
    }
    synth_line = None
    if args.generator:
        # the other half of the product: a designed mask -> a synthetic SEM image -> particles again
        from .data.designer import MaskDesign, design_mask
        from .metrics.segmentation import foreground_scores
        from .models.pretrained import load_generator
        from .synthesis import synthesize

        generator = load_generator(args.generator)
        design = MaskDesign(seed=7)
        mask = design_mask(design)
        t0 = time.perf_counter()
        synthetic = synthesize(mask, generator, seed=0)
        t_syn = time.perf_counter() - t0
        synthetic_labels = segment(synthetic, segmenter, info_bar=False).labels
        with atomic_path(out / "synthetic.tif") as tmp:
            tifffile.imwrite(tmp, synthetic)
        write_labels(out / "synthetic_mask.tif", mask, pixel_size_nm=design.pixel_size_nm)
        with atomic_path(out / "synthetic_overlay.png") as tmp:
            Image.fromarray(overlay(synthetic, synthetic_labels)).save(tmp, format="PNG")
        dice = foreground_scores(mask, synthetic_labels)[0]
        summary["synthesis"] = {"generator": generator.name, "mask": "designed (MaskDesign(seed=7))",
                                "particles_in_mask": int(mask.max()), "particles_segmented": int(synthetic_labels.max()),
                                "dice_segment_vs_mask": round(dice, 4), "seconds_synthesize": round(t_syn, 3)}
        synth_line = (f"synthesized an SEM image from a designed mask ({int(mask.max())} particles) in {t_syn:.2f} s; "
                      f"segmenting it back gives Dice {dice:.3f} against the mask")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"napari-nanogan demo: {summary['particles']} particles found ({summary['true_particles']} drawn) "
        f"in {t_seg:.2f} s (model load {t_load:.2f} s; model {summary['model']}"
        + (f", estimated particle diameter {result.diameter_px:.0f} px)" if result.diameter_px else ")"),
        f"median equivalent-circle diameter {summary['ecd_nm_d50']:.0f} nm at {SAMPLE_PIXEL_SIZE_NM} nm/px"
        if summary["ecd_nm_d50"] else "no particles",
        "vs the drawn truth: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["scores_vs_truth"].items()),
        f"wrote {out / 'sample_labels.tif'}, {out / 'sample_overlay.png'}, {out / 'summary.json'}",
    ]
    if synth_line:
        lines.insert(3, synth_line)
    with atomic_path(out / "summary.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------- measure
def cmd_measure(args) -> int:
    """Per-particle table (CSV) plus a size-distribution summary beside it."""
    from .data.datasets import instance_labels
    from .io.images import ImageReadError, labels_pixel_size_nm, read_image, read_mask
    from .io.infobar import detect_info_bar
    from .measure import measure_particles, summarize_sizes, write_summary_csv, write_table_csv

    images = args.image or []
    if images and len(images) not in (1, len(args.labels)):
        print("nanogan measure: give one --image, or one per LABELS file", file=sys.stderr)
        return 2
    tables, summaries, failures = [], [], 0
    for i, path in enumerate(map(Path, args.labels)):
        try:
            labels = instance_labels(read_mask(path))
            image, bar_start, pixel = None, None, args.pixel_size
            if images:
                image, meta = read_image(images[i if len(images) > 1 else 0])
                if image.shape != labels.shape:
                    raise ValueError(f"image {images[i if len(images) > 1 else 0]} has shape {image.shape}, labels {labels.shape}")
                bar = detect_info_bar(image)
                bar_start = bar.start if bar is not None and bar.side == "bottom" else None
                pixel = pixel or meta["pixel_size_nm"]
            if pixel is None and path.suffix.lower() in (".tif", ".tiff"):
                pixel = labels_pixel_size_nm(path)
            table = measure_particles(labels, image=image, pixel_size_nm=pixel, info_bar_start=bar_start, name=path.name)
            tables.append(table)
            summary = summarize_sizes(table)
            summaries.append((path.name, summary))
            d50 = f"D50 {summary['D50']:.4g} {table.unit}" if "D50" in summary else "no whole particles"
            unit_note = "" if pixel else " (pixel size unknown: lengths in pixels; pass --pixel-size or --image)"
            print(f"{path}: {len(table)} particles, {summary['count']} whole, {d50}{unit_note}", file=sys.stderr)
        except (ImageReadError, ValueError, OSError) as exc:
            failures += 1
            print(f"error: {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
    if not tables:
        return 1
    units = {t.unit for t in tables}
    if len(units) > 1:
        print("nanogan measure: some inputs have a pixel size and some do not; measure them separately", file=sys.stderr)
        return 2
    from .measure import Measurements
    import numpy as np

    out = Path(args.out)
    write_table_csv(out, tables)
    merged = Measurements({k: np.concatenate([t.columns[k] for t in tables]) for k in tables[0].columns}, tables[0].unit,
                          tables[0].pixel_size_nm)
    if len(tables) > 1:
        summaries.append(("all", summarize_sizes(merged)))
    summary_path = out.with_name(out.stem + "_summary.csv")
    write_summary_csv(summary_path, summaries)
    print(f"wrote {out} and {summary_path}", file=sys.stderr)
    return 1 if failures else 0


# ---------------------------------------------------------------- synthesize
def synthesis_seed(seed: int, k: int) -> int:
    """The seed of image k of a run with --seed S (distinct per k, reproducible)."""
    return int(seed) * 100_003 + int(k)


def cmd_synthesize(args) -> int:
    from ._atomic import atomic_path
    from .io.images import ImageReadError, list_images, read_mask
    from .models.pretrained import load_generator
    from .synthesis import synthesize

    import tifffile

    generator = load_generator(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = list_images(args.masks)
    if not paths:
        print("nanogan synthesize: no mask files found", file=sys.stderr)
        return 2
    failures = 0
    for path in paths:
        try:
            mask = read_mask(path)
            bar = _progress_bar(args.n, path.name)
            for k in range(args.n):
                image = synthesize(mask, generator, seed=synthesis_seed(args.seed, k))
                with atomic_path(out / f"{path.stem}_{k}.tif") as tmp:
                    tifffile.imwrite(tmp, image)
                bar.update(1)
            bar.close()
            print(f"{path}: {args.n} images -> {out}/{path.stem}_0..{args.n - 1}.tif", file=sys.stderr)
        except (ImageReadError, ValueError, OSError) as exc:
            failures += 1
            print(f"error: {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
    return 1 if failures else 0


def cmd_export(args) -> int:
    """Synthetic image-mask pairs from masks, plus a manifest."""
    from .data.datasets import instance_labels
    from .export import Pair, export_pairs, file_sha256
    from .io.images import ImageReadError, labels_pixel_size_nm, list_images, read_mask
    from .models.pretrained import load_generator, resolve_model
    from .synthesis import synthesize

    generator = load_generator(args.model)
    digest = file_sha256(resolve_model(args.model, kind="generator"))
    paths = list_images(args.masks)
    if not paths:
        print("nanogan export: no mask files found", file=sys.stderr)
        return 2
    failures, written = 0, 0
    for path in paths:
        try:
            labels = instance_labels(read_mask(path))
            pixel = args.pixel_size or (labels_pixel_size_nm(path) if path.suffix.lower() in (".tif", ".tiff") else None)
            pairs = []
            for k in range(args.n):
                seed = synthesis_seed(args.seed, k)
                image = synthesize(labels, generator, seed=seed)
                pairs.append(Pair(f"{path.stem}_{k}", image, labels, source=f"synthetic from {path.name}", seed=seed,
                                  model=str(args.model), model_sha256=digest, pixel_size_nm=pixel))
            export_pairs(pairs, args.out, png=args.png, overwrite=args.overwrite)
            written += len(pairs)
            print(f"{path}: {len(pairs)} pairs", file=sys.stderr)
        except (ImageReadError, ValueError, OSError) as exc:
            failures += 1
            print(f"error: {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
    print(f"wrote {written} pairs and {Path(args.out) / 'manifest.json'}", file=sys.stderr)
    return 1 if failures else 0


def _pair_folders(images_dir, masks_dir):
    """(image, mask) pairs from two folders: mask stem == image stem, or image stem + '_...'."""
    from .io.images import list_images

    masks = list_images([masks_dir])
    pairs = []
    for img in list_images([images_dir]):
        match = [m for m in masks if m.stem == img.stem or m.stem.startswith(img.stem + "_")]
        if match:
            pairs.append((img.stem, img, sorted(match, key=lambda m: len(m.stem))[0]))
    return pairs


def _drive_training(make_loop, total: int, desc: str, report) -> int:
    """Run a training loop (a generator of TrainProgress) with a progress bar on stderr.

    ``make_loop(should_stop)`` builds the loop; SIGTERM asks it to stop after the
    current step (it writes last.pt); ``report(record)`` prints what a step has to say.
    """
    import signal

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    bar = _progress_bar(total, desc)
    try:
        for rec in make_loop(lambda: stop["now"]):
            bar.n = rec.step
            if "total" in rec.losses:  # the stop record trains nothing: keep the last step's loss shown
                bar.set_postfix(loss=f"{rec.losses['total']:.3f}", s_step=f"{rec.seconds_per_step:.2f}")
            elif rec.losses:  # train-gan --critic-warmup: only the critics learn, their loss is what moves
                bar.set_postfix(critics=f"{sum(rec.losses.values()) / len(rec.losses):.3f}",
                                s_step=f"{rec.seconds_per_step:.2f}")
            report(rec)
            if rec.stopped:
                print(f"\nstopped at step {rec.step}; checkpoint {rec.checkpoint}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; resume with the same command (last.pt is kept)", file=sys.stderr)
        return 130
    finally:
        bar.close()
    return 0


def _loss_weights(spec: str | None, base):
    """``base`` (a GanLossWeights) with ``name=value`` pairs of ``spec`` ("cycle_image=0.5,diversity=2") applied."""
    from dataclasses import fields, replace

    if not spec:
        return base
    names = {f.name for f in fields(base)}
    changes = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise ValueError(f"expected name=value with a name among {', '.join(sorted(names))}; got {item!r}")
        try:
            changes[name] = float(value)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a number") from None
        if not changes[name] >= 0:
            raise ValueError(f"{name}: weights must be non-negative numbers")
    return replace(base, **changes)


def cmd_train_gan(args) -> int:
    from .config import GeneratorConfig, SegmenterConfig
    from .data.datasets import load_samples, shared_splits
    from .training.cyclegan import GanLossWeights, GanTrainConfig, train_cyclegan

    if args.invert_init_generator and not args.init_generator:
        print("nanogan train-gan: --invert-init-generator needs --init-generator (the generator to invert)",
              file=sys.stderr)
        return 2
    bad = [f"{flag} must be {rule}, got {value}" for flag, value, ok, rule in (
        ("--substrate-weight", args.substrate_weight, args.substrate_weight >= 0, ">= 0"),
        ("--particle-weight", args.particle_weight, args.particle_weight >= 0, ">= 0"),
        ("--texture-weight", args.texture_weight, args.texture_weight >= 0, ">= 0"),
        ("--critic-channels", args.critic_channels, args.critic_channels >= 1, ">= 1"),
        ("--lr-critic", args.lr_critic, args.lr_critic > 0, "> 0"),
        # (a warm-up as long as the run is allowed: critics pretrained alone, the run resumed with more --steps)
        ("--critic-warmup", args.critic_warmup, args.critic_warmup >= 0, ">= 0"),
    ) if not ok]
    if bad:
        print("nanogan train-gan: " + "; ".join(bad), file=sys.stderr)
        return 2
    from .models.pretrained import ModelNotFoundError, resolve_model

    try:  # shipped and user model names, as --model takes them, or paths
        if args.init_generator:
            args.init_generator = str(resolve_model(args.init_generator, kind="generator"))
        if args.init_segmenter:
            args.init_segmenter = str(resolve_model(args.init_segmenter, kind="segmenter"))
    except ModelNotFoundError as exc:
        print(f"nanogan train-gan: {exc}", file=sys.stderr)
        return 2
    val = None
    if args.images and args.masks:
        triples = _pair_folders(args.images, args.masks)
        source = {"images": args.images, "masks": args.masks, "pairs": [t[0] for t in triples]}
        if not triples:
            print("nanogan train-gan: no image/mask pairs found (mask stems must equal or start with the image stem)",
                  file=sys.stderr)
            return 2
        paired = load_samples(triples, domain="paired")
    else:
        paired = _generator_training_samples(args.data_root, args.dataset)
        if paired is None:
            print(f"nanogan train-gan: give --images and --masks, or a --data-root with {_DATASET_FOLDERS[args.dataset]}/",
                  file=sys.stderr)
            return 2
        if args.val_every > 0:
            val = _generator_training_samples(args.data_root, args.dataset, split="val")
        held_out = shared_splits(args.data_root)[_DATASET_KEYS[args.dataset]]
        source = {f"{args.dataset}_train": [s.name for s in paired], "selection": _DATASET_DESCRIPTIONS[args.dataset],
                  "held_out": {k: [t[0] for t in v] for k, v in held_out.items() if k != "train"}}
    segmenter_config = SegmenterConfig()
    if args.init_segmenter:
        from .models.checkpoint import load_checkpoint

        segmenter_config = SegmenterConfig.from_dict(load_checkpoint(args.init_segmenter, kind="segmenter")["config"])
    unpaired = None
    if args.unpaired_images:
        from .data.datasets import Sample
        from .io.images import list_images, read_image
        from .normalize import intensity_range
        import numpy as np

        unpaired = []
        for p in list_images([args.unpaired_images]):
            img, _ = read_image(p)
            lo, hi = intensity_range(img)
            unpaired.append(Sample(p.stem, img, np.zeros(img.shape, np.int32), lo, hi, "images"))
    try:
        weights = _loss_weights(args.loss_weights, GanLossWeights(adv_texture=args.texture_weight,
                                                                      adv_substrate=args.substrate_weight,
                                                                      adv_particles=args.particle_weight))
    except ValueError as exc:
        print(f"nanogan train-gan: --loss-weights: {exc}", file=sys.stderr)
        return 2
    print(f"train-gan: {len(paired)} annotated pairs" + (f", {len(unpaired)} unannotated images" if unpaired else ""), file=sys.stderr)
    config = GanTrainConfig(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size,
                            checkpoint_every=args.checkpoint_every, seed=args.seed,
                            contact_weight=args.contact_weight, val_every=args.val_every,
                            segmenter_patch_size=args.segmenter_patch_size,
                            critic_channels=args.critic_channels, lr_critic=args.lr_critic,
                            critic_warmup=args.critic_warmup,
                            weights=weights)
    provenance = {"data": source, "command": "nanogan " + " ".join(sys.argv[1:])}

    def report(rec):
        if rec.step % 100 == 0 and rec.losses:
            print("\nstep %d: %s" % (rec.step, {k: round(v, 3) for k, v in rec.losses.items()}), file=sys.stderr, flush=True)
        if rec.validation:
            print("\nstep %d validation: %s" % (rec.step, json.dumps(rec.validation)), file=sys.stderr, flush=True)

    return _drive_training(
        lambda should_stop: train_cyclegan(paired, out_dir=args.out, config=config, generator_config=GeneratorConfig(),
                                           segmenter_config=segmenter_config, unpaired_images=unpaired,
                                           init_segmenter=args.init_segmenter, init_generator=args.init_generator,
                                           invert_init_generator=args.invert_init_generator,
                                           val=val, provenance=provenance, should_stop=should_stop),
        config.steps, "train-gan", report)


# ---------------------------------------------------------------- finetune
def cmd_finetune(args) -> int:
    """Fine-tune the shipped models on the user's annotated pairs; writes a bundle usable as --model."""
    import signal

    from .data.datasets import load_sample
    from .training.finetune import PRESETS, finetune

    if len(args.images) != len(args.masks):
        print(f"nanogan finetune: {len(args.images)} images but {len(args.masks)} masks; give them in matching order",
              file=sys.stderr)
        return 2
    try:
        pairs = [load_sample(i, m, domain="user") for i, m in zip(args.images, args.masks)]
    except (ValueError, OSError) as exc:
        print(f"nanogan finetune: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    print(f"fine-tuning on {len(pairs)} images, preset {args.preset} ({PRESETS[args.preset].description})", file=sys.stderr)
    loop = finetune(pairs, out_path=args.out, preset=args.preset, base_segmenter=args.base_segmenter,
                    base_generator=args.base_generator, should_stop=lambda: stop["now"],
                    provenance={"command": "nanogan " + " ".join(sys.argv[1:])})
    bar = _progress_bar(PRESETS[args.preset].max_steps, "finetune")
    try:
        while True:
            try:
                rec = next(loop)
            except StopIteration as done:
                result = done.value
                break
            bar.n = rec.step
            bar.set_postfix(s_step=f"{rec.seconds_per_step:.2f}")
            bar.refresh()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        bar.close()
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    fmt = lambda s: f"IoU {s['iou']:.3f}, F1 {s['f1']:.3f}"  # noqa: E731
    print(f"before: {fmt(result.before)}; after: {fmt(result.after)} ({result.steps} steps, {result.seconds:.0f} s)",
          file=sys.stderr)
    print(f"wrote {result.path}; use it with --model {result.path}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- tune
def cmd_tune(args) -> int:
    """Pick post-processing parameters on the validation split and store them in a copy of the checkpoint."""
    from .data.datasets import at_model_scale, load_samples, shared_splits
    from .inference import Segmenter
    from .models.checkpoint import load_checkpoint, save_checkpoint
    from .training.segmenter import tune_postprocess

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
        bar = bar or _progress_bar(total, "tune (network passes, then post-processing candidates)")
        bar.update(done - bar.n)

    config, info = tune_postprocess(segmenter, samples, size_weight=args.size_weight, progress=progress,
                                    workers=args.workers)
    if bar is not None:
        bar.close()
    data = load_checkpoint(args.model, kind="segmenter")
    data.pop("format_version")
    data["postprocess"] = config.to_dict()
    data.setdefault("provenance", {})["postprocess_tuning"] = dict(info, split="val", at_model_scale=bool(args.at_model_scale),
                                                                   command="nanogan " + " ".join(sys.argv[1:]))
    save_checkpoint(args.out, data)
    print(json.dumps({"postprocess": config.to_dict(), **info}))
    return 0


# ---------------------------------------------------------------- tune-generator
# the generators' data sets (`train-gan --dataset`, `tune-generator --dataset`): shared_splits key, folder, description
_DATASET_KEYS = {"bam": "bam", "emps-tem": "emps"}
_DATASET_FOLDERS = {"bam": "bam_tio2_sem", "emps-tem": "emps"}
_DATASET_DESCRIPTIONS = {"bam": "BAM training split (specimen rows)",
                         "emps-tem": "EMPS training split, images with dark particles at the model's scale "
                                     "(data.datasets.bright_field_samples)"}


def _generator_training_samples(data_root, dataset: str, split: str = "train"):
    """The real images of ``split`` a generator of ``dataset`` learns from (None: data set not found).

    ``bam``: the BAM TiO2 SEM images, info bar cropped; ``emps-tem``: the EMPS images with
    dark particles (bright-field TEM), at the model's scale.
    """
    from .data.datasets import bright_field_samples, load_samples, shared_splits

    splits = shared_splits(data_root)
    if _DATASET_KEYS[dataset] not in splits:
        return None
    if dataset == "emps-tem":
        return bright_field_samples(splits["emps"][split])
    return load_samples(splits["bam"][split], domain="bam")


def cmd_tune_generator(args) -> int:
    """Measure the real images' noise level and store it as the generator's post-processing."""
    import numpy as np

    from .io.images import ImageReadError, list_images, read_image
    from .io.infobar import detect_info_bar
    from .models.checkpoint import load_checkpoint, save_checkpoint
    from .models.pretrained import resolve_model
    from .synthesis import SynthesisPostprocess, noise_level

    if args.texture_margin is not None and args.texture_margin < 0:  # before any slow calibration
        print("nanogan tune-generator: --texture-margin must be >= 0", file=sys.stderr)
        return 2
    if args.images:
        levels = []
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
            levels.append(noise_level(image[bar.specimen_rows] if bar else image))
        source = f"images in {args.images}"
    else:
        samples = _generator_training_samples(args.data_root, args.dataset)
        if samples is None:
            print(f"nanogan tune-generator: no {_DATASET_FOLDERS[args.dataset]}/ under {args.data_root}; give --images",
                  file=sys.stderr)
            return 2
        levels = [noise_level(s.image) for s in samples]
        source = _DATASET_DESCRIPTIONS[args.dataset]
    if not levels:
        print("nanogan tune-generator: no readable images", file=sys.stderr)
        return 2
    if not args.blur >= 0:
        print("nanogan tune-generator: --blur must be a non-negative number of pixels", file=sys.stderr)
        return 2
    path = resolve_model(args.model, kind="generator")
    gain, offset, calibrated_on = 1.0, 0.0, None
    if args.calibrate:
        from scipy import ndimage as ndi

        from .synthesis import Generator, calibration, synthesize

        samples = _generator_training_samples(args.data_root, args.dataset)
        if samples is None:
            print(f"nanogan tune-generator: --calibrate needs annotated images: no {_DATASET_FOLDERS[args.dataset]}/ "
                  f"under {args.data_root}", file=sys.stderr)
            return 2
        generator = Generator.from_checkpoint(path)
        bar = _progress_bar(len(samples), "calibration (synthesizing the training masks)")
        synthetic = []
        for i, sample in enumerate(samples):
            raw = synthesize(sample.labels, generator, seed=10**5 + i, postprocess=False).astype(np.float32)
            synthetic.append(ndi.gaussian_filter(raw, args.blur) if args.blur > 0 else raw)
            bar.update(1)
        bar.close()
        gain, offset = calibration([s.image for s in samples], synthetic)
        calibrated_on = (f"{_DATASET_DESCRIPTIONS[args.dataset]}: {len(samples)} images vs their masks synthesized "
                         "(seeds 100000+)")
    post = SynthesisPostprocess(blur_sigma=args.blur, noise_residual=float(np.median(levels)), gain=gain, offset=offset)
    data = load_checkpoint(path, kind="generator")
    data.pop("format_version")
    data["postprocess"] = post.to_dict()
    if args.texture == "none":
        data.pop("substrate_texture", None)
    elif args.texture:
        from .models.checkpoint import CheckpointError
        from .models.texture import SubstrateTexture

        try:
            texture = load_checkpoint(args.texture, kind="substrate-texture")
            loaded = SubstrateTexture.from_dict(texture)  # loads, or says why not
        except (CheckpointError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            print(f"nanogan tune-generator: --texture: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        # everything the texture needs (network, config, gain), from the texture itself
        data["substrate_texture"] = {**loaded.to_dict(), "provenance": texture.get("provenance", {})}
    if args.texture_margin is not None:
        from .models.texture import TextureConfig

        if not data.get("substrate_texture"):
            print("nanogan tune-generator: --texture-margin: the generator has no substrate texture (give --texture)",
                  file=sys.stderr)
            return 2
        try:
            config = TextureConfig.from_dict({**data["substrate_texture"]["config"], "margin": args.texture_margin})
        except ValueError as exc:
            print(f"nanogan tune-generator: --texture-margin: {exc}", file=sys.stderr)
            return 2
        data["substrate_texture"] = {**data["substrate_texture"], "config": config.to_dict()}
    if args.particle_texture == "none":
        data.pop("particle_texture", None)
    elif args.particle_texture:
        from .models.checkpoint import CheckpointError
        from .models.texture import LearnedTexture

        try:
            texture = load_checkpoint(args.particle_texture, kind="particle-texture")
            loaded = LearnedTexture.from_dict(texture)
        except (CheckpointError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            print(f"nanogan tune-generator: --particle-texture: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        data["particle_texture"] = {**loaded.to_dict(), "provenance": texture.get("provenance", {})}
    data.setdefault("provenance", {})["postprocess_tuning"] = {
        "source": source, "images": len(levels), "noise_levels": [round(v, 3) for v in levels],
        "calibration": calibrated_on,
        "command": "nanogan " + " ".join(sys.argv[1:])}
    save_checkpoint(args.out, data)
    print(json.dumps({"postprocess": post.to_dict(), "images": len(levels),
                      "substrate_texture": "substrate_texture" in data, "particle_texture": "particle_texture" in data}))
    return 0


# ---------------------------------------------------------------- train-texture
def cmd_train_texture(args) -> int:
    """Train the substrate texture network on the real substrate of annotated images."""
    from .models.texture import TextureConfig
    from .training.texture import TextureTrainConfig, train_texture

    try:
        particles = args.region == "particles"
        config = TextureTrainConfig(steps=args.steps if args.steps is not None else (6000 if particles else 24000),
                                    batch_size=args.batch_size,
                                    patch_size=args.patch_size or (48 if particles else 96),
                                    checkpoint_every=args.checkpoint_every, seed=args.seed,
                                    min_fraction=0.25 if particles else 0.5)
        widths = tuple(int(v) for v in args.widths.split(","))
        region = {"region": "particles", "margin": 0, "blend": 0.0, "cond_channels": 0 if args.unconditional else 2} \
            if particles else {}
        texture_config = TextureConfig(sigma=args.sigma or (2.0 if particles else 16.0), upsample=args.upsample,
                                       widths=widths, **region)
    except ValueError as exc:
        print(f"nanogan train-texture: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.images and args.masks:
        from .data.datasets import load_samples

        triples = _pair_folders(args.images, args.masks)
        if not triples:
            print("nanogan train-texture: no image/mask pairs found (mask stems must equal or start with the image stem)",
                  file=sys.stderr)
            return 2
        samples = load_samples(triples, domain="paired")
        source = {"images": args.images, "masks": args.masks, "pairs": [t[0] for t in triples]}
    else:
        samples = _generator_training_samples(args.data_root, args.dataset)
        if samples is None:
            print(f"nanogan train-texture: give --images and --masks, or a --data-root with "
                  f"{_DATASET_FOLDERS[args.dataset]}/", file=sys.stderr)
            return 2
        source = {f"{args.dataset}_train": [s.name for s in samples], "selection": _DATASET_DESCRIPTIONS[args.dataset]}
    provenance = {"data": source, "command": "nanogan " + " ".join(sys.argv[1:])}

    def report(rec):
        if rec.step % 500 == 0 and rec.losses:
            print("\nstep %d: %s" % (rec.step, {k: round(v, 3) for k, v in rec.losses.items()}), file=sys.stderr, flush=True)

    try:
        code = _drive_training(
            lambda should_stop: train_texture([s.image for s in samples], [s.labels for s in samples], out_dir=args.out,
                                              config=config, texture_config=texture_config, provenance=provenance,
                                              should_stop=should_stop),
            config.steps, "train-texture", report)
    except ValueError as exc:
        print(f"nanogan train-texture: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if code == 0 and (Path(args.out) / "texture.pt").exists():
        flag = "--particle-texture" if args.region == "particles" else "--texture"
        print(f"wrote {Path(args.out) / 'texture.pt'}; embed it with "
              f"`nanogan tune-generator --model G --out G2.pt {flag} {Path(args.out) / 'texture.pt'}`", file=sys.stderr)
    return code


# ---------------------------------------------------------------- fit-size
def cmd_fit_size(args) -> int:
    """Fit the size model behind ``--diameter auto`` and store it in a copy of the checkpoint."""
    import numpy as np

    from .data.datasets import load_samples, shared_splits
    from .inference import Segmenter
    from .models.checkpoint import load_checkpoint, save_checkpoint
    from .models.pretrained import resolve_model
    from .training.sizing import fit_size_model, sample_features, size_errors

    splits = shared_splits(args.data_root)
    wanted = [d for d in args.datasets.split(",") if d]
    missing = [d for d in wanted if d not in splits]
    if missing or not wanted:
        print(f"nanogan fit-size: data set(s) {', '.join(missing) or '(none)'} not found under {args.data_root}",
              file=sys.stderr)
        return 2
    path = resolve_model(args.model)
    segmenter = Segmenter.from_checkpoint(path)
    parts = {}
    for part in ("train", "val"):
        samples = [s for key in wanted for s in load_samples(splits[key][part], domain=key)]
        bar = _progress_bar(len(samples), f"size features ({part})")
        parts[part] = sample_features(segmenter, samples, progress=lambda d, t: bar.update(d - bar.n))
        bar.close()
    model = fit_size_model(*parts["train"])
    x, d, domains = parts["val"]
    predicted = np.array([model.predict(f) for f in x])
    domains = np.asarray(domains)
    model.metrics["val"] = {k: size_errors(predicted[domains == k], d[domains == k]) for k in wanted}
    data = load_checkpoint(path, kind="segmenter")
    data.pop("format_version")
    data["size_model"] = model.to_dict()
    data.setdefault("provenance", {})["size_model"] = {
        "data": {k: "train split (fit), val split (metrics)" for k in wanted},
        "command": "nanogan " + " ".join(sys.argv[1:]), "metrics": model.metrics}
    save_checkpoint(args.out, data)
    print(json.dumps(model.metrics))
    return 0


# ---------------------------------------------------------------- train
def cmd_train(args) -> int:
    from .config import SegmenterConfig, TrainConfig
    from .data.datasets import at_model_scale, load_samples, shared_splits
    from .training.segmenter import train_segmenter

    splits = shared_splits(args.data_root)
    if not splits:
        print(f"nanogan train: no bam_tio2_sem/ or emps/ under {args.data_root}", file=sys.stderr)
        return 2
    wanted = [d for d in args.datasets.split(",") if d]
    train, val = {}, []
    for key in wanted:
        if key not in splits:
            print(f"nanogan train: data set {key!r} not found under {args.data_root}", file=sys.stderr)
            return 2
        train[key] = load_samples(splits[key]["train"], domain=key)
        val += load_samples(splits[key]["val"], domain=key)
        print(f"{key}: {len(train[key])} training images, {len(splits[key]['val'])} validation, "
              f"{len(splits[key]['test'])} test (held out)", file=sys.stderr)
    domain_weights = None
    if args.synthetic:
        from .data.datasets import load_export_folder

        if not 0 < args.synthetic_share < 1:
            print("nanogan train: --synthetic-share must be between 0 and 1", file=sys.stderr)
            return 2
        try:
            train["synthetic"] = load_export_folder(args.synthetic)
        except (ValueError, OSError) as exc:
            print(f"nanogan train: {exc}", file=sys.stderr)
            return 2
        real = [k for k in train if k != "synthetic"]
        domain_weights = {k: (1 - args.synthetic_share) / len(real) for k in real}
        domain_weights["synthetic"] = args.synthetic_share
        print(f"synthetic: {len(train['synthetic'])} pairs from {args.synthetic}, "
              f"{args.synthetic_share:.0%} of the patches", file=sys.stderr)
    if args.at_model_scale:  # the shared data sets only; --synthetic pairs are used as exported
        train.update({k: [at_model_scale(t) for t in train[k]] for k in wanted})
        val = [at_model_scale(v) for v in val]
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size, lr=args.lr,
                         val_every=args.val_every, checkpoint_every=args.checkpoint_every, seed=args.seed,
                         contact_weight=args.contact_weight, seed_depth=args.seed_depth)
    model_config = SegmenterConfig(base_channels=args.base_channels, depth=args.depth, norm=args.norm)
    provenance = {
        "data": {k: {p: [t[0] for t in v] for p, v in splits[k].items()} for k in wanted},
        "command": "nanogan " + " ".join(sys.argv[1:]),
        "at_model_scale": bool(args.at_model_scale),
    }
    if domain_weights is not None:
        provenance["synthetic"] = {"folder": str(args.synthetic), "pairs": len(train["synthetic"]),
                                   "domain_weights": domain_weights}
    def report(rec):
        if rec.validation:
            summary = {k: (round(v["iou"], 4), round(v["f1"], 4)) for k, v in rec.validation.items() if isinstance(v, dict)}
            print(f"\nstep {rec.step}: validation (iou, f1) {summary} score {rec.validation['score']:.4f}",
                  file=sys.stderr, flush=True)

    return _drive_training(
        lambda should_stop: train_segmenter(train, val, out_dir=args.out, config=config, model_config=model_config,
                                            provenance=provenance, init_from=args.init, should_stop=should_stop,
                                            domain_weights=domain_weights),
        config.steps, "train", report)


def _diameter_value(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)  # the sign is checked per image, with the other inputs still processed
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .models.pretrained import AUTO_SEGMENTERS, DEFAULT_SEGMENTER

    general, bright = AUTO_SEGMENTERS["auto"]
    AUTO_HELP = f"{bright} for bright particles on a dark background (SEM), else {general}"

    parser = argparse.ArgumentParser(prog="nanogan", description="Nanoparticle segmentation and synthesis for EM images.")
    parser.add_argument("--version", action="version", version=f"napari-nanogan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("segment", help="segment images into particles (one label per particle)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder for <stem>_labels.tif")
    p.add_argument("--model", default=DEFAULT_SEGMENTER,
                   help=f"shipped model name or checkpoint path (default {DEFAULT_SEGMENTER}: {AUTO_HELP})")
    p.add_argument("--tile", type=int, default=512, help="tile side in pixels (default 512)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--diameter", type=_diameter_value, default=None, metavar="PX|auto",
                      help="typical particle diameter in pixels; images of particles much larger than the model's "
                           "training scale (about 24 px) are made smaller for the network (labels keep the image's size). "
                           "'auto': estimated per image by the model's size model; 0: the image's own scale. "
                           "Default: 'auto' for models with a size model (the shipped auto and default), else 0")
    size.add_argument("--diameter-nm", type=float, default=None, metavar="NM",
                      help="the same in nm, converted with each file's pixel size (files without one are an error)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("demo", help="segment the package's own sample image (offline, shipped defaults)")
    p.add_argument("--out", default="nanogan-demo", help="output folder (default ./nanogan-demo)")
    p.add_argument("--model", default=DEFAULT_SEGMENTER,
                   help=f"shipped model name or checkpoint path (default {DEFAULT_SEGMENTER}: {AUTO_HELP})")
    p.add_argument("--generator", default=None, help="generator for the synthesis half (default: the shipped one, if any)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("measure", help="per-particle sizes (nm) and size distributions from label images")
    p.add_argument("labels", nargs="+", metavar="LABELS", help="instance label images or binary masks")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--image", action="append", help="the source image (pixel size, info bar, intensities)")
    group.add_argument("--pixel-size", type=float, default=None, help="pixel size in nm (overrides file metadata)")
    p.add_argument("--out", required=True, help="CSV of particles; the summary goes to <out stem>_summary.csv")
    p.set_defaults(func=cmd_measure)

    p = sub.add_parser("synthesize", help="realistic SEM images from particle masks (Style U-Net generator)")
    p.add_argument("masks", nargs="+", metavar="MASK", help="binary or instance-label mask images, or folders")
    p.add_argument("--out", required=True, help="output folder for <mask stem>_<k>.tif")
    p.add_argument("--n", type=int, default=1, help="images per mask (different styles)")
    p.add_argument("--seed", type=int, default=0, help="makes the output reproducible")
    p.add_argument("--model", default="default", help="shipped generator name or checkpoint path")
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("export", help="write synthetic image-mask pairs and a manifest for training elsewhere")
    p.add_argument("--masks", nargs="+", required=True, metavar="MASK", help="mask files or folders")
    p.add_argument("--out", required=True, help="export folder (images/, masks/, manifest.json, manifest.csv)")
    p.add_argument("--n", type=int, default=1, help="synthetic images per mask")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="default", help="generator name or checkpoint path")
    p.add_argument("--pixel-size", type=float, default=None, help="pixel size in nm written into the TIFFs")
    p.add_argument("--png", action="store_true", help="also write PNG previews")
    p.add_argument("--overwrite", action="store_true", help="replace existing files (default: refuse)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train-gan", help="train the generator and the segmenter as a cycle GAN")
    p.add_argument("--images", default=None, help="folder of annotated images")
    p.add_argument("--masks", default=None, help="folder of their masks (stem, or stem_suffix)")
    p.add_argument("--unpaired-images", default=None, help="folder of images without masks")
    p.add_argument("--data-root", default="../shared/data",
                   help="without --images/--masks: the shared data sets (the --dataset training split)")
    p.add_argument("--dataset", default="bam", choices=["bam", "emps-tem"],
                   help="without --images/--masks: the BAM TiO2 SEM training split (default), or the EMPS "
                        "training images with dark particles (bright-field TEM) at the model's scale")
    p.add_argument("--out", required=True, help="run folder (last.pt, generator.pt, segmenter.pt); resumes")
    p.add_argument("--init-segmenter", default=None, help="segmenter to start from: a checkpoint or a model name")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--patch-size", type=int, default=128)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-generator", default=None, help="generator to start from: a checkpoint or a model name")
    p.add_argument("--invert-init-generator", action="store_true",
                   help="start from the --init-generator's negative image (an SEM generator's bright particles on a "
                        "dark substrate become dark on bright): a warm start for bright-field TEM")
    p.add_argument("--contact-weight", type=float, default=0.0,
                   help="extra segmenter loss weight where touching particles meet (as in `nanogan train`)")
    p.add_argument("--segmenter-patch-size", type=int, default=None,
                   help="patch side of the segmenter's supervised batch (default: --patch-size); e.g. 256, as "
                        "`nanogan train` uses")
    p.add_argument("--val-every", type=int, default=500,
                   help="with --data-root: score the segmenter on the --dataset validation split every N steps "
                        "and keep the best as segmenter_best.pt (0: never)")
    p.add_argument("--loss-weights", default=None, metavar="NAME=W,...",
                   help="override loss weights (training.cyclegan.GanLossWeights), e.g. "
                        "cycle_image=0.5,supervised_image=0.5")
    p.add_argument("--texture-weight", type=float, default=0.0,
                   help="weight of the texture critic, which sees only the images' high-pass residual "
                        "(0: off; e.g. 1)")
    p.add_argument("--substrate-weight", type=float, default=0.0,
                   help="weight of the substrate critic, which sees the images with their particles blacked out "
                        "(0: off; e.g. 1)")
    p.add_argument("--particle-weight", type=float, default=0.0,
                   help="weight of the particle critic, which sees real images against the same images with "
                        "their particles redrawn by the generator (0: off; e.g. 1)")
    p.add_argument("--critic-channels", type=int, default=32,
                   help="first-layer width of the image, substrate and particle critics (doubles per layer)")
    p.add_argument("--lr-critic", type=float, default=2e-4, help="the critics' Adam learning rate")
    p.add_argument("--critic-warmup", type=int, default=0,
                   help="train only the critics for the first N steps (counted in --steps), so that a run "
                        "continued from trained weights starts with critics that already see the difference")
    p.set_defaults(func=cmd_train_gan)

    p = sub.add_parser("finetune", help="fine-tune the shipped models on your annotated images")
    p.add_argument("--images", nargs="+", required=True, metavar="IMG")
    p.add_argument("--masks", nargs="+", required=True, metavar="MASK", help="in the same order as --images")
    p.add_argument("--out", required=True, metavar="MODEL_PATH", help="the fine-tuned model (usable as --model)")
    p.add_argument("--preset", default="quick", choices=["quick", "standard", "thorough"])
    p.add_argument("--base-segmenter", default="default")
    p.add_argument("--base-generator", default="default")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("tune", help="choose post-processing parameters on the validation split")
    p.add_argument("--model", required=True, help="segmenter checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, tuned post-processing)")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--datasets", default="bam,emps")
    p.add_argument("--size-weight", type=float, default=0.0,
                   help="also penalise the relative D50 error of whole particles, with this weight "
                        "(score: (IoU + F1) / 2 - weight x |D50 error|; default 0)")
    p.add_argument("--at-model-scale", action="store_true",
                   help="tune on the validation images shrunk to the model's particle diameter (24 px), as the "
                        "network was trained with `nanogan train --at-model-scale`")
    p.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                   help="processes that score the post-processing candidates (default: the CPU cores, at most 4)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("tune-generator", help="post-processing of synthetic images: mild blur, then noise as in real images")
    p.add_argument("--model", required=True, help="generator name or checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, with the noise level)")
    p.add_argument("--images", default=None, help="folder of real images (default: the --dataset training split)")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--dataset", default="bam", choices=["bam", "emps-tem"],
                   help="the generator's training data under --data-root, for the noise level and the "
                        "calibration: BAM TiO2 SEM (default) or EMPS bright-field TEM (as in train-gan)")
    p.add_argument("--blur", type=float, default=0.7, metavar="SIGMA",
                   help="Gaussian blur (px) before the noise (default 0.7, the best of 0.5-1.4 by BAM FID)")
    p.add_argument("--calibrate", action="store_true",
                   help="also fit a grey-level gain and offset that give synthetic images of the training masks the "
                        "real training images' mean and spread (needs the --dataset training split under --data-root)")
    p.add_argument("--texture", default=None, metavar="TEXTURE_PT",
                   help="a substrate texture from `nanogan train-texture` to lay over the synthetic substrate "
                        "('none' removes one; default: keep what the checkpoint has)")
    p.add_argument("--particle-texture", default=None, metavar="TEXTURE_PT",
                   help="a particle texture from `nanogan train-texture --region particles` to lay over the synthetic "
                        "particles ('none' removes one; default: keep what the checkpoint has)")
    p.add_argument("--texture-margin", type=int, default=None, metavar="PX",
                   help="lay the texture up to this many pixels from the particles (default: the texture's own, "
                        "3 as trained; the shipped generator uses 1: BAM FID 77.5 at 3, 71.4 at 1, 68.1 at 0, where "
                        "the segmented synthetic particles shrink by 10 %%)")
    p.set_defaults(func=cmd_tune_generator)

    p = sub.add_parser("train-texture", help="learn the real substrate's texture, for tune-generator --texture")
    p.add_argument("--out", required=True, help="run folder (last.pt, texture.pt); resumes if it has last.pt")
    p.add_argument("--images", default=None, help="folder of images (with --masks; default: the --dataset training split)")
    p.add_argument("--masks", default=None, help="folder of their particle masks")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--dataset", default="bam", choices=["bam", "emps-tem"])
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the shipped textures'. Substrate 24000, about 1.5 h on 2 CPU "
                        "cores; 6000 measured FID 89.6, 14000 78.8, 24000 77.5. Particles 6000, about 8 min; "
                        "18000 measured 54.8 against 55.1)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--region", default="substrate", choices=["substrate", "particles"],
                   help="learn the substrate's texture (default) or the particles' fine detail; a particle texture "
                        "is embedded with `tune-generator --particle-texture`")
    p.add_argument("--patch-size", type=int, default=None, help="default 96 (substrate), 48 (particles)")
    p.add_argument("--sigma", type=float, default=None,
                   help="high-pass scale (px): finer detail is texture (default 16 for the substrate, the shipped "
                        "texture's, 6 measured worse; 2 for the particles)")
    p.add_argument("--unconditional", action="store_true",
                   help="particles: a texture that sees noise only, not the particles' mask and depth")
    p.add_argument("--upsample", default="bilinear", choices=["bilinear", "nearest"])
    p.add_argument("--widths", default="64,48,32,24",
                   help="the texture network's channels at 1/8, 1/4, 1/2 and full resolution (default 64,48,32,24)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_texture)

    p = sub.add_parser("fit-size", help="fit the size model behind --diameter auto on the training split")
    p.add_argument("--model", required=True, help="segmenter name or checkpoint")
    p.add_argument("--out", required=True, help="checkpoint to write (the same weights, with the size model)")
    p.add_argument("--data-root", default="../shared/data")
    p.add_argument("--datasets", default="bam,emps")
    p.set_defaults(func=cmd_fit_size)

    p = sub.add_parser("train", help="train the segmenter on the shared data sets")
    p.add_argument("--data-root", default="../shared/data", help="folder holding bam_tio2_sem/ and emps/")
    p.add_argument("--datasets", default="bam,emps", help="comma-separated: bam, emps")
    p.add_argument("--out", required=True, help="run folder (last.pt, best.pt); resumes if it has last.pt")
    p.add_argument("--init", default=None, help="start from this segmenter checkpoint")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--patch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--base-channels", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--norm", default="group", choices=["group", "batch"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contact-weight", type=float, default=0.0,
                   help="extra loss weight where touching particles meet (0: none; e.g. 5)")
    p.add_argument("--at-model-scale", action="store_true",
                   help="shrink each image whose annotated median particle diameter exceeds the model's "
                        "(24 px) to it, as `segment(..., diameter=D)` does at inference (training and "
                        "validation images)")
    p.add_argument("--seed-depth", type=float, default=4.0,
                   help="depth cap in pixels of the interior (seed) target; 0: none, every seed is its "
                        "particle's inner half (default 4)")
    p.add_argument("--synthetic", default=None, metavar="DIR",
                   help="also train on the synthetic pairs of this `nanogan export` folder")
    p.add_argument("--synthetic-share", type=float, default=0.25,
                   help="share of the training patches drawn from --synthetic (default 0.25)")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
