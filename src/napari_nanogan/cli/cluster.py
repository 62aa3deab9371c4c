"""What ``segment``, ``synthesize`` and ``export`` do with ``--scheduler``/``--workers``, and with zarr inputs.

The one-process paths stay in their commands' modules; these run the same per-file work
on a Dask cluster (:mod:`napari_nanogan.distributed`) and say what happened: one line
per input, a count at the end, a non-zero exit if any input failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .common import print_result, progress_bar


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _line(bar, outcome) -> None:
    """A task's line, said without breaking the bar: a result on stdout, a failure on stderr."""
    if outcome.status == "failed":
        bar.write(outcome.line, sys.stderr)
    else:
        with bar.external_write_mode():
            print_result(outcome.line)


def _cluster(args):
    import logging

    from ..distributed.cluster import dask_client, local_threads

    if not getattr(args, "verbose", False):  # Dask's own INFO lines (workers joining, closing) only with -v
        for name in ("distributed", "dask"):
            logging.getLogger(name).setLevel(logging.WARNING)
    threads = getattr(args, "threads", None) or (local_threads(args.workers) if args.workers else None)
    return dask_client(args.scheduler, args.workers), threads


def _describe(client) -> str:
    workers = client.scheduler_info().get("workers", {})
    return f"{len(workers)} Dask workers at {client.scheduler.address}"


def _tally(outcomes) -> tuple[str, int]:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    line = f"{counts['done']} done, {counts['skipped']} complete before (skipped), {counts['failed']} failed"
    return line, counts["failed"]


def segment_zarr_here(args, path: Path, segmenter, diameter, desc: str) -> None:
    """One zarr image, block by block in this process (no cluster)."""
    from ..io.omezarr import open_zarr_image
    from ..progress import drive
    from ..segmentation.zarrjob import labels_target, segment_zarr_steps

    plane, meta = given_pixel_size(open_zarr_image(path), args)
    diameter = _zarr_diameter(path, meta, diameter, args.diameter_nm)
    bar = progress_bar(1, desc)
    try:
        steps = segment_zarr_steps(plane, segmenter, labels_target(args.out, path.stem), pixel_size_nm=meta["pixel_size_nm"],
                                   overwrite=args.overwrite, diameter=diameter, block=args.block, margin=args.margin,
                                   tile=args.tile, small_pass=not args.no_small_pass,
                                   scale_check=not args.no_scale_check,
                                   polarity_check=not args.no_polarity_check)
        outcome = drive(steps, progress=lambda d, t: (setattr(bar, "total", t), bar.update(d - bar.n)))
    finally:
        bar.close()
    print_result(_zarr_line(path, outcome, segmenter.name, meta))


def given_pixel_size(opened: tuple, args) -> tuple:
    """``(plane, meta)`` of an opened zarr image, the pixel size replaced by ``--pixel-size`` where given
    (``--scale-bar`` is refused: a montage larger than memory is not searched for one)."""
    plane, meta = opened
    if getattr(args, "scale_bar", None) is not None:
        raise ValueError("--scale-bar is for image files, not zarr images (give --pixel-size, or store the pixel "
                         "size in the OME-Zarr's scale)")
    return plane, ({**meta, "pixel_size_nm": args.pixel_size} if args.pixel_size else meta)


def _zarr_diameter(path, meta, diameter, diameter_nm):
    if diameter_nm is None:
        return diameter
    if not meta["pixel_size_nm"]:
        raise ValueError(f"{path}: --diameter-nm needs the pixel size, and this store's metadata does not give it; "
                         "give --pixel-size, or use --diameter in pixels")
    return diameter_nm / meta["pixel_size_nm"]


def _zarr_line(path, result, requested, meta) -> str:
    """As a file's line: what was found, the pixel size (or that it is unknown), where the labels are."""
    pixel = meta["pixel_size_nm"]
    if result.skipped:
        return f"{path}: {result.describe(requested=requested)} ({result.path})"
    unit = f", pixel size {pixel:g} nm" if pixel else ", pixel size unknown (sizes in px; --pixel-size gives it)"
    return f"{path}: {result.describe(requested=requested, pixel_size=pixel)}{unit} -> {result.path}"


def segment_on_cluster(args, paths: list[Path], diameter) -> int:
    """``nanogan segment`` on a Dask cluster: files one task each, zarr images block by block."""
    from ..distributed.batch import segment_files
    from ..distributed.blocks import segment_zarr
    from ..io.omezarr import is_zarr, open_zarr_image
    from ..segmentation.files import failure_line
    from ..segmentation.zarrjob import labels_target

    files = [p for p in paths if not is_zarr(p)]
    stores = [p for p in paths if is_zarr(p)]
    context, threads = _cluster(args)
    failures = 0
    with context as client:
        _say(f"segment: {len(files)} files, {len(stores)} zarr images on {_describe(client)}")
        if files:
            bar = progress_bar(len(files), "segment")
            outcomes = segment_files(client, files, args.out, model=args.model, diameter=diameter,
                                     diameter_nm=args.diameter_nm, pixel_size_nm=args.pixel_size,
                                     scale_bar_nm=args.scale_bar, tile=args.tile,
                                     overwrite=args.overwrite, small_pass=not args.no_small_pass,
                                     scale_check=not args.no_scale_check,
                                     polarity_check=not args.no_polarity_check,
                                     overlay=args.overlay,
                                     torch_threads=threads, report=lambda o: (bar.update(1), _line(bar, o)))
            bar.close()
            line, failures = _tally(outcomes)
            print_result(f"files: {line}")
        for path in stores:
            try:
                plane, meta = given_pixel_size(open_zarr_image(path), args)
                bar = progress_bar(1, path.name)
                try:
                    outcome = segment_zarr(client, plane, labels_target(args.out, path.stem), model=args.model,
                                          pixel_size_nm=meta["pixel_size_nm"], overwrite=args.overwrite,
                                          torch_threads=threads,
                                          progress=lambda d, t: (setattr(bar, "total", t), bar.update(d - bar.n)),
                                          diameter=_zarr_diameter(path, meta, diameter, args.diameter_nm),
                                          block=args.block, margin=args.margin, tile=args.tile,
                                          small_pass=not args.no_small_pass,
                                          scale_check=not args.no_scale_check,
                                          polarity_check=not args.no_polarity_check)
                finally:
                    bar.close()
                print_result(_zarr_line(path, outcome, args.model, meta))
            except Exception as exc:  # this image only; the run goes on
                failures += 1
                _say(failure_line(path, exc))
    return 1 if failures else 0


def synthesize_on_cluster(args, paths: list[Path]) -> int:
    from ..distributed.batch import synthesize_files

    context, threads = _cluster(args)
    with context as client:
        _say(f"synthesize: {len(paths)} masks x {args.n} on {_describe(client)}")
        bar = progress_bar(len(paths), "synthesize")
        outcomes = synthesize_files(client, paths, args.out, model=args.model, n=args.n, seed=args.seed,
                                    overwrite=args.overwrite, torch_threads=threads, pixel_size_nm=args.pixel_size,
                                    report=lambda o: (bar.update(1), _line(bar, o)))
        bar.close()
    line, failures = _tally(outcomes)
    print_result(f"masks: {line}")
    return 1 if failures else 0


def export_on_cluster(args, folder, recipes: dict, done: set[str], digest: str) -> int:
    """``nanogan export`` on the cluster: the planned ``folder`` (see :class:`~napari_nanogan.io.pairs.ExportFolder`)
    filled by the workers, its manifest written here; pairs in ``done`` are kept."""
    from ..distributed.batch import export_files

    context, threads = _cluster(args)
    with folder, context as client:
        _say(f"export: {len(recipes)} masks x {args.n} on {_describe(client)}")
        bar = progress_bar(len(recipes), "export")
        outcomes = export_files(client, recipes, folder.out, model=args.model, digest=digest, n=args.n,
                                seed=args.seed, png=args.png, done=done, torch_threads=threads,
                                report=lambda o: (bar.update(1), _line(bar, o)))
        bar.close()
        for entry in (e for o in outcomes if o.status != "failed" for e in (o.extra or [])):
            folder.record(entry)
    line, failures = _tally(outcomes)
    print_result(f"masks: {line}; {len(folder.entries)} pairs in {folder.manifest}")
    return 1 if failures else 0


def measure_on_cluster(args, paths: list[Path], sources: list) -> list:
    """(path, table or exception) per label file, measured on the cluster, in the files' order."""
    from ..distributed.batch import measure_files

    context, _ = _cluster(args)
    with context as client:
        _say(f"measure: {len(paths)} label files on {_describe(client)}")
        bar = progress_bar(len(paths), "measure")
        outcomes = measure_files(client, paths, sources, pixel_size_nm=args.pixel_size, min_area=args.min_area,
                                 report=lambda o: bar.update(1))
        bar.close()
    return [(Path(o.path), o.extra) for o in outcomes]
