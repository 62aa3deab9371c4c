"""``nanogan segment``, ``measure`` and ``demo``: images to particles, particles to sizes."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

from ..config import BLOCK, MARGIN_DIAMETERS, MIN_MARGIN, TILE, ModelKind
from ..models.registry import AUTO_SEGMENTERS, DEFAULT_SEGMENTER
from .common import (CommandError, add_cluster_options, apply_threads, has_extra, images_only, input_error, list_inputs,
                     load_model, out_file, out_folder, print_result, progress_bar, subfolder_hint, unique_targets)
from .values import count_value, pixel_size_value, positive_value, probability_value, scale_bar_value, tile_value

_GENERAL, _BRIGHT = AUTO_SEGMENTERS["auto"]
#: ``--overlay``'s picture (``segmentation.files.overlay_path``): never a label image.
OVERLAY_SUFFIX = "_overlay.png"
#: What ``nanogan segment`` writes per input: never an input of ``segment`` found in a folder.
RESULT_SUFFIXES = ("_labels.tif", "_labels.zarr", OVERLAY_SUFFIX)
#: ``measure --plot``'s figures: never label images either.
HISTOGRAM_SUFFIX = "_histogram.png"
#: Files whose D50 differ more than this many times are not of one sample: pooling them is noted.
POOL_SPREAD = 2.0
AUTO_HELP = f"{_BRIGHT} for bright particles on a dark background (SEM) where it agrees with {_GENERAL}, else {_GENERAL}"


def cmd_segment(args) -> int:
    from ..io.omezarr import is_zarr
    from ..segmentation import can_estimate_diameter, load_segmenter
    from ..segmentation.files import segment_file

    cluster = bool(args.scheduler or args.workers)
    if cluster and not has_extra("segment"):
        return 2
    if not cluster:
        apply_threads(args)
    if getattr(args.scale_bar, "unitless", False):
        print(f"warning: --scale-bar {args.scale_bar:g} has no unit: taken as {args.scale_bar:g} nm (write the bar's "
              f"label as it reads, e.g. {args.scale_bar:g}nm, {args.scale_bar:g}um)", file=sys.stderr)
    out = out_folder(args.out)
    # a rerun into the input folder leaves the earlier results out (label images and overlays are no SEM images)
    paths, skipped = list_inputs(args.inputs, out=out, zarr=True,
                                 produced=lambda p, stems: p.name.endswith(RESULT_SUFFIXES))
    if skipped:
        print(f"note: left out {skipped} earlier result(s) (*_labels.tif, *_overlay.png) found in {out}",
              file=sys.stderr)
    paths, annotations = images_only(paths, args.inputs, (*RESULT_SUFFIXES, HISTOGRAM_SUFFIX))
    if annotations:
        shown = ", ".join(p.name for p in annotations[:3]) + (" ..." if len(annotations) > 3 else "")
        print(f"note: left out {len(annotations)} file(s) that are labels, masks or pictures of results, not "
              f"images ({shown}); name a file on the command line to segment it anyway", file=sys.stderr)
    if not paths:
        hint = subfolder_hint(args.inputs, (*RESULT_SUFFIXES, HISTOGRAM_SUFFIX))
        print(f"error: no input images found in {', '.join(map(str, args.inputs))}{hint}", file=sys.stderr)
        return 2
    paths, refused = unique_targets(paths, lambda p: f"{p.stem}_labels.tif")
    segmenter = load_model(load_segmenter, args.model)
    failures = len(refused)
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    can_estimate = can_estimate_diameter(segmenter)
    estimate = args.diameter == "auto" or (args.diameter is None and args.diameter_nm is None and can_estimate)
    if args.diameter is None and args.diameter_nm is None and not can_estimate:
        print(f"note: model {args.model} has no size model: images are segmented at their own scale "
              "(give --diameter or --diameter-nm for particles much larger than about 24 px)", file=sys.stderr)
    diameter = "auto" if estimate else (args.diameter or None)  # 0: the image's own scale
    if args.scheduler or args.workers:
        from .cluster import segment_on_cluster

        code = segment_on_cluster(args, paths, diameter)
        return code or (1 if failures else 0)
    for i, path in enumerate(paths, 1):
        try:
            if is_zarr(path):
                from .cluster import segment_zarr_here

                segment_zarr_here(args, path, segmenter, diameter, f"[{i}/{len(paths)}] {path.name}")
                continue
            bar = progress_bar(1, f"[{i}/{len(paths)}] {path.name}")
            try:
                with warnings.catch_warnings(record=True) as caught:  # said after the bar, with the file's name
                    warnings.simplefilter("always")
                    _, line = segment_file(path, out, segmenter, diameter=diameter, diameter_nm=args.diameter_nm,
                                           pixel_size_nm=args.pixel_size, scale_bar_nm=args.scale_bar,
                                           tile=args.tile, overlay=args.overlay,
                                           small_pass=not args.no_small_pass, scale_check=not args.no_scale_check,
                                           polarity_check=not args.no_polarity_check,
                                           progress=lambda d, t: (setattr(bar, "total", t), bar.update(d - bar.n)))
            finally:
                bar.close()  # before any line, which would else share the bar's
            for said in dict.fromkeys(str(w.message) for w in caught if "napari_nanogan" in w.filename):
                print(f"warning: {path.name}: {said}", file=sys.stderr)
            for w in caught:
                if "napari_nanogan" not in w.filename:  # (another library's: as Python shows it)
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            print_result(line)
        except Exception as exc:  # one line per failed input; the others are still segmented
            failures += 1
            input_error(path, exc, args)
    if failures:  # the tally, after the lines of a long batch
        total = len(paths) + len(refused)
        print(f"{total - failures} of {total} images segmented, {failures} failed (above)", file=sys.stderr)
    return 1 if failures else 0



def diameter_value(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'auto', not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, 'auto', or 0 (no resizing), "
                                         f"not {text!r}")
    return value



def model_used(segmenter, result) -> str:
    """The model's name, and the network it chose where it chooses per image ("auto: default")."""
    return segmenter.name if result.model == segmenter.name else f"{segmenter.name}: {result.model}"


def cmd_demo(args) -> int:
    """The main job on shipped defaults, offline: segment the package's own sample image, and
    synthesize an SEM image from a designed mask and segment it back (when a generator is shipped)."""
    import time

    import tifffile
    from PIL import Image

    from ..data.procedural import SAMPLE_PIXEL_SIZE_NM, sample_image
    from ..io.atomic import atomic_path
    from ..io.images import resolution_tags, write_labels
    from ..io.infobar import bottom_bar_start
    from ..measure import measure_particles, summarize_sizes
    from ..metrics.segmentation import summarize
    from ..models.registry import DEFAULT_GENERATOR, available_models
    from ..overlay import captioned, overlay, overlay_caption
    from ..segmentation import can_estimate_diameter, load_segmenter, segment
    from ..segmentation.wording import plural

    if args.generator is None and DEFAULT_GENERATOR in available_models(ModelKind.GENERATOR):
        args.generator = DEFAULT_GENERATOR

    out = out_folder(args.out)
    image, truth = sample_image()
    with atomic_path(out / "sample.tif") as tmp:
        tifffile.imwrite(tmp, image, **resolution_tags(SAMPLE_PIXEL_SIZE_NM))
    print(f"demo: loading {args.model} and segmenting the package's sample image ...", file=sys.stderr)
    t0 = time.perf_counter()
    segmenter = load_model(load_segmenter, args.model)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    # as `nanogan segment` does by default: the particle diameter estimated where the model can
    result = segment(image, segmenter, diameter="auto" if can_estimate_diameter(segmenter) else None)
    t_seg = time.perf_counter() - t0
    labels = result.labels
    bar_start = bottom_bar_start(result.info_bar)
    write_labels(out / "sample_labels.tif", labels, pixel_size_nm=SAMPLE_PIXEL_SIZE_NM, confidence=result.confidence,
                 info_bar_start=bar_start)
    with atomic_path(out / "sample_overlay.png") as tmp:
        caption = overlay_caption(result.count, result.model, info_bar=result.info_bar is not None,
                                  note=f"({int(truth.max())} drawn)")
        Image.fromarray(captioned(overlay(image, labels, info_bar=result.info_bar), caption,
                                  pixel_size_nm=SAMPLE_PIXEL_SIZE_NM)).save(tmp, format="PNG")
    rows = result.info_bar.specimen_rows if result.info_bar else slice(0, truth.shape[0])
    scores = summarize([(truth, labels[rows])])
    # as `nanogan measure` reports them: whole particles (those cut by the border or the info bar left out)
    sizes = summarize_sizes(measure_particles(labels, pixel_size_nm=SAMPLE_PIXEL_SIZE_NM, info_bar_start=bar_start))
    summary = {
        "image": "sample.tif (procedural TiO2-like SEM, made by napari-nanogan)",
        "model": model_used(segmenter, result),
        "particles": int(labels.max()),
        "true_particles": int(truth.max()),
        "pixel_size_nm": SAMPLE_PIXEL_SIZE_NM,
        "info_bar_rows": [result.info_bar.start, result.info_bar.stop - 1] if result.info_bar else None,
        "estimated_particle_diameter_px": None if result.diameter_px is None else round(result.diameter_px, 1),
        "whole_particles": sizes["count"],
        "ecd_nm_d50": round(float(sizes["D50"]), 2) if sizes["count"] else None,
        "scores_vs_truth": {k: round(v, 4) for k, v in scores.items() if k in ("dice", "iou", "precision", "recall", "f1")},
        "seconds_model_load": round(t_load, 3),
        "seconds_segment": round(t_seg, 3),
    }
    synth_line = None
    if args.generator:
        # the other half of the product: a designed mask -> a synthetic SEM image -> particles again
        from ..config import MaskDesign
        from ..data.designer import design_mask
        from ..metrics.segmentation import foreground_scores
        from ..synthesis import load_generator, synthesize

        print(f"demo: synthesizing an SEM image from a designed mask with {args.generator} ...", file=sys.stderr)
        generator = load_model(load_generator, args.generator, "--generator")
        design = MaskDesign(seed=7)
        mask = design_mask(design)
        t0 = time.perf_counter()
        synthetic = synthesize(mask, generator, seed=0)
        t_syn = time.perf_counter() - t0
        back = segment(synthetic, segmenter, info_bar=None)
        synthetic_labels = back.labels
        with atomic_path(out / "synthetic.tif") as tmp:
            tifffile.imwrite(tmp, synthetic, **resolution_tags(design.pixel_size_nm))
        write_labels(out / "synthetic_mask.tif", mask, pixel_size_nm=design.pixel_size_nm)
        with atomic_path(out / "synthetic_overlay.png") as tmp:
            caption = overlay_caption(back.count, back.model,
                                      note=f"segmented in the synthetic image of a mask of {int(mask.max())}")
            Image.fromarray(captioned(overlay(synthetic, synthetic_labels), caption,
                                      pixel_size_nm=design.pixel_size_nm)).save(tmp, format="PNG")
        dice = foreground_scores(mask, synthetic_labels)[0]
        back_model = model_used(segmenter, back)
        summary["synthesis"] = {"generator": generator.name, "segmenter": back_model, "mask": "designed (MaskDesign(seed=7))",
                                "particles_in_mask": int(mask.max()), "particles_segmented": int(synthetic_labels.max()),
                                "dice_segment_vs_mask": round(dice, 4), "seconds_synthesize": round(t_syn, 3)}
        synth_line = (f"synthesized an SEM image from a designed mask ({int(mask.max())} particles) in {t_syn:.2f} s; "
                      f"segmenting it back ({back_model}) gives Dice {dice:.3f} against the mask")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        f"napari-nanogan demo: {plural(summary['particles'], 'particle')} found ({summary['true_particles']} drawn) "
        f"in {t_seg:.2f} s (model load {t_load:.2f} s; model {summary['model']}"
        + (f", estimated particle diameter {result.diameter_px:.0f} px)" if result.diameter_px else ")"),
        f"median equivalent-circle diameter of the {summary['whole_particles']} whole particles (not cut by the "
        f"border or the info bar): {summary['ecd_nm_d50']:.0f} nm at {SAMPLE_PIXEL_SIZE_NM} nm/px"
        if summary["ecd_nm_d50"] else "no whole particles",
        "vs the drawn truth: " + ", ".join(f"{k} {v:.3f}" for k, v in summary["scores_vs_truth"].items()),
    ]
    if synth_line:
        lines.append(synth_line)
    written = ["sample.tif", "sample_labels.tif", "sample_labels.csv", "sample_overlay.png"]
    if synth_line:
        written += ["synthetic.tif", "synthetic_mask.tif", "synthetic_overlay.png"]
    program = sys.argv[0] if Path(sys.argv[0]).name == "nanogan" else "nanogan"  # as run: .venv/bin/nanogan
    lines.append(f"wrote to {out}/: {', '.join(written)} (the labels' table: label, confidence; "
                 f"`{program} measure {out / 'sample_labels.tif'} --out {out / 'sample_sizes.csv'} --plot` gives the sizes and their histogram), "
                 "summary.json, summary.txt")
    with atomic_path(out / "summary.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    from .._napari import READER_PATTERNS, prefer_this_reader

    if prefer_this_reader():  # `napari nanogan-demo/sample.tif` then opens with the pixel size and info bar
        lines.append(f"napari now opens {', '.join(p[1:] for p in READER_PATTERNS)} files with napari-nanogan's "
                     "reader (pixel size in nm, info bar outlined); change it in napari's Preferences > Plugins")
    print("\n".join(lines))
    return 0



def cmd_measure(args) -> int:
    """Per-particle table (CSV) plus a size-distribution summary beside it."""

    from ..io.atomic import remove_stale_temporaries
    from ..measure import (drop_doubtful, has_confidence, measure_file, stack_tables, summarize_sizes, write_summary_csv,
                           write_table_csv)
    from ..segmentation.wording import plural

    if (args.scheduler or args.workers) and not has_extra("measure"):
        return 2
    images = args.image or []
    stores = [p for p in args.labels if Path(p).suffix.lower() == ".zarr"]
    if stores:  # (block-by-block labels can be larger than memory)
        print(f"nanogan measure: {stores[0]} is a zarr store; measure reads label images (TIFF, PNG), not zarr "
              "stores yet. Export a region as a TIFF to measure it", file=sys.stderr)
        return 2
    paths, _ = list_inputs(args.labels)  # folders of label files too
    if not paths:
        print(f"nanogan measure: no label images found in {', '.join(map(str, args.labels))}", file=sys.stderr)
        return 2
    named = {Path(p) for p in args.labels}
    for suffix, what in ((OVERLAY_SUFFIX, "overlay picture"), (HISTOGRAM_SUFFIX, "histogram")):
        pictures = [p for p in paths if p.name.endswith(suffix) and p not in named]
        if pictures:  # `segment --overlay`'s and `measure --plot`'s pictures lie beside the labels: no label images
            paths = [p for p in paths if p not in pictures]
            print(f"note: left out {len(pictures)} {what}(s) (*{suffix})", file=sys.stderr)
    if images and len(images) not in (1, len(paths)):
        print("nanogan measure: give one --image, or one per LABELS file", file=sys.stderr)
        return 2
    if Path(args.out).suffix.lower() != ".csv":  # (before out_file makes its folder)
        raise CommandError(f"--out {args.out}: the particles' table is a CSV file: give a name ending in .csv")
    out = out_file(args.out, what="CSV file")
    summary_path = out.with_name(out.stem + "_summary.csv")
    if summary_path.is_dir():
        raise CommandError(f"{summary_path} (the summary beside --out) is a folder; choose another --out")
    inputs = {Path(p).resolve() for p in [*paths, *images]}
    for written in (out, summary_path):
        if written.resolve() in inputs:
            raise CommandError(f"--out {out}: {written} is one of the inputs, and measuring would replace it; "
                               "choose another --out")
    sources = [images[i if len(images) > 1 else 0] if images else None for i in range(len(paths))]
    if args.scheduler or args.workers:
        from .cluster import measure_on_cluster

        measured = measure_on_cluster(args, paths, sources)
    else:
        def measured_here():
            for path, source in zip(paths, sources):
                try:
                    yield path, measure_file(path, image_path=source, pixel_size_nm=args.pixel_size,
                                             min_area=args.min_area)
                except Exception as exc:  # reported below, one line; the others are still measured
                    yield path, exc

        measured = measured_here()
    tables, summaries, failures = [], [], 0
    source_of = {p.resolve(): s for p, s in zip(paths, sources)}
    for path, table in measured:
        source = source_of.get(Path(path).resolve())
        if isinstance(table, BaseException):
            failures += 1
            input_error(path, table, args)
            continue
        table, dropped = drop_doubtful(table, args.min_confidence)
        if args.min_confidence and not has_confidence(table):
            print(f"note: {path.name} has no confidence per particle (no <stem>_labels.csv beside it): all its "
                  "particles kept", file=sys.stderr)
        tables.append(table)
        summary = summarize_sizes(table)
        summaries.append((path.name, summary))
        d50 = f"D50 {summary['D50']:.4g} {table.unit}" if "D50" in summary else "no whole particles"
        unit_note = "" if table.pixel_size_nm else (
            " (pixel size unknown: lengths in pixels; " + ("the --image gives none either: pass --pixel-size)"
                                                           if source is not None else "pass --pixel-size, or --image "
                                                           "when the image file gives it)"))
        doubtful = f" ({dropped} under confidence {args.min_confidence:g} left out)" if dropped else ""
        print_result(f"{path}: {plural(len(table), 'particle')}{doubtful}, {summary['count']} whole, {d50}{unit_note}")
    if not tables:
        return 1
    for written in (out, summary_path):  # what a killed earlier run left
        remove_stale_temporaries(written)
    write_table_csv(out, tables)
    if len({t.unit for t in tables}) > 1:
        print("nanogan measure: some inputs have a pixel size and some do not: their lengths are in separate columns "
              "(ecd_nm and ecd_px, ...), and there is no pooled 'all' row (give --pixel-size, or --image, for the "
              "others to pool them)", file=sys.stderr)
    elif len(tables) > 1 and tables[0].unit == "nm":
        summaries.append(("all", summarize_sizes(stack_tables(tables))))
        d50 = [s["D50"] for _, s in summaries[:-1] if "D50" in s]
        if len(d50) > 1 and max(d50) > POOL_SPREAD * min(d50):  # (fields of one sample: within about 10 %)
            print(f"note: the pooled 'all' row{' and plot' if args.plot else ''} mixes files whose D50 differ "
                  f"{max(d50) / min(d50):.3g}-fold ({min(d50):.3g} to {max(d50):.3g} nm): pool images of one sample "
                  "only, and measure the others apart", file=sys.stderr)
    elif len(tables) > 1:  # pixels of images of unknown, maybe different, scales do not add up
        print("nanogan measure: no pooled 'all' row: the pixel size is unknown, and pixels of different images need "
              "not be the same size (give --pixel-size or --image for one in nm)", file=sys.stderr)
    write_summary_csv(summary_path, summaries)
    print_result(f"wrote {out} and {summary_path}")
    if args.plot:
        doubtful = f": particles under confidence {args.min_confidence:g} left out" if args.min_confidence else ""
        write_plots(out, [(Path(p).name, t) for (p, _), t in zip(summaries, tables)], pooled=summaries[-1][0] == "all",
                    note=doubtful)
    return 1 if failures else 0


def write_plots(out: Path, tables: list[tuple[str, object]], *, pooled: bool, note: str = "") -> None:
    """``measure --plot``: the ECD distribution as <out stem>_histogram.png, of all files where they pool (one unit, nm),
    else one per file (<out stem>_<labels stem>_histogram.png)."""
    from ..measure import stack_tables
    from ..measure import write_size_plot

    if pooled or len(tables) == 1:
        title = tables[0][0] if len(tables) == 1 else f"{len(tables)} files pooled"
        jobs = [(out.with_name(out.stem + HISTOGRAM_SUFFIX), stack_tables([t for _, t in tables]), title)]
    else:
        jobs, taken = [], set()
        for name, table in tables:
            stem = f"{out.stem}_{Path(name).stem}"
            path, k = out.with_name(stem + HISTOGRAM_SUFFIX), 1
            while path in taken:  # (one stem in two folders: a second plot, not the first overwritten)
                k += 1
                path = out.with_name(f"{stem}_{k}{HISTOGRAM_SUFFIX}")
            taken.add(path)
            jobs.append((path, table, name))
    for path, table, title in jobs:
        try:
            print_result(f"wrote {write_size_plot(path, table, title=title + note)}")
        except ValueError as exc:  # no whole particle to size: the CSVs say so already
            print(f"note: no plot for {title}: {exc}", file=sys.stderr)




def add_commands(sub) -> None:
    p = sub.add_parser("segment", help="segment images into particles (one label per particle)",
                       description="Segment images into particles. Per input, <out>/<stem>_labels.tif (one label per "
                                   "particle, the file's pixel size kept) and <stem>_labels.csv beside it (columns label, "
                                   "confidence: the probability that the particle is real). A rerun replaces an image "
                                   "file's earlier result; with --scheduler/--workers, and for zarr inputs, complete "
                                   "results are kept unless --overwrite. Sizes and their distribution: nanogan measure "
                                   "<out>.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    out, model, scale = (p.add_argument_group(t) for t in ("output", "model and particle size", "pixel size (nm)"))
    checks, large = p.add_argument_group("checks (on by default)"), p.add_argument_group("many images, large images")
    out.add_argument("--out", required=True, help="output folder for <stem>_labels.tif and <stem>_labels.csv")
    out.add_argument("--overlay", action="store_true",
                     help="also <stem>_overlay.png: each particle outlined on the image, the info bar (left out) "
                          "dimmed, a caption (count, model) below, with a scale bar where the pixel size is known "
                          "(image files; not zarr inputs)")
    model.add_argument("--model", default=DEFAULT_SEGMENTER,
                       help=f"shipped model name or checkpoint path (default {DEFAULT_SEGMENTER}: {AUTO_HELP})")
    model.add_argument("--tile", type=tile_value, default=TILE, help=f"tile side in pixels (default {TILE})")
    size = model.add_mutually_exclusive_group()
    size.add_argument("--diameter", type=diameter_value, default=None, metavar="PX|auto|0",
                      help="typical particle diameter in pixels, or 'auto' (estimated per image by the model's size "
                           "model), or 0 (no resizing). Default: 'auto' for models with a size model (the shipped auto "
                           "and default), else 0. The network sees particles of about 24 px: an image of larger "
                           "particles is made smaller for it, and one of particles under 12 px twice as large; the "
                           "labels keep the image's size")
    size.add_argument("--diameter-nm", type=positive_value, default=None, metavar="NM",
                      help="the same in nm, converted with each file's pixel size (files without one are an error)")
    calibration = scale.add_mutually_exclusive_group()
    calibration.add_argument("--pixel-size", type=pixel_size_value, default=None, metavar="NM",
                             help="pixel size in nm for every input, instead of the files' own (PNG and figure crops "
                                  "give none): written into the labels, so nanogan measure reports nm; --diameter-nm "
                                  "uses it")
    calibration.add_argument("--scale-bar", type=scale_bar_value, default=None, metavar="LENGTH",
                             help="the length of the scale bar burnt into each input (e.g. '200nm', '0.5um'): the "
                                  "bar is found (a solid white or black horizontal bar, end ticks allowed; its length "
                                  "is not read from the image) and gives each input's pixel size, instead of the "
                                  "file's own; an input without one is an error. The result line says which bar")
    add_cluster_options(large, overwrite=False)
    checks.add_argument("--no-small-pass", action="store_true",
                        help="no second, finer pass over images made at least twice smaller for their large particles "
                             "(it adds the small particles beside them, e.g. satellites on spheres; faster without)")
    checks.add_argument("--no-scale-check", action="store_true",
                        help="keep the scale of the diameter estimate: by default an image made smaller for its "
                             "estimate is also segmented at neighbouring scales, one made larger also at its own "
                             "scale, and one left at its own scale whose particles the network is unsure of also at "
                             "smaller scales; the scale whose particles the network is surer of is kept (estimates "
                             "can be off on kinds of image the size model never saw)")
    checks.add_argument("--no-polarity-check", action="store_true",
                        help="keep the image's own grey levels: by default, where the network is unsure of the "
                             "particles it found, the image is also segmented with its grey levels inverted (bright "
                             "particles made dark), and that is kept where it finds more particles, and is surer of "
                             "them, there")
    large.add_argument("--overwrite", action="store_true",
                       help="with --scheduler/--workers, and for zarr inputs: redo outputs that are already complete "
                            "(default: a rerun skips them and finishes the rest)")
    large.add_argument("--block", type=int, default=BLOCK, metavar="PX",
                       help=f"zarr inputs (images larger than memory) are segmented in blocks of this side (default "
                            f"{BLOCK}); memory per worker follows it. Labels go to <out>/<stem>_labels.zarr (OME-Zarr "
                            f"labels)")
    large.add_argument("--margin", type=int, default=None, metavar="PX",
                       help=f"pixels of the neighbouring blocks each block is segmented with: more than the largest "
                            f"particle (default {MARGIN_DIAMETERS} particle diameters, at least {MIN_MARGIN})")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("demo", help="segment the package's own sample image, then synthesize an image of a designed "
                            "mask and segment it back (offline, shipped defaults)",
                       description="The main job on the shipped defaults, offline: segment the package's procedural SEM "
                                   "sample and score it against its known particles, then synthesize an SEM image from "
                                   "a designed mask (MaskDesign(seed=7)) and segment that back. Writes to --out: "
                                   "sample.tif, sample_labels.tif and .csv, sample_overlay.png, synthetic.tif, "
                                   "synthetic_mask.tif, synthetic_overlay.png, summary.json and summary.txt; prints the "
                                   "summary.")
    p.add_argument("--out", default="nanogan-demo", help="output folder (default ./nanogan-demo)")
    p.add_argument("--model", default=DEFAULT_SEGMENTER,
                   help=f"shipped model name or checkpoint path (default {DEFAULT_SEGMENTER}: {AUTO_HELP})")
    p.add_argument("--generator", default=None, help="generator for the synthesis half (default: the shipped one, if any)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("measure", help="per-particle sizes (nm) and size distributions from label images",
                       description="Measure every particle of label images (nanogan segment's <stem>_labels.tif, or "
                                   "annotated masks): a CSV of one row per particle (area, equivalent-circle diameter, "
                                   "Feret max/min, perimeter, circularity, aspect ratio, solidity, mean intensity (given --image; else empty), "
                                   "confidence where the labels have one; the image column names the LABELS file, source_image the --image) "
                                   "and <out stem>_summary.csv of D10/D50/D90 and the fitted log-normal (geometric mean and SD) "
                                   "per file (and all files pooled). Lengths are in nm when the pixel size is known "
                                   "(the labels TIFF, --image, --pixel-size, or the image of a mask's name: "
                                   "images/<stem>.tif beside masks/<stem>_m.tif), else in px; the unit is in every "
                                   "column name. Particles cut by the image edge or the info bar are flagged and left "
                                   "out of the summary.")
    p.add_argument("labels", nargs="+", metavar="LABELS",
                   help="instance label images or binary masks (split into 4-connected particles), or folders of them")
    p.add_argument("--image", action="append",
                   help="the source image (pixel size, info bar, intensities); once for all LABELS, or once per file")
    p.add_argument("--pixel-size", type=pixel_size_value, default=None,
                   help="pixel size in nm; overrides the pixel size of the labels and --image files")
    p.add_argument("--min-area", type=count_value, default=1, metavar="PX",
                   help="leave out particles of fewer pixels (default 1: all). nanogan segment's shipped models drop "
                        "particles under 16 px: give 16 to measure annotated masks the same way")
    p.add_argument("--out", required=True, help="CSV of particles; the summary goes to <out stem>_summary.csv")
    p.add_argument("--min-confidence", type=probability_value, default=0.0, metavar="P",
                   help="leave out particles whose confidence (the probability that a particle is real, from "
                        "nanogan segment's <stem>_labels.csv) is under P, from the CSV, the summary and the plot "
                        "(default 0: all). At 0.8, 97-98 %% of the particles kept were real on unfamiliar images "
                        "(docs/benchmarks.md)")
    p.add_argument("--plot", action="store_true",
                   help="also <out stem>_histogram.png: histogram and cumulative curve of the equivalent-circle diameter "
                        "with D10/D50/D90, of all files pooled where the summary pools them (lengths in nm), else one "
                        "per file (<out stem>_<labels stem>_histogram.png)")
    add_cluster_options(p, overwrite=False, threads=False)
    p.set_defaults(func=cmd_measure)
