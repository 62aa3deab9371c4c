"""``nanogan train-texture``: learn the real substrate's (or particles') fine texture for the generator."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import GENERATOR_DATASETS, TextureRegion, Upsample
from .common import annotated_samples, command_line, drive_training, print_result
from .values import seed_value


def cmd_train_texture(args) -> int:
    """Train the texture network on the real substrate (or, ``--region particles``, the particles) of annotated
    images."""
    from ..config import TEXTURE_DEFAULTS, TextureConfig, TextureTrainConfig
    from ..training.texture import train_texture

    try:
        particles = args.region == TextureRegion.PARTICLES
        defaults = TEXTURE_DEFAULTS[args.region]
        config = TextureTrainConfig(steps=args.steps if args.steps is not None else defaults["steps"],
                                    batch_size=args.batch_size, patch_size=args.patch_size or defaults["patch_size"],
                                    checkpoint_every=args.checkpoint_every, seed=args.seed,
                                    min_fraction=defaults["min_fraction"])
        widths = tuple(int(v) for v in args.widths.split(","))
        region = {"region": "particles", "margin": 0, "blend": 0.0, "cond_channels": 0 if args.unconditional else 2} \
            if particles else {}
        texture_config = TextureConfig(sigma=args.sigma or defaults["sigma"], upsample=args.upsample,
                                       widths=widths, **region)
    except ValueError as exc:
        print(f"nanogan train-texture: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    found = annotated_samples(args, "train-texture")
    if found is None:
        return 2
    samples, source = found
    provenance = {"data": source, "command": command_line()}

    def report(rec):
        if rec.step % 500 == 0 and rec.losses:
            print("\nstep %d: %s" % (rec.step, {k: round(v, 3) for k, v in rec.losses.items()}), file=sys.stderr, flush=True)

    try:
        code = drive_training(
            lambda should_stop: train_texture([s.image for s in samples], [s.labels for s in samples], out_dir=args.out,
                                              config=config, texture_config=texture_config, provenance=provenance,
                                              should_stop=should_stop),
            config.steps, "train-texture", report)
    except ValueError as exc:
        print(f"nanogan train-texture: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if code == 0 and (Path(args.out) / "texture.pt").exists():
        flag = "--particle-texture" if args.region == "particles" else "--texture"
        print_result(f"wrote {Path(args.out) / 'texture.pt'}; embed it with "
                     f"`nanogan tune-generator --model G --out G2.pt {flag} {Path(args.out) / 'texture.pt'}`")
    return code


def add_commands(sub) -> None:
    p = sub.add_parser("train-texture", help="learn the real substrate's texture, for tune-generator --texture")
    p.add_argument("--out", required=True, help="run folder (last.pt, texture.pt); resumes if it has last.pt")
    p.add_argument("--images", default=None, help="folder of images (with --masks; default: the --dataset training split)")
    p.add_argument("--masks", default=None, help="folder of their particle masks")
    p.add_argument("--data-root", default="../shared/data", help="folder holding the shared data sets (bam_tio2_sem/, emps/)")
    p.add_argument("--dataset", default="bam", choices=list(GENERATOR_DATASETS),
                   help="without --images/--masks: the training split the texture learns from")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the shipped textures'. Substrate 24000, about 1.6 h on 2 CPU "
                        "cores; the shipped generator measured FID 53.5 with 14000 of them, 45.6 with 24000. "
                        "Particles 6000, about 8 min)")
    p.add_argument("--batch-size", type=int, default=8, help="patches per step")
    p.add_argument("--region", default="substrate", choices=TextureRegion.values(),
                   help="learn the substrate's texture (default) or the particles' fine detail; a particle texture "
                        "is embedded with `tune-generator --particle-texture`")
    p.add_argument("--patch-size", type=int, default=None, help="default 96 (substrate), 48 (particles)")
    p.add_argument("--sigma", type=float, default=None,
                   help="high-pass scale (px): finer detail is texture (default 16 for the substrate, the shipped "
                        "texture's, 6 measured worse; 2 for the particles)")
    p.add_argument("--unconditional", action="store_true",
                   help="particles: a texture that sees noise only, not the particles' mask and depth")
    p.add_argument("--upsample", default="bilinear", choices=Upsample.values(),
                   help="upsampling between the texture network's resolutions (default bilinear)")
    p.add_argument("--widths", default="32,24,16,12",
                   help="the texture network's channels at 1/8, 1/4, 1/2 and full resolution (default 32,24,16,12, the "
                        "shipped textures'; 64,48,32,24 synthesized 1.1-1.2 times slower, with FID 53.4 against 45.6)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (last.pt)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of every random draw (reproducible runs)")
    p.set_defaults(func=cmd_train_texture)
