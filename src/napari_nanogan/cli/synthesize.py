"""``nanogan synthesize`` and ``export``: masks to realistic images, and image-mask pairs for training."""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.registry import DEFAULT_GENERATOR
from .common import add_cluster_options, apply_threads, has_extra, progress_bar


def cmd_synthesize(args) -> int:
    import tifffile

    from ..io.atomic import atomic_path
    from ..io.images import ImageReadError, list_images
    from ..io.masks import read_mask
    from ..synthesis import load_generator, synthesis_seed, synthesize

    if (args.scheduler or args.workers) and not has_extra("synthesize"):
        return 2
    if not (args.scheduler or args.workers):
        apply_threads(args)
    generator = load_generator(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = list_images(args.masks)
    if not paths:
        print("nanogan synthesize: no mask files found", file=sys.stderr)
        return 2
    if args.scheduler or args.workers:
        from .cluster import synthesize_on_cluster

        return synthesize_on_cluster(args, paths)
    failures = 0
    for path in paths:
        try:
            mask = read_mask(path)
            bar = progress_bar(args.n, path.name)
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
    from ..config import ModelKind
    from ..io.images import ImageReadError, labels_pixel_size_nm, list_images
    from ..io.masks import instance_labels, read_mask
    from ..io.pairs import export_pairs, file_sha256
    from ..models.registry import resolve_model
    from ..synthesis import load_generator, synthetic_pairs

    if (args.scheduler or args.workers) and not has_extra("export"):
        return 2
    if not (args.scheduler or args.workers):
        apply_threads(args)
    generator = load_generator(args.model)
    digest = file_sha256(resolve_model(args.model, kind=ModelKind.GENERATOR))
    paths = list_images(args.masks)
    if not paths:
        print("nanogan export: no mask files found", file=sys.stderr)
        return 2
    if args.scheduler or args.workers:
        from .cluster import export_on_cluster

        return export_on_cluster(args, paths, digest)
    failures, written = 0, 0
    for path in paths:
        try:
            labels = instance_labels(read_mask(path))
            pixel = args.pixel_size or (labels_pixel_size_nm(path) if path.suffix.lower() in (".tif", ".tiff") else None)
            pairs = list(synthetic_pairs([(path.stem, labels, pixel, f"synthetic from {path.name}")], generator,
                                         n=args.n, seed=args.seed, model=str(args.model), model_sha256=digest))
            export_pairs(pairs, args.out, png=args.png, overwrite=args.overwrite)
            written += len(pairs)
            print(f"{path}: {len(pairs)} pairs", file=sys.stderr)
        except (ImageReadError, ValueError, OSError) as exc:
            failures += 1
            print(f"error: {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
    print(f"wrote {written} pairs and {Path(args.out) / 'manifest.json'}", file=sys.stderr)
    return 1 if failures else 0


def add_commands(sub) -> None:
    p = sub.add_parser("synthesize", help="realistic SEM images from particle masks (Style U-Net generator)")
    p.add_argument("masks", nargs="+", metavar="MASK", help="binary or instance-label mask images, or folders")
    p.add_argument("--out", required=True, help="output folder for <mask stem>_<k>.tif")
    p.add_argument("--n", type=int, default=1, help="images per mask (different styles)")
    p.add_argument("--seed", type=int, default=0, help="makes the output reproducible")
    p.add_argument("--model", default=DEFAULT_GENERATOR, help="shipped generator name or checkpoint path")
    add_cluster_options(p)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("export", help="write synthetic image-mask pairs and a manifest for training elsewhere")
    p.add_argument("--masks", nargs="+", required=True, metavar="MASK", help="mask files or folders")
    p.add_argument("--out", required=True, help="export folder (images/, masks/, manifest.json, manifest.csv)")
    p.add_argument("--n", type=int, default=1, help="synthetic images per mask")
    p.add_argument("--seed", type=int, default=0, help="makes the output reproducible")
    p.add_argument("--model", default=DEFAULT_GENERATOR, help="generator name or checkpoint path")
    p.add_argument("--pixel-size", type=float, default=None, help="pixel size in nm written into the TIFFs")
    p.add_argument("--png", action="store_true", help="also write PNG previews")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files (default: refuse; with --scheduler/--workers: keep complete pairs, "
                        "so that a rerun resumes)")
    add_cluster_options(p, overwrite=False)
    p.set_defaults(func=cmd_export)
