"""``nanogan train`` and ``train-gan``: the training commands of the segmenter and the cycle GAN."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import GENERATOR_DATASETS, PRECISIONS, Norm
from .common import (CommandError, annotated_samples, command_line, drive_training, first_line, one_process_only,
                     out_file, print_result)
from .values import seed_value


def cmd_train_pairs(args) -> int:
    """``nanogan train --pairs DIR ... --out MODEL.pt``: a segmenter from folders of image-mask pairs."""
    import dataclasses

    from ..training.pairs import PAIRS_RECIPE, folder_summary, train_on_pairs

    init = "default" if args.init is None else (None if str(args.init).lower() == "none" else args.init)
    if args.val_every is not None:
        print("nanogan train --pairs: the recipe keeps its last step and validates nothing; --val-every does not "
              "apply", file=sys.stderr)
        return 2
    try:
        config = dataclasses.replace(PAIRS_RECIPE, **_schedule(args), seed=args.seed, precision=args.precision,
                                     **_augment_probs(args))
    except ValueError as exc:
        print(f"nanogan train --pairs: {_flag_error(exc)}", file=sys.stderr)
        return 2
    try:
        out = out_file(args.out, what="model file to write (MODEL.pt)", model=True)
    except CommandError as exc:
        print(f"nanogan train --pairs: {exc}", file=sys.stderr)
        return 2
    for folder in args.pairs:
        if Path(folder).is_dir():
            print(folder_summary(folder), file=sys.stderr)
    try:
        code = drive_training(lambda should_stop: train_on_pairs(args.pairs, out, config=config, init=init,
                                                                 should_stop=should_stop,
                                                                 provenance={"command": command_line()}),
                              config.steps, "train", lambda rec: None)
    except ValueError as exc:
        print(f"nanogan train --pairs: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if code == 0 and out.is_file():
        print_result(f"wrote {out}; use it with --model {out}")
    return code


def cmd_train(args) -> int:
    """``nanogan train``; under ``torchrun --nproc_per_node N`` data-parallel over N processes."""
    from ..training.ddp import process_group, world_from_env

    world = None if args.pairs else world_from_env()
    if not all(0 <= p <= 1 for p in _augment_probs(args).values()):
        if world is None or world.main:  # (one message under torchrun)
            print("nanogan train: --distractors, --invert, --style and --matrix are probabilities, within 0..1",
                  file=sys.stderr)
        return 2
    from ..config import TrainConfig

    try:  # the schedule flags, checked before any data is read
        TrainConfig(**_schedule(args))
    except ValueError as exc:
        if world is None or world.main:
            print(f"nanogan train: {_flag_error(exc)}", file=sys.stderr)
        return 2
    if args.pairs and (args.own_scale is not None or args.own_scale_share is not None):
        print("nanogan train: --own-scale is for the shared data sets (with --at-model-scale), not --pairs",
              file=sys.stderr)
        return 2
    if args.pairs:
        return cmd_train_pairs(args) if one_process_only("train --pairs") else 2
    batch = args.batch_size or TrainConfig.batch_size  # (the flag, or TrainConfig's default)
    if batch % world.size:
        if world.main:
            print(f"nanogan train: --batch-size (the global batch) {batch} must be a multiple of the "
                  f"{world.size} processes", file=sys.stderr)
        return 2
    with process_group(world):
        return _train(args, world)


def _schedule(args) -> dict:
    """The schedule flags of ``nanogan train`` given, as TrainConfig's fields (those not given: the recipe's)."""
    flags = {"steps": args.steps, "batch_size": args.batch_size, "patch_size": args.patch_size, "lr": args.lr,
             "val_every": args.val_every, "checkpoint_every": args.checkpoint_every,
             "contact_weight": args.contact_weight}
    return {field: value for field, value in flags.items() if value is not None}


def _flag_error(exc: ValueError) -> str:
    """A TrainConfig check's message in the words of the flag (``steps`` -> ``--steps``)."""
    field, _, rest = str(exc).partition(" ")
    return f"--{field.replace('_', '-')} {rest}" if field in {*_FLAGS, "steps"} else str(exc)


_FLAGS = ("batch_size", "patch_size", "lr", "val_every", "checkpoint_every", "contact_weight")


def _augment_probs(args) -> dict:
    """The augmentation chances of ``nanogan train``'s flags, as TrainConfig's fields."""
    return {"distractor_prob": args.distractors, "invert_prob": args.invert, "style_prob": args.style,
            "matrix_prob": args.matrix}


def _network_shape(args, say):
    """(the network's SegmenterConfig, the checkpoint to start from or None), or (None, None) after saying why.

    A run folder with ``last.pt`` resumes with its own network (``--init`` was applied when it
    started); otherwise ``--init`` (a model name or a checkpoint) sets the network's shape, and
    ``--depth``, ``--base-channels`` and ``--norm`` apply without it.
    """
    from ..config import ModelKind, SegmenterConfig
    from ..models.checkpoint import load_checkpoint
    from ..models.registry import resolve_model

    last = Path(args.out) / "last.pt"
    init = None if args.init is None or str(args.init).lower() == "none" else str(args.init)
    try:
        if last.is_file():
            if init:
                say(f"resuming {last}: --init is not applied again")
            return SegmenterConfig.from_dict(load_checkpoint(last, kind=ModelKind.SEGMENTER)["config"]), None
        if init is None:
            return SegmenterConfig(base_channels=args.base_channels, depth=args.depth, norm=args.norm), None
        path = resolve_model(init, kind=ModelKind.SEGMENTER)
        config = SegmenterConfig.from_dict(load_checkpoint(path, kind=ModelKind.SEGMENTER)["config"])
    except (LookupError, ValueError, OSError) as exc:
        say(f"nanogan train: {'--init' if not last.is_file() else last}: {str(exc).splitlines()[0]}")
        return None, None
    say(f"init: {path} (its network: depth {config.depth}, {config.base_channels} channels; its post-processing and "
        "size model are not carried over: tune and fit them after training)")
    return config, path


def _train(args, world) -> int:
    from ..config import TrainConfig
    from ..data.datasets import load_samples, shared_splits
    from ..training.data import at_model_scale
    from ..training.segmenter import train_segmenter

    def say(*parts, **kwargs):  # one process reports (all of them load the same data and train the same model)
        if world.main:
            print(*parts, file=sys.stderr, flush=True, **kwargs)

    splits = shared_splits(args.data_root)
    if not splits:
        say(f"nanogan train: no bam_tio2_sem/ or emps/ under {args.data_root}")
        return 2
    model_config, init_path = _network_shape(args, say)  # before loading any data: a bad --init fails fast
    if model_config is None:
        return 2
    wanted = [d for d in args.datasets.split(",") if d]
    train, val = {}, []
    for key in wanted:
        if key not in splits:
            say(f"nanogan train: data set {key!r} not found under {args.data_root}")
            return 2
        train[key] = load_samples(splits[key]["train"], domain=key)
        val += load_samples(splits[key]["val"], domain=key)
        say(f"{key}: {len(train[key])} training images, {len(splits[key]['val'])} validation, "
            f"{len(splits[key]['test'])} test (held out)")
    real = list(train)
    shares = {}  # domain -> share of the patches; the real data sets share the rest equally
    if args.synthetic_share is not None and not args.synthetic:
        say("nanogan train: --synthetic-share is the share of --synthetic's pairs: give --synthetic DIR too")
        return 2
    if args.synthetic:
        from ..data.datasets import load_export_folder

        if args.synthetic_share is None:
            args.synthetic_share = 0.25
        if not 0 < args.synthetic_share < 1:
            say("nanogan train: --synthetic-share must be between 0 and 1")
            return 2
        try:
            train["synthetic"] = load_export_folder(args.synthetic)
        except (ValueError, OSError) as exc:
            say(f"nanogan train: {exc}")
            return 2
        shares["synthetic"] = args.synthetic_share
        say(f"synthetic: {len(train['synthetic'])} pairs from {args.synthetic}, "
            f"{args.synthetic_share:.0%} of the patches")
    if args.own_scale is not None or args.own_scale_share is not None:
        code = _own_scale(args, train, wanted, shares, say)
        if code:
            return code
    if args.randomized:
        from ..data.randomized import RandomizedSource

        train["randomized"] = source = RandomizedSource.at_model_scale() if args.at_model_scale else RandomizedSource()
        shares["randomized"] = args.randomized
        say(f"randomized: domain-randomised pairs drawn fresh, {args.randomized:.0%} of the patches, median "
            f"particle diameters {source.min_diameter:.0f}-{source.max_diameter:.0f} px")
    if sum(shares.values()) >= 1 or not all(0 < v < 1 for v in shares.values()):
        say("nanogan train: --synthetic-share, --own-scale-share and --randomized must be in (0, 1) and leave a "
            "share for the real images")
        return 2
    domain_weights = {k: (1 - sum(shares.values())) / len(real) for k in real} | shares if shares else None
    if args.at_model_scale:  # the shared data sets only; --synthetic pairs are used as exported
        train.update({k: [at_model_scale(t) for t in train[k]] for k in wanted})
        val = [at_model_scale(v) for v in val]
    try:
        scale_range = tuple(float(v) for v in args.scale_range.split(","))
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError
    except ValueError:
        say(f"nanogan train: --scale-range must be LOW,HIGH with 0 < LOW <= HIGH, not {args.scale_range!r}")
        return 2
    try:
        config = TrainConfig(**_schedule(args), seed=args.seed, seed_depth=args.seed_depth, scale_range=scale_range,
                             precision=args.precision, **_augment_probs(args))
    except ValueError as exc:
        say(f"nanogan train: {_flag_error(exc)}")
        return 2
    provenance = {"data": {k: {p: [t[0] for t in v] for p, v in splits[k].items()} for k in wanted},
                  "command": command_line(), "at_model_scale": bool(args.at_model_scale)}
    if init_path is not None:
        provenance["init"] = {"model": str(args.init), "path": str(init_path)}
    provenance |= {"domain_weights": domain_weights} if domain_weights is not None else {}
    if "own_scale" in train:
        provenance["own_scale"] = {"min_diameter_px": args.own_scale, "share": shares["own_scale"],
                                   "images": [f"{t.domain}/{t.name}" for t in train["own_scale"]]}
    if args.synthetic:
        provenance["synthetic"] = {"folder": str(args.synthetic), "pairs": len(train["synthetic"]),
                                   "domain_weights": domain_weights}
    def report(rec):
        if rec.validation:
            summary = {k: (round(v["iou"], 4), round(v["f1"], 4)) for k, v in rec.validation.items() if isinstance(v, dict)}
            say(f"\nstep {rec.step}: validation (iou, f1) {summary} score {rec.validation['score']:.4f}")

    if world.distributed:
        say(f"train: {world.describe()}; global batch {config.batch_size}, {config.batch_size // world.size} per "
            "process; process 0 validates and writes the checkpoints")
    try:
        return drive_training(
            lambda should_stop: train_segmenter(train, val, out_dir=args.out, config=config, model_config=model_config,
                                                provenance=provenance, init_from=init_path, should_stop=should_stop,
                                                domain_weights=domain_weights, world=world),
            config.steps, "train", report, quiet=not world.main)
    except ValueError as exc:  # the run folder's checks (another network, other settings): one line
        say(f"nanogan train: {first_line(exc)}")
        return 2


def _own_scale(args, train: dict, wanted: list[str], shares: dict, say) -> int:
    """``--own-scale``: the training images of particles of PX px and over that ``--at-model-scale`` shrinks, also
    as they are (domain ``own_scale``); returns an exit code, 0 when they were added."""
    from ..measure import median_diameter
    from ..training.data import model_scale_factor

    share = 0.15 if args.own_scale_share is None else args.own_scale_share
    if args.own_scale is None or not args.at_model_scale:
        say("nanogan train: --own-scale PX adds images unshrunk beside those --at-model-scale shrinks; give both")
        return 2
    if not args.own_scale > 0 or not 0 < share < 1:
        say("nanogan train: --own-scale must be a diameter above 0 px and --own-scale-share between 0 and 1")
        return 2
    train["own_scale"] = [t for k in wanted for t in train[k]  # (no particles: NaN, never selected)
                          if median_diameter(t.labels) >= args.own_scale and model_scale_factor(t.labels) < 1]
    if not train["own_scale"]:
        say(f"nanogan train: no training image has particles of {args.own_scale:g} px or more that --at-model-scale "
            "shrinks (--own-scale)")
        return 2
    shares["own_scale"] = share
    say(f"own scale: {len(train['own_scale'])} training images of particles of {args.own_scale:g} px and over, "
        f"also at their own scale, {share:.0%} of the patches (validation stays at the model's scale)")
    return 0


def loss_weights(spec: str | None, base):
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
    from ..config import GanLossWeights, GanTrainConfig, GeneratorConfig, ModelKind, SegmenterConfig
    from ..data.datasets import sample_from_arrays, shared_splits
    from ..models.registry import ModelNotFoundError, resolve_model
    from ..training.cyclegan import train_cyclegan
    from ..training.data import generator_samples

    if not one_process_only("train-gan"):
        return 2
    if args.invert_init_generator and not args.init_generator:
        print("nanogan train-gan: --invert-init-generator needs --init-generator (what to invert)", file=sys.stderr)
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
    try:  # shipped and user model names, as --model takes them, or paths
        if args.init_generator:
            args.init_generator = str(resolve_model(args.init_generator, kind=ModelKind.GENERATOR))
        if args.init_segmenter:
            args.init_segmenter = str(resolve_model(args.init_segmenter, kind=ModelKind.SEGMENTER))
    except ModelNotFoundError as exc:
        print(f"nanogan train-gan: {exc}", file=sys.stderr)
        return 2
    val = None
    found = annotated_samples(args, "train-gan")
    if found is None:
        return 2
    paired, source = found
    if not (args.images and args.masks):  # the shared data set's split: its validation and held-out images
        if args.val_every > 0:
            val = generator_samples(args.data_root, args.dataset, split="val")
        held_out = shared_splits(args.data_root)[GENERATOR_DATASETS[args.dataset][0]]
        source["held_out"] = {k: [t[0] for t in v] for k, v in held_out.items() if k != "train"}
    segmenter_config = SegmenterConfig()
    if args.init_segmenter:
        from ..models.checkpoint import load_checkpoint

        segmenter_config = SegmenterConfig.from_dict(load_checkpoint(args.init_segmenter, kind=ModelKind.SEGMENTER)["config"])
    unpaired = None
    if args.unpaired_images:
        from ..io.images import list_images, read_image

        unpaired = [sample_from_arrays(p.stem, read_image(p)[0], None, domain="images", crop_info_bar=False)
                    for p in list_images([args.unpaired_images])]
    try:
        weights = loss_weights(args.loss_weights, GanLossWeights(
            adv_texture=args.texture_weight, adv_substrate=args.substrate_weight, adv_particles=args.particle_weight))
    except ValueError as exc:
        print(f"nanogan train-gan: --loss-weights: {exc}", file=sys.stderr)
        return 2
    print(f"train-gan: {len(paired)} annotated pairs" + (f", {len(unpaired)} unannotated images" if unpaired else ""), file=sys.stderr)
    config = GanTrainConfig(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size,
                            checkpoint_every=args.checkpoint_every, seed=args.seed, contact_weight=args.contact_weight,
                            val_every=args.val_every, segmenter_patch_size=args.segmenter_patch_size,
                            critic_channels=args.critic_channels, lr_critic=args.lr_critic,
                            critic_warmup=args.critic_warmup, weights=weights)
    provenance = {"data": source, "command": command_line()}

    def report(rec):
        if rec.step % 100 == 0 and rec.losses:
            print("\nstep %d: %s" % (rec.step, {k: round(v, 3) for k, v in rec.losses.items()}), file=sys.stderr, flush=True)
        if rec.validation:
            print("\nstep %d validation: %s" % (rec.step, json.dumps(rec.validation)), file=sys.stderr, flush=True)

    return drive_training(
        lambda should_stop: train_cyclegan(paired, out_dir=args.out, config=config, generator_config=GeneratorConfig(),
                                           segmenter_config=segmenter_config, unpaired_images=unpaired,
                                           init_segmenter=args.init_segmenter, init_generator=args.init_generator,
                                           invert_init_generator=args.invert_init_generator,
                                           val=val, provenance=provenance, should_stop=should_stop),
        config.steps, "train-gan", report)


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train the segmenter: on the shared data sets, or on folders of pairs (--pairs)")
    p.add_argument("--pairs", nargs="+", default=None, metavar="DIR",
                   help="train on these folders of image-mask pairs (`nanogan export` folders, or images/ + masks/ "
                        "with matching stems), each folder an equal share of the patches; --out is then the model "
                        "file (MODEL.pt; its run folder MODEL.pt.run/ resumes). Default recipe: fine-tune the "
                        "shipped `default` for 1200 steps (about 10 min on 2 CPU cores; --init none: from scratch)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding bam_tio2_sem/ and emps/")
    p.add_argument("--datasets", default="bam,emps", help="comma-separated: bam, emps")
    p.add_argument("--out", required=True, help="run folder (last.pt, best.pt); resumes if it has last.pt")
    p.add_argument("--init", default=None, help="start from this segmenter (a name or checkpoint; the network keeps its depth, width and "
                        "normalisation, so --depth, --base-channels and --norm do not apply; with --pairs default "
                        "`default`, and its post-processing and size model are kept; `none` for random weights)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default 3000; with --pairs 1200)")
    p.add_argument("--batch-size", type=int, default=None, help="patches per step (default 4)")
    p.add_argument("--patch-size", type=int, default=None, help="patch side in pixels (default 256)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (AdamW, cosine decay; default 1e-3, with --pairs 3e-4)")
    p.add_argument("--val-every", type=int, default=None,
                   help="steps between validations (the best is kept as best.pt; default 250; --pairs: no validation)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (last.pt; default 100)")
    p.add_argument("--base-channels", type=int, default=16, help="network width at full resolution (doubles per level)")
    p.add_argument("--depth", type=int, default=4, help="network resolution levels")
    p.add_argument("--norm", default="group", choices=Norm.values(), help="normalisation layers (default group)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of every random draw (reproducible runs)")
    p.add_argument("--contact-weight", type=float, default=None,
                   help="extra loss weight where touching particles meet (default 0: none; with --pairs 5)")
    p.add_argument("--at-model-scale", action="store_true",
                   help="shrink each image whose annotated median particle diameter exceeds the model's "
                        "(24 px) to it, as `segment(..., diameter=D)` does at inference (training and "
                        "validation images)")
    p.add_argument("--seed-depth", type=float, default=4.0,
                   help="depth cap in pixels of the interior (seed) target; 0: none, every seed is its "
                        "particle's inner half (default 4)")
    p.add_argument("--synthetic", default=None, metavar="DIR",
                   help="also train on the synthetic pairs of this `nanogan export` folder")
    p.add_argument("--synthetic-share", type=float, default=None,
                   help="share of the training patches drawn from --synthetic (default 0.25)")
    p.add_argument("--own-scale", type=float, default=None, metavar="PX",
                   help="with --at-model-scale: the training images whose annotated median particle diameter is PX "
                        "or more are also drawn unshrunk, at their own scale, so that the network also segments "
                        "large particles without a diameter (`segment(..., diameter=None)`); validation, which "
                        "chooses best.pt, stays at the model's scale. They are held in memory at full size")
    p.add_argument("--own-scale-share", type=float, default=None, metavar="SHARE",
                   help="share of the training patches drawn from --own-scale's images (default 0.15)")
    p.add_argument("--randomized", type=float, default=0.0, metavar="SHARE",
                   help="also train on domain-randomised pairs (SEM, TEM and STEM styles, shapes, median sizes "
                        "4-90 px, or 8-72 px with --at-model-scale, artefacts, text and scale bars as background), "
                        "drawn fresh: this share of the patches (default 0: none; docs/benchmarks.md)")
    p.add_argument("--scale-range", default="0.75,1.33", metavar="LOW,HIGH",
                   help="isotropic scale jitter of the training patches (default 0.75,1.33)")
    p.add_argument("--distractors", type=float, default=0.0, metavar="P",
                   help="chance that a training patch gets text, scale bars, arrows, panel letters, frames or an "
                        "info bar drawn on it, as background (default 0: none)")
    p.add_argument("--invert", type=float, default=0.0, metavar="P",
                   help="chance that a training patch's grey levels are mirrored (bright particles made dark and the "
                        "reverse), so the network learns both polarities from every image (default 0: never; e.g. 0.5)")
    p.add_argument("--style", type=float, default=0.0, metavar="P",
                   help="chance that a training patch is drawn in another microscope's look: edge brightening or fringes, "
                        "shading, uneven illumination, a grainy matrix (default 0; 0.5 did not help an unseen kind)")
    p.add_argument("--matrix", type=float, default=0.0, metavar="P",
                   help="chance that a training patch's background gets a polycrystalline matrix drawn on it (grains "
                        "of the particles' scale, boundaries, lamellae), as background (default 0: none)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help="training arithmetic: bf16 "
                   "autocast (weights stay fp32) or fp32; auto (default): bf16 on CPUs that run it natively, else fp32")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-gan", help="train the generator and the segmenter as a cycle GAN")
    p.add_argument("--images", default=None, help="folder of annotated images")
    p.add_argument("--masks", default=None, help="folder of their masks (stem, or stem_suffix)")
    p.add_argument("--unpaired-images", default=None, help="folder of images without masks")
    p.add_argument("--data-root", default="../shared/data",
                   help="without --images/--masks: the shared data sets (the --dataset training split)")
    p.add_argument("--dataset", default="bam", choices=list(GENERATOR_DATASETS),
                   help="without --images/--masks: the BAM TiO2 SEM training split (default), or the EMPS "
                        "training images with dark particles (bright-field TEM) at the model's scale")
    p.add_argument("--out", required=True, help="run folder (last.pt, generator.pt, segmenter.pt); resumes")
    p.add_argument("--init-segmenter", default=None, help="segmenter to start from: a checkpoint or a model name")
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=4, help="patches per step")
    p.add_argument("--patch-size", type=int, default=128, help="patch side in pixels")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (last.pt)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of every random draw (reproducible runs)")
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
                   help="override loss weights (config.training.GanLossWeights), e.g. "
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
