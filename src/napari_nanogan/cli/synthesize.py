"""``nanogan synthesize`` and ``export``: masks to realistic images, and image-mask pairs for training."""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.registry import DEFAULT_GENERATOR
from .common import (CommandError, add_cluster_options, apply_threads, first_line, input_error, list_inputs,
                     load_model, out_folder, has_extra, print_result, progress_bar, unique_targets)
from .values import count_value, pixel_size_value, seed_value


def _earlier_image(path: Path, stems: set[str]) -> bool:
    """``<stem>_<k>.tif`` of another mask: an image an earlier run wrote into the same folder."""
    base, _, k = path.stem.rpartition("_")
    return k.isdigit() and base in stems and path.suffix.lower() in (".tif", ".tiff")


def cmd_synthesize(args) -> int:
    import tifffile

    from ..io.atomic import atomic_path, remove_stale_temporaries
    from ..io.images import resolution_tags
    from ..io.masks import mask_pixel_size_nm, read_mask
    from ..segmentation.wording import plural
    from ..synthesis import load_generator, mask_maps, synthesis_seed, synthesize

    cluster = bool(args.scheduler or args.workers)
    if cluster and not has_extra("synthesize"):
        return 2
    if not cluster:
        apply_threads(args)
    out = out_folder(args.out)
    paths, skipped = list_inputs(args.masks, out=out, produced=_earlier_image)
    if skipped:
        print(f"note: left out {skipped} earlier result(s) (<mask>_<k>.tif) found in {out}", file=sys.stderr)
    if not paths:
        print(f"nanogan synthesize: no mask files found in {', '.join(map(str, args.masks))}", file=sys.stderr)
        return 2
    paths, refused = unique_targets(paths, lambda p: f"{p.stem}_0.tif")
    generator = load_model(load_generator, args.model)
    failures = len(refused)
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    if cluster:
        from .cluster import synthesize_on_cluster

        return synthesize_on_cluster(args, paths) or (1 if failures else 0)
    for path in paths:
        bar = None
        try:
            mask = read_mask(path)
            mask_maps(mask)  # size and labels checked before any image is drawn
            if not mask.any():
                print(f"note: {path} has no particles: its images are substrate only", file=sys.stderr)
            pixel_nm = mask_pixel_size_nm(path, args.pixel_size)
            tags = resolution_tags(pixel_nm)
            bar = progress_bar(args.n, path.name)
            for k in range(args.n):
                image = synthesize(mask, generator, seed=synthesis_seed(args.seed, k))
                target = out / f"{path.stem}_{k}.tif"
                remove_stale_temporaries(target)  # what a killed earlier run left
                with atomic_path(target) as tmp:
                    tifffile.imwrite(tmp, image, **tags)
                bar.update(1)
            bar.close()
            where = f"{path.stem}_0.tif" if args.n == 1 else f"{path.stem}_0..{args.n - 1}.tif"
            unit = f", pixel size {pixel_nm:g} nm" if pixel_nm else ", pixel size unknown (--pixel-size gives it)"
            print_result(f"{path}: {plural(args.n, 'image')} -> {out}/{where}{unit}")
        except Exception as exc:  # one line per failed mask; the others are still synthesized
            failures += 1
            if bar is not None:
                bar.close()  # before the line, which would else share the bar's
            input_error(path, exc, args)
        finally:
            if bar is not None:
                bar.close()
    return 1 if failures else 0



def _mask_recipe(path: Path, args, digest: str) -> dict:
    """What the manifest says about every pair of this mask (with its seed: what makes a pair)."""
    from ..io.masks import mask_pixel_size_nm
    from ..io.pairs import file_sha256

    pixel = mask_pixel_size_nm(path, args.pixel_size)
    return {"source": f"synthetic from {path.name}", "model_sha256": digest, "pixel_size_nm": pixel,
            "mask_sha256": file_sha256(path)}


def cmd_export(args) -> int:
    """Synthetic image-mask pairs from masks, plus a manifest; run again, the same command completes an
    interrupted export (complete pairs are kept, leftovers rewritten, nothing of the user's clobbered)."""
    from ..config import ModelKind
    from ..io.images import check_readable_file
    from ..io.masks import check_mask, read_mask
    from ..io.pairs import ExportFolder, file_sha256
    from ..models.registry import resolve_model
    from ..segmentation.wording import plural
    from ..synthesis import load_generator, mask_maps, synthesis_seed, synthetic_pairs

    cluster = bool(args.scheduler or args.workers)
    if cluster and not has_extra("export"):
        return 2
    if not cluster:
        apply_threads(args)
    out = out_folder(args.out)
    paths, _ = list_inputs(args.masks)
    if not paths:
        print(f"nanogan export: no mask files found in {', '.join(map(str, args.masks))}", file=sys.stderr)
        return 2
    paths, refused = unique_targets(paths, lambda p: f"{p.stem}_0")
    failures = len(refused)
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    generator = load_model(load_generator, args.model)
    digest = file_sha256(resolve_model(args.model, kind=ModelKind.GENERATOR))
    recipes = {}
    for path in paths:  # cheap: hashes and tags, no pixels; a mask that fails here is reported, not planned
        try:
            check_readable_file(path)
            recipes[path] = _mask_recipe(path, args, digest)
        except Exception as exc:
            failures += 1
            input_error(path, exc, args)
    by_stem = {p.stem: r for p, r in recipes.items()}

    def recipe(name: str) -> dict:
        stem, _, k = name.rpartition("_")
        return {**by_stem[stem], "seed": synthesis_seed(args.seed, int(k))}

    try:
        folder = ExportFolder(out, png=args.png, overwrite=args.overwrite)
        done = folder.plan(series={p.stem: args.n for p in recipes}, recipe=recipe)
    except (ValueError, FileExistsError) as exc:
        raise CommandError(f"{first_line(exc)}; nothing was written", code=1) from None
    if cluster:
        from .cluster import export_on_cluster

        return export_on_cluster(args, folder, recipes, done, digest) or (1 if failures else 0)
    with folder:
        for path, made in recipes.items():
            bar = None
            kept = sum(1 for name in done if name.rpartition("_")[0] == path.stem)
            try:
                labels = check_mask(read_mask(path))
                mask_maps(labels)  # size checked before any pair is drawn
                if not labels.any():
                    print(f"note: {path} has no particles: its pairs are substrate only", file=sys.stderr)
                bar = progress_bar(args.n - kept, path.name)
                extra = {"mask_sha256": made["mask_sha256"]}
                for pair in synthetic_pairs([(path.stem, labels, made["pixel_size_nm"], made["source"])], generator,
                                            n=args.n, seed=args.seed, model=str(args.model), model_sha256=digest,
                                            skip=done, extra=extra):
                    folder.write(pair)
                    bar.update(1)
                bar.close()
                if folder.changed:
                    folder.flush()
                print_result(f"{path}: {plural(args.n - kept, 'pair')}" + (f" ({kept} already complete)" if kept else ""))
            except Exception as exc:  # one line per failed mask; the others are still exported
                failures += 1
                if bar is not None:
                    bar.close()  # before the line, which would else share the bar's
                input_error(path, exc, args)
            finally:
                if bar is not None:
                    bar.close()
    if folder.flushes:
        print_result(f"wrote {plural(folder.written, 'pair')} and {folder.manifest}")
    elif folder.manifest.exists() and not failures:
        print_result(f"nothing to write: every pair is complete in {folder.manifest}")
    else:
        print_result("wrote no pairs")
    return 1 if failures else 0


def add_commands(sub) -> None:
    p = sub.add_parser("synthesize", help="realistic SEM or bright-field TEM images from particle masks (Style U-Net generator)",
                       description="Realistic EM images from particle masks. Per mask, <out>/<mask stem>_<k>.tif for "
                                   "k < --n: one image per style, each drawn from the same mask (its particles where "
                                   "the mask's labels are), 8-bit grey, the pixel size of the mask's labels TIFF or "
                                   "--pixel-size kept. For image-mask pairs with a manifest: nanogan export.")
    p.add_argument("masks", nargs="+", metavar="MASK", help="binary or instance-label mask images, or folders")
    p.add_argument("--out", required=True, help="output folder for <mask stem>_<k>.tif")
    p.add_argument("--n", type=count_value, default=1, help="images per mask (different styles; default 1)")
    p.add_argument("--seed", type=seed_value, default=0, help="makes the output reproducible (default 0)")
    p.add_argument("--model", default=DEFAULT_GENERATOR,
                   help=f"shipped generator name or checkpoint path (default {DEFAULT_GENERATOR}: SEM; tem: bright-field TEM)")
    p.add_argument("--pixel-size", type=pixel_size_value, default=None,
                   help="pixel size in nm written into the TIFFs (default: the mask's, when its TIFF records one)")
    add_cluster_options(p)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("export", help="write synthetic image-mask pairs and a manifest for training elsewhere",
                       description="Synthetic image-mask pairs for training a segmenter (ours: nanogan train --pairs "
                                   "OUT; or any other). Per mask, --n pairs <out>/images/<stem>_<k>.tif and "
                                   "<out>/masks/<stem>_<k>.tif (uint16 instance labels), and manifest.json and "
                                   "manifest.csv (the source mask and its SHA-256, the generator and its SHA-256, "
                                   "the seed, the pixel size, the particle count). Files are written atomically; "
                                   "an interrupted export is completed by the same command.")
    p.add_argument("--masks", nargs="+", required=True, metavar="MASK", help="mask files or folders")
    p.add_argument("--out", required=True, help="export folder (images/, masks/, manifest.json, manifest.csv)")
    p.add_argument("--n", type=count_value, default=1, help="synthetic images per mask (default 1)")
    p.add_argument("--seed", type=seed_value, default=0, help="makes the output reproducible (default 0)")
    p.add_argument("--model", default=DEFAULT_GENERATOR,
                   help=f"generator name or checkpoint path (default {DEFAULT_GENERATOR}: SEM; tem: bright-field TEM)")
    p.add_argument("--pixel-size", type=pixel_size_value, default=None, help="pixel size in nm written into the TIFFs")
    p.add_argument("--png", action="store_true", help="also write PNG previews")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files (default: refuse; the same command run again completes an "
                        "interrupted export without it, also with --scheduler/--workers)")
    add_cluster_options(p, overwrite=False)
    p.set_defaults(func=cmd_export)
