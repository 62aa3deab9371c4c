"""Many files on a Dask cluster: one task per file (or per mask and style), resumable, failures reported and skipped.

Every task runs the function the one-process command runs
(:func:`~napari_nanogan.segmentation.files.segment_file`, ``synthesize``,
:func:`~napari_nanogan.io.pairs.write_pair`), with the model its worker loaded once
(:class:`~napari_nanogan.distributed.cluster.ModelPlugin`), so the outputs are those of
a plain run. Outputs are written atomically; a rerun skips the ones already complete.
A task that fails reports a one-line reason; the others finish.

The files must be where the workers see them (the same paths: a shared file system).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from distributed import as_completed

from ..segmentation.files import failure_line, is_earlier_result, labels_path, segment_file
from .cluster import ModelPlugin, register, worker_model

#: Reasons a task reports as a failed input (others are reported too, as the task's error).
_INPUT_ERRORS = (ValueError, OSError)


@dataclass(frozen=True)
class Outcome:
    """What became of one input: ``status`` is "done", "skipped" (complete before) or "failed"; ``line`` says it.

    ``extra``: what the task gives back besides (manifest entries, a table; the exception of a failed one).
    """

    path: str
    status: str
    line: str
    extra: object = None


def _segment_task(path: str, out_dir: str, plugin: str, diameter, diameter_nm, tile: int, overwrite: bool,
                  overlay: bool = False, pixel_size_nm: float | None = None, small_pass: bool = True,
                  scale_check: bool = True, polarity_check: bool = True, scale_bar_nm: float | None = None) -> Outcome:
    target = labels_path(out_dir, path)
    if not overwrite and target.is_file() and is_earlier_result(target):  # (another file there: refused below)
        return Outcome(path, "skipped", f"{path}: {target} is complete; skipped")
    try:
        _, line = segment_file(path, out_dir, worker_model(plugin), diameter=diameter, diameter_nm=diameter_nm,
                               pixel_size_nm=pixel_size_nm, scale_bar_nm=scale_bar_nm, tile=tile, overlay=overlay,
                               small_pass=small_pass, scale_check=scale_check, polarity_check=polarity_check)
    except _INPUT_ERRORS as exc:
        return Outcome(path, "failed", failure_line(path, exc))
    return Outcome(path, "done", line)


def collect(client, futures: dict, report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Outcomes of ``futures`` (future -> input path) as they finish; a task that raised becomes a failed outcome."""
    outcomes = []
    for future in as_completed(list(futures)):
        path = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # the worker died, or the task raised something unexpected: this input only
            outcome = Outcome(str(path), "failed", failure_line(path, exc), exc)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    order = {str(p): k for k, p in enumerate(futures.values())}
    return sorted(outcomes, key=lambda o: order.get(o.path, len(order)))


def segment_files(client, paths: Iterable[str | Path], out_dir: str | Path, *, model: str, diameter=None,
                  diameter_nm: float | None = None, pixel_size_nm: float | None = None, tile: int = 512,
                  overwrite: bool = False, overlay: bool = False, torch_threads: int | None = None,
                  report: Callable[[Outcome], None] | None = None, small_pass: bool = True,
                  scale_check: bool = True, polarity_check: bool = True,
                  scale_bar_nm: float | None = None) -> list[Outcome]:
    """Segment image files on the cluster of ``client``: ``<out>/<stem>_labels.tif`` each, as ``nanogan segment`` writes.

    ``diameter``: "auto", pixels or None (as :func:`~napari_nanogan.segmentation.files.segment_file`
    takes it, and ``small_pass``, ``scale_check``, ``polarity_check``); ``pixel_size_nm`` replaces the
    files' own, and so does the length of each image's scale bar, ``scale_bar_nm``. Outputs already
    complete are skipped unless ``overwrite``. ``report`` is called with each :class:`Outcome` as it comes.
    """
    plugin = ModelPlugin("segmenter", model, torch_threads)
    register(client, plugin)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(p).resolve() for p in paths]
    futures = {client.submit(_segment_task, str(p), str(out_dir), plugin.name, diameter, diameter_nm, tile, overwrite,
                             overlay, pixel_size_nm, small_pass, scale_check, polarity_check, scale_bar_nm, key=f"nanogan-segment-{k}-{p.name}", pure=False): p for k, p in enumerate(paths)}
    return collect(client, futures, report)


def _synthesize_task(path: str, out_dir: str, plugin: str, n: int, seed: int, overwrite: bool,
                     pixel_size_nm: float | None = None) -> Outcome:
    import tifffile

    from ..io.atomic import atomic_path
    from ..io.images import resolution_tags
    from ..io.masks import mask_pixel_size_nm, read_mask
    from ..synthesis import synthesis_seed, synthesize

    stem = Path(path).stem
    targets = [Path(out_dir) / f"{stem}_{k}.tif" for k in range(n)]
    todo = [k for k, t in enumerate(targets) if overwrite or not t.is_file()]
    if not todo:
        return Outcome(path, "skipped", f"{path}: {n} images complete; skipped")
    try:
        mask = read_mask(path)
        tags = resolution_tags(mask_pixel_size_nm(path, pixel_size_nm))
        generator = worker_model(plugin)
        for k in todo:
            image = synthesize(mask, generator, seed=synthesis_seed(seed, k))
            with atomic_path(targets[k]) as tmp:
                tifffile.imwrite(tmp, image, **tags)
    except _INPUT_ERRORS as exc:
        return Outcome(path, "failed", f"error: {path}: {str(exc).splitlines()[0]}")
    return Outcome(path, "done", f"{path}: {n} images -> {out_dir}/{stem}_0..{n - 1}.tif")


def synthesize_files(client, paths: Iterable[str | Path], out_dir: str | Path, *, model: str, n: int = 1, seed: int = 0,
                     overwrite: bool = False, torch_threads: int | None = None, pixel_size_nm: float | None = None,
                     report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``nanogan synthesize`` on the cluster: ``<out>/<mask stem>_<k>.tif``, k < n, the same images as one process
    makes (the pixel size ``pixel_size_nm``, else the mask's labels TIFF's, written into them)."""
    plugin = ModelPlugin("generator", model, torch_threads)
    register(client, plugin)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(p).resolve() for p in paths]
    futures = {client.submit(_synthesize_task, str(p), str(out_dir), plugin.name, n, seed, overwrite, pixel_size_nm,
                             key=f"nanogan-synthesize-{k}-{p.name}", pure=False): p for k, p in enumerate(paths)}
    return collect(client, futures, report)


def _export_task(path: str, out_dir: str, plugin: str, n: int, seed: int, model: str, digest: str, recipe: dict,
                 png: bool, done: frozenset) -> Outcome:
    from ..io.masks import check_mask, read_mask
    from ..io.pairs import Pair, pair_entry, write_pair
    from ..synthesis import synthesis_seed, synthesize

    source = Path(path)
    try:
        labels = check_mask(read_mask(source))
        entries, made = [], 0
        for k in range(n):
            s = synthesis_seed(seed, k)
            pair = Pair(f"{source.stem}_{k}", None, labels, source=recipe["source"], seed=s, model=model,
                        model_sha256=digest, pixel_size_nm=recipe["pixel_size_nm"],
                        extra={"precision": worker_model(plugin).precision, "mask_sha256": recipe["mask_sha256"]})
            if pair.name in done:
                entries.append(pair_entry(pair, out_dir, png=png, from_files=True))  # complete before: read back
                continue
            pair.image = synthesize(labels, worker_model(plugin), seed=s)
            entries.append(write_pair(pair, out_dir, png=png, overwrite=True))
            made += 1
    except _INPUT_ERRORS as exc:
        return Outcome(path, "failed", f"error: {path}: {str(exc).splitlines()[0]}")
    line = f"{path}: {made} pairs" + ("" if made == n else f" ({n - made} already complete)")
    return Outcome(path, "done" if made else "skipped", line, entries)


def export_files(client, recipes: dict, out_dir: str | Path, *, model: str, digest: str, n: int = 1, seed: int = 0,
                 png: bool = False, done: Iterable[str] = (), torch_threads: int | None = None,
                 report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``nanogan export`` on the cluster: the pairs of every mask (``recipes``: mask path -> its manifest fields).

    The folder is planned by the client first (:meth:`~napari_nanogan.io.pairs.ExportFolder.plan`:
    nothing of the user's is clobbered); pairs named in ``done`` are complete and kept.
    Returns the outcomes, each with its manifest entries; the client writes the manifest.
    """
    plugin = ModelPlugin("generator", model, torch_threads)
    register(client, plugin)
    out_dir = Path(out_dir).resolve()
    done = frozenset(done)
    futures = {client.submit(_export_task, str(Path(p).resolve()), str(out_dir), plugin.name, n, seed, str(model),
                             digest, recipe, png, done, key=f"nanogan-export-{k}-{Path(p).name}", pure=False): Path(p)
               for k, (p, recipe) in enumerate(recipes.items())}
    return collect(client, futures, report)


def _measure_task(path: str, source: str | None, pixel_size_nm: float | None, min_area: int = 1) -> Outcome:
    from ..measure import measure_file

    try:
        return Outcome(path, "done", "", measure_file(path, image_path=source, pixel_size_nm=pixel_size_nm,
                                                      min_area=min_area))
    except _INPUT_ERRORS as exc:
        return Outcome(path, "failed", f"error: {path}: {str(exc).splitlines()[0]}", exc)


def measure_files(client, paths: list, sources: list, *, pixel_size_nm: float | None = None, min_area: int = 1,
                  report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``nanogan measure`` on the cluster: one table per label file (``extra``: the table, or the exception), in order.

    The tables come back to the client, which writes one CSV and one size distribution.
    """
    futures = {client.submit(_measure_task, str(p), None if s is None else str(s), pixel_size_nm, min_area,
                             key=f"nanogan-measure-{k}-{Path(p).name}", pure=False): Path(p)
               for k, (p, s) in enumerate(zip(paths, sources))}
    return collect(client, futures, report)
